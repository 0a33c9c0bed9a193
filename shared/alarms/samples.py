"""One patient's vitals at one instant, as the alarm engine reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shared.alarms.conditions import Parameter

if TYPE_CHECKING:
    from shared.sample import VitalsSample


@dataclass(frozen=True, slots=True)
class Sample:
    """One patient's vitals at one instant; None where the monitor gave no value."""

    timestamp: datetime
    pulse: float | None = None
    resp_rate: float | None = None
    spo2: float | None = None
    systolic: float | None = None
    diastolic: float | None = None
    temperature: float | None = None

    def __post_init__(self) -> None:
        require_zone(self.timestamp)

    @classmethod
    def from_vitals(cls, vitals: VitalsSample) -> Sample:
        """From a decoded sample as data_app stores it."""
        return cls(
            timestamp=vitals.timestamp,
            pulse=vitals.pulse,
            resp_rate=vitals.resp_rate,
            spo2=vitals.spo2,
            systolic=vitals.systolic,
            diastolic=vitals.diastolic,
            temperature=vitals.temperature,
        )

    def value(self, parameter: Parameter) -> float | None:
        """The parameter's value, or None if missing or not a finite number."""
        value = getattr(self, parameter.value)
        # NaN or inf is a sensor fault, not physiology: it is treated as no value at all.
        return value if value is not None and math.isfinite(value) else None


def require_zone(instant: datetime) -> None:
    """Naive and aware instants do not compare: refuse a naive one before it is stored."""
    if instant.tzinfo is None:
        raise ValueError(f"instant must carry a zone: {instant!r}")
