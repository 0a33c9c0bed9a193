"""A simulated patient's sample as an IHE PCD-01 ORU^R01, the message a bedside monitor's
gateway sends: MDC codes and units, one OBX per vital, the patient in PID-3 by their MRN.

gateway_app reads exactly this (gateway_app/examples/oru-r01.hl7 is one), so the simulator can
stand in for a monitor on the HL7 path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.hl7_text import escape
from shared.schemas import parse_bp

# (MDC code, reference id) of each vital and (MDC code, reference id) of its unit.
_HEART_RATE = ("147842", "MDC_ECG_HEART_RATE")
_RESP_RATE = ("151562", "MDC_RESP_RATE")
_SPO2 = ("150456", "MDC_PULS_OXIM_SAT_O2")
_SYSTOLIC = ("150021", "MDC_PRESS_BLD_NONINV_SYS")
_DIASTOLIC = ("150022", "MDC_PRESS_BLD_NONINV_DIA")
_TEMPERATURE = ("150364", "MDC_TEMP_BODY")
_PER_MINUTE_BEATS = ("264864", "MDC_DIM_BEAT_PER_MIN")
_PER_MINUTE_BREATHS = ("264928", "MDC_DIM_RESP_PER_MIN")
_PERCENT = ("262688", "MDC_DIM_PERCENT")
_MM_HG = ("266016", "MDC_DIM_MMHG")
_CELSIUS = ("268192", "MDC_DIM_DEGC")

SENDING_APPLICATION = "VIGIL-SIM"


@dataclass(frozen=True, slots=True)
class HospitalIdentifier:
    """A patient's MRN and the assigning authority (PID-3's CX.4) it belongs to."""

    authority: str
    value: str

    @property
    def system(self) -> str:
        # How gateway_app names an authority it knows no URI for (pcd01._identifier).
        return f"urn:vigil:assigning-authority:{self.authority}"


def hl7_time(moment: datetime) -> str:
    """An HL7 DTM to the millisecond, with its UTC offset."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%d%H%M%S}.{moment.microsecond // 1000:03d}+0000"


def oru_r01(
    sample: dict[str, Any],
    identifier: HospitalIdentifier,
    facility: str,
    receiver: str = "VIGIL",
    control_id: str | None = None,
) -> str:
    """The ORU^R01 for one vitals sample (shared.schemas.VitalsSchema), segments joined by CR."""
    taken = hl7_time(datetime.fromisoformat(sample["timestamp"]))
    systolic, diastolic = parse_bp(sample["bp"])
    family, given = _name_parts(sample.get("patient_name") or "")
    observations = (
        (_HEART_RATE, sample["pulse"], _PER_MINUTE_BEATS),
        (_RESP_RATE, sample["resp_rate"], _PER_MINUTE_BREATHS),
        (_SPO2, sample["spo2"], _PERCENT),
        (_SYSTOLIC, systolic, _MM_HG),
        (_DIASTOLIC, diastolic, _MM_HG),
        (_TEMPERATURE, sample["temperature"], _CELSIUS),
    )
    segments = [
        "|".join(
            (
                "MSH",
                "^~\\&",
                SENDING_APPLICATION,
                escape(facility),
                escape(receiver),
                escape(receiver),
                hl7_time(datetime.now(UTC)),
                "",
                "ORU^R01^ORU_R01",
                control_id or uuid.uuid4().hex[:20],
                "P",
                "2.6",
                "",
                "",
                "NE",
                "AL",
                "",
                # MSH-18: names go as UTF-8, not as HL7's hex escapes.
                "UNICODE UTF-8",
                "",
                "",
                "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
            )
        ),
        f"PID|||{escape(identifier.value)}^^^{escape(identifier.authority)}^MR||"
        f"{escape(family)}^{escape(given)}",
        f"OBR|1|||182777000^monitoring of patient^SNOMED-CT|||{taken}",
    ]
    for number, ((code, name), value, (unit, unit_name)) in enumerate(observations, start=1):
        segments.append(
            f"OBX|{number}|NM|{code}^{name}^MDC|1.0.0.{number}|{value}|"
            f"{unit}^{unit_name}^MDC|||||R|||{taken}"
        )
    return "\r".join(segments)


def _name_parts(name: str) -> tuple[str, str]:
    """(family, given) of "Given Family": the last word is the family name."""
    given, _, family = name.strip().rpartition(" ")
    return (family, given) if given else (name.strip(), "")
