"""An IHE PCD-01 ORU^R01 (a bedside monitor's observations, through its gateway) as Vigil's
vitals sample, or the reason it cannot be one.

python-hl7 parses the message; this module only knows which fields hold what. The codes are
IEEE 11073-10101 (MDC, what PCD-01 requires) or LOINC (what many gateways also send), the units
UCUM or MDC. Anything not understood is refused with the reason, never guessed: a value read in
the wrong unit is worse than no value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Any

import hl7
from hl7.datatypes import parse_datetime

from shared.blood_pressure import format_bp
from shared.mdc import TERMS, UNITS
from shared.patient_ids import authority_system, identifier_uuid
from shared.schemas import IDENTIFIER_SYSTEM_LENGTH, IDENTIFIER_VALUE_LENGTH


class Unusable(ValueError):  # noqa: N818  (a reason, not a crash)
    """HL7 that parses, but cannot become a sample: answered AE, with this reason."""


class Unsupported(ValueError):  # noqa: N818
    """HL7 of a kind the gateway does not take (another message type): answered AR."""


class Vital(StrEnum):
    PULSE = "pulse"
    RESP_RATE = "resp_rate"
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    SPO2 = "spo2"
    TEMPERATURE = "temperature"


class Unit(StrEnum):
    PER_MINUTE = "/min"
    PERCENT = "%"
    MM_HG = "mm[Hg]"
    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"


@dataclass(frozen=True, slots=True)
class Code:
    vital: Vital
    # Where two sources report one vital (ECG and pulse oximeter heart rates), the lower wins.
    preference: int = 0


# OBX-3 codes, by coding system: MDC's by reference id (shared/mdc.py has their numbers).
_MDC_BY_NAME: dict[str, Code] = {
    "MDC_ECG_HEART_RATE": Code(Vital.PULSE),
    "MDC_PULS_OXIM_PULS_RATE": Code(Vital.PULSE, 1),
    "MDC_PULS_RATE_NON_INV": Code(Vital.PULSE, 2),
    "MDC_RESP_RATE": Code(Vital.RESP_RATE),
    "MDC_AWAY_RESP_RATE": Code(Vital.RESP_RATE, 1),
    "MDC_PULS_OXIM_SAT_O2": Code(Vital.SPO2),
    "MDC_PRESS_BLD_NONINV_SYS": Code(Vital.SYSTOLIC),
    "MDC_PRESS_BLD_NONINV_DIA": Code(Vital.DIASTOLIC),
    "MDC_TEMP_BODY": Code(Vital.TEMPERATURE),
    "MDC_TEMP_ORAL": Code(Vital.TEMPERATURE, 1),
    "MDC_TEMP_AXILLA": Code(Vital.TEMPERATURE, 1),
    "MDC_TEMP_RECT": Code(Vital.TEMPERATURE, 1),
    "MDC_TEMP_TYMP": Code(Vital.TEMPERATURE, 1),
}
MDC_CODES: dict[str, Code] = {TERMS[name]: code for name, code in _MDC_BY_NAME.items()}
LOINC_CODES: dict[str, Code] = {
    "8867-4": Code(Vital.PULSE),  # Heart rate
    "9279-1": Code(Vital.RESP_RATE),  # Respiratory rate
    "59408-5": Code(Vital.SPO2),  # SpO2 by pulse oximetry
    "2708-6": Code(Vital.SPO2, 1),  # Oxygen saturation in arterial blood
    "8480-6": Code(Vital.SYSTOLIC),  # Systolic blood pressure
    "8462-4": Code(Vital.DIASTOLIC),  # Diastolic blood pressure
    "8310-5": Code(Vital.TEMPERATURE),  # Body temperature
    "8331-1": Code(Vital.TEMPERATURE, 1),  # Oral temperature
}
_MDC_SYSTEMS = frozenset({"MDC", "IEEE 11073", "IEEE11073", "ISO11073"})
_LOINC_SYSTEMS = frozenset({"LN", "LOINC"})

# OBX-6 units: UCUM as written, or MDC dimension codes and names ("partition 4": 4 * 65536 + n).
UCUM_UNITS: dict[str, Unit] = {
    "/min": Unit.PER_MINUTE,
    "{beats}/min": Unit.PER_MINUTE,
    "{beat}/min": Unit.PER_MINUTE,
    "{breaths}/min": Unit.PER_MINUTE,
    "{breath}/min": Unit.PER_MINUTE,
    "{counts}/min": Unit.PER_MINUTE,
    "%": Unit.PERCENT,
    "mm[Hg]": Unit.MM_HG,
    "Cel": Unit.CELSIUS,
    "[degF]": Unit.FAHRENHEIT,
}
_MDC_UNITS_BY_NAME: dict[str, Unit] = {
    "MDC_DIM_BEAT_PER_MIN": Unit.PER_MINUTE,
    "MDC_DIM_RESP_PER_MIN": Unit.PER_MINUTE,
    "MDC_DIM_PERCENT": Unit.PERCENT,
    "MDC_DIM_MMHG": Unit.MM_HG,
    "MDC_DIM_DEGC": Unit.CELSIUS,
    "MDC_DIM_FAHR": Unit.FAHRENHEIT,
}
# By code, or by reference id: senders write either.
MDC_UNITS: dict[str, Unit] = {
    **{UNITS[name]: unit for name, unit in _MDC_UNITS_BY_NAME.items()},
    **_MDC_UNITS_BY_NAME,
}
EXPECTED_UNITS: dict[Vital, frozenset[Unit]] = {
    Vital.PULSE: frozenset({Unit.PER_MINUTE}),
    Vital.RESP_RATE: frozenset({Unit.PER_MINUTE}),
    Vital.SPO2: frozenset({Unit.PERCENT}),
    Vital.SYSTOLIC: frozenset({Unit.MM_HG}),
    Vital.DIASTOLIC: frozenset({Unit.MM_HG}),
    Vital.TEMPERATURE: frozenset({Unit.CELSIUS, Unit.FAHRENHEIT}),
}
# OBX-11 result statuses of a value that stands: final, corrected, preliminary, unverified
# (R: what monitors send for live numerics). Others (X: cannot be obtained; D, W) do not.
_STANDING_STATUSES = frozenset({"", "F", "C", "P", "R"})
_WEST_UNDER_AN_HOUR = re.compile(r"-00([0-5]\d)$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# PID-3's identifier type for a medical record number, preferred over other repetitions.
_MRN_TYPES = ("MR", "MRN", "PI", "PT")


@dataclass(frozen=True, slots=True)
class Header:
    """What an answer needs of a message's MSH: who sent it, and its control id."""

    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    version: str


@dataclass(frozen=True, slots=True)
class Reading:
    vital: Vital
    value: float
    unit: Unit
    preference: int
    observed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Observations:
    """One ORU^R01, read: the patient, their name, when, and the vitals it carries."""

    header: Header
    identifier_system: str
    identifier_value: str
    name: str | None
    taken_at: datetime
    values: dict[Vital, float]

    def sample(self, patient_uuid: str) -> dict[str, Any]:
        """The vitals message Vigil's topic carries (shared.schemas.VitalsSchema)."""
        values = self.values
        return {
            "patient_uuid": patient_uuid,
            "patient_name": self.name,
            "patient_identifier": {
                "system": self.identifier_system,
                "value": self.identifier_value,
            },
            "timestamp": self.taken_at.isoformat(),
            "pulse": round(values[Vital.PULSE]),
            "resp_rate": round(values[Vital.RESP_RATE]),
            "bp": format_bp(round(values[Vital.SYSTOLIC]), round(values[Vital.DIASTOLIC])),
            "spo2": round(values[Vital.SPO2]),
            "temperature": round(values[Vital.TEMPERATURE], 2),
        }


def patient_uuid_for(identifier_system: str, identifier_value: str, secret: str) -> str:
    """The patient's Vigil uuid: an HMAC of their hospital identifier under the id secret, so
    every gateway of one site gives one patient one uuid, and the MRN alone does not tell it."""
    return str(identifier_uuid(identifier_system, identifier_value, secret))


def field(segment: hl7.Segment, number: int, component: int = 1, repetition: int = 1) -> str:
    """One component of a field, unescaped; "" when the segment does not have it."""
    try:
        value = segment.extract_field(1, number, repetition, component, 1)
    except (IndexError, KeyError, TypeError):
        return ""
    return str(value).strip()


def header(message: hl7.Message) -> Header:
    try:
        msh = message.segment("MSH")
    except KeyError:
        raise Unsupported("no MSH segment") from None
    kind = "^".join(part for part in (field(msh, 9, 1), field(msh, 9, 2)) if part)
    return Header(
        sending_application=field(msh, 3),
        sending_facility=field(msh, 4),
        control_id=field(msh, 10),
        message_type=kind,
        version=field(msh, 12),
    )


def read_observations(
    message: hl7.Message, local_zone: tzinfo = UTC, identifier_systems: dict[str, str] | None = None
) -> Observations:
    """The ORU^R01's patient and vitals. Raises Unsupported for another message type and
    Unusable, with the reason, for an ORU^R01 that cannot become a complete sample."""
    head = header(message)
    if head.message_type != "ORU^R01":
        raise Unsupported(f"message type {head.message_type or '(none)'} is not ORU^R01")
    if not head.control_id:
        raise Unusable("MSH-10 (message control id) is empty")
    pids = _segments(message, "PID")
    if len(pids) != 1:
        raise Unusable(f"expected one PID segment, found {len(pids)}")
    system, value = _identifier(pids[0], head, identifier_systems or {})
    readings = [
        reading for obx in _segments(message, "OBX") if (reading := _reading(obx, local_zone))
    ]
    chosen: dict[Vital, Reading] = {}
    for reading in readings:
        best = chosen.get(reading.vital)
        if best is None or reading.preference < best.preference:
            chosen[reading.vital] = reading
    missing = [vital.value for vital in Vital if vital not in chosen]
    if missing:
        raise Unusable(f"missing vitals: {', '.join(missing)}")
    return Observations(
        header=head,
        identifier_system=system,
        identifier_value=value,
        name=_name(pids[0]),
        taken_at=_taken_at(message, chosen.values(), local_zone),
        values={vital: _in_vigil_units(reading) for vital, reading in chosen.items()},
    )


def _segments(message: hl7.Message, name: str) -> list[hl7.Segment]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _identifier(pid: hl7.Segment, head: Header, systems: dict[str, str]) -> tuple[str, str]:
    """PID-3's medical record number and the URI of whoever assigned it."""
    candidates = []
    for repetition in range(1, 11):
        value = field(pid, 3, 1, repetition)
        if not value:
            break
        candidates.append((repetition, value, field(pid, 3, 5, repetition).upper()))
    if not candidates:
        raise Unusable("PID-3 (patient identifier) is empty")
    repetition, value, _type = next((c for c in candidates if c[2] in _MRN_TYPES), candidates[0])
    if len(value) > IDENTIFIER_VALUE_LENGTH[1]:
        raise Unusable(f"PID-3 is longer than {IDENTIFIER_VALUE_LENGTH[1]} characters")
    namespace = _subcomponent(pid, 3, 4, 1, repetition)
    universal = _subcomponent(pid, 3, 4, 2, repetition)
    universal_type = _subcomponent(pid, 3, 4, 3, repetition).upper()
    authority = namespace or universal or head.sending_facility
    if authority in systems:
        system = systems[authority]
    elif universal and universal_type == "ISO" and re.fullmatch(r"[0-2](\.\d+)+", universal):
        system = f"urn:oid:{universal}"
    elif authority and re.fullmatch(r"[A-Za-z0-9._-]+", authority):
        system = authority_system(authority)
    else:
        raise Unusable("PID-3 names no assigning authority (CX.4), and MSH-4 is empty")
    if len(system) > IDENTIFIER_SYSTEM_LENGTH[1]:
        raise Unusable(f"PID-3's assigning authority is longer than {IDENTIFIER_SYSTEM_LENGTH[1]}")
    return system, value


def _subcomponent(segment: hl7.Segment, number: int, component: int, sub: int, rep: int) -> str:
    try:
        value = segment.extract_field(1, number, rep, component, sub)
    except (IndexError, KeyError, TypeError):
        return ""
    return str(value).strip()


def _name(pid: hl7.Segment) -> str | None:
    family, given = field(pid, 5, 1), field(pid, 5, 2)
    name = " ".join(part for part in (given, family) if part)
    return name[:200] or None


def _reading(obx: hl7.Segment, local_zone: tzinfo) -> Reading | None:
    """The vital an OBX reports, or None for one Vigil does not use (device rows, others)."""
    code = _code(obx)
    if code is None or field(obx, 11).upper() not in _STANDING_STATUSES:
        return None
    raw = field(obx, 5)
    kind = field(obx, 2).upper()
    if kind not in ("NM", "") or not _NUMBER.match(raw):
        raise Unusable(f"OBX for {code.vital.value}: value {raw[:20]!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise Unusable(f"OBX for {code.vital.value}: value {raw[:20]!r} is not a number")
    unit = _unit(obx)
    if unit not in EXPECTED_UNITS[code.vital]:
        written = field(obx, 6, 1) or field(obx, 6, 2) or "(none)"
        raise Unusable(f"OBX for {code.vital.value}: unknown unit {written[:30]!r}")
    observed = _instant(field(obx, 14), local_zone, "OBX-14")
    return Reading(code.vital, value, unit, code.preference, observed)


def _code(obx: hl7.Segment) -> Code | None:
    # The identifier triplet, then its alternate (CWE.4-6): either may carry the known code.
    for first in (1, 4):
        identifier, text = field(obx, 3, first), field(obx, 3, first + 1)
        system = field(obx, 3, first + 2).upper()
        if system in _MDC_SYSTEMS:
            # The numeric code decides; a reference id (MDC_...) stands in only without one.
            key = identifier if identifier.isdigit() else TERMS.get(identifier or text, "")
            code = MDC_CODES.get(key)
        elif system in _LOINC_SYSTEMS:
            code = LOINC_CODES.get(identifier)
        else:
            code = None
        if code is not None:
            return code
    return None


def _unit(obx: hl7.Segment) -> Unit | None:
    identifier, text, system = field(obx, 6, 1), field(obx, 6, 2), field(obx, 6, 3).upper()
    if system in _MDC_SYSTEMS:
        return MDC_UNITS.get(identifier) or MDC_UNITS.get(text)
    if system in ("UCUM", ""):
        return UCUM_UNITS.get(identifier)
    return None


def _in_vigil_units(reading: Reading) -> float:
    if reading.unit is Unit.FAHRENHEIT:
        return (reading.value - 32) * 5 / 9
    return reading.value


def _taken_at(message: hl7.Message, readings, local_zone: tzinfo) -> datetime:
    """When the vitals were taken: their OBX-14 (the latest, if they differ), else the OBR-7
    observation time, else the message's own time (MSH-7)."""
    observed = [reading.observed_at for reading in readings if reading.observed_at is not None]
    if observed:
        return max(observed)
    for obr in _segments(message, "OBR"):
        if moment := _instant(field(obr, 7), local_zone, "OBR-7"):
            return moment
    moment = _instant(field(message.segment("MSH"), 7), local_zone, "MSH-7")
    if moment is None:
        raise Unusable("no observation time: OBX-14, OBR-7 and MSH-7 are all empty")
    return moment


def _instant(raw: str, local_zone: tzinfo, where: str) -> datetime | None:
    """An HL7 DTM as an aware instant; one without an offset is in the sender's local zone."""
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
    except (ValueError, OverflowError, TypeError):
        raise Unusable(f"{where}: {raw[:30]!r} is not an HL7 date and time") from None
    if (west := _WEST_UNDER_AN_HOUR.search(raw)) and moment.tzinfo is not None:
        # python-hl7 reads -0030 as +00:30: the hours, 0, carry no sign for the minutes.
        moment = moment.replace(tzinfo=timezone(-timedelta(minutes=int(west[1]))))
    if len(re.split(r"[+-]", raw, maxsplit=1)[0]) < 12:
        raise Unusable(f"{where}: {raw[:30]!r} is not precise to the minute")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Unusable(f"{where}: {raw[:30]!r} is out of range") from None
