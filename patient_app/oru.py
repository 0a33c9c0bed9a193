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
from shared.mdc import coded
from shared.patient_ids import authority_system
from shared.schemas import parse_bp

SENDING_APPLICATION = "VIGIL-SIM"


@dataclass(frozen=True, slots=True)
class HospitalIdentifier:
    """A patient's MRN and the assigning authority (PID-3's CX.4) it belongs to."""

    authority: str
    value: str

    @property
    def system(self) -> str:
        return authority_system(self.authority)


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
    # (MDC term, value, MDC unit) of each vital.
    observations = (
        ("MDC_ECG_HEART_RATE", sample["pulse"], "MDC_DIM_BEAT_PER_MIN"),
        ("MDC_RESP_RATE", sample["resp_rate"], "MDC_DIM_RESP_PER_MIN"),
        ("MDC_PULS_OXIM_SAT_O2", sample["spo2"], "MDC_DIM_PERCENT"),
        ("MDC_PRESS_BLD_NONINV_SYS", systolic, "MDC_DIM_MMHG"),
        ("MDC_PRESS_BLD_NONINV_DIA", diastolic, "MDC_DIM_MMHG"),
        ("MDC_TEMP_BODY", sample["temperature"], "MDC_DIM_DEGC"),
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
    for number, (term, value, unit) in enumerate(observations, start=1):
        segments.append(
            f"OBX|{number}|NM|{coded(term)}|1.0.0.{number}|{value}|{coded(unit)}|||||R|||{taken}"
        )
    return "\r".join(segments)


def _name_parts(name: str) -> tuple[str, str]:
    """(family, given) of "Given Family": the last word is the family name."""
    given, _, family = name.strip().rpartition(" ")
    return (family, given) if given else (name.strip(), "")
