"""Per-patient alarm limits: the vital signs they apply to and the adult ICU defaults.

A limit beyond the normal band (low/high) raises an alarm after the engine's confirmation
delay; one beyond the wider extreme band raises it at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from shared.schemas import (
    PULSE_RANGE,
    RESP_RATE_RANGE,
    SPO2_RANGE,
    SYSTOLIC_RANGE,
    TEMPERATURE_RANGE,
)


class Parameter(StrEnum):
    PULSE = "pulse"
    RESP_RATE = "resp_rate"
    SPO2 = "spo2"
    SYSTOLIC = "systolic"
    TEMPERATURE = "temperature"


class Bound(StrEnum):
    LOW = "low"
    HIGH = "high"
    EXTREME_LOW = "extreme_low"
    EXTREME_HIGH = "extreme_high"


@dataclass(frozen=True, slots=True)
class Limits:
    """One parameter's limits; None means no alarm on that side (SpO2 has no high)."""

    low: float | None
    high: float | None
    extreme_low: float | None
    extreme_high: float | None

    def get(self, bound: Bound) -> float | None:
        return getattr(self, bound.value)

    def with_bounds(self, values: dict[Bound, float | None]) -> Limits:
        return replace(self, **{bound.value: value for bound, value in values.items()})

    def problems(self) -> dict[Bound, str]:
        """What makes these limits inconsistent, by bound; empty when they hold together."""
        found: dict[Bound, str] = {}
        if self.low is not None and self.high is not None and self.low >= self.high:
            found[Bound.LOW] = f"Must be below high ({self.high:g})."
        if self.extreme_low is not None and self.low is not None and self.extreme_low > self.low:
            found[Bound.EXTREME_LOW] = f"Must be at or below low ({self.low:g})."
        if (
            self.extreme_high is not None
            and self.high is not None
            and self.extreme_high < self.high
        ):
            found[Bound.EXTREME_HIGH] = f"Must be at or above high ({self.high:g})."
        return found


# Typical adult ICU bedside-monitor defaults (as shipped by the major monitor vendors and
# adjusted per unit); a starting point, configurable per patient through the API.
DEFAULT_LIMITS: dict[Parameter, Limits] = {
    Parameter.PULSE: Limits(low=50, high=120, extreme_low=40, extreme_high=150),
    Parameter.RESP_RATE: Limits(low=8, high=30, extreme_low=5, extreme_high=40),
    Parameter.SPO2: Limits(low=90, high=None, extreme_low=85, extreme_high=None),
    Parameter.SYSTOLIC: Limits(low=90, high=180, extreme_low=70, extreme_high=220),
    Parameter.TEMPERATURE: Limits(low=35.0, high=38.5, extreme_low=34.0, extreme_high=40.0),
}

# A limit must be a value the sample schema would accept: the same physical ranges.
PHYSICAL_RANGES: dict[Parameter, tuple[float, float]] = {
    Parameter.PULSE: PULSE_RANGE,
    Parameter.RESP_RATE: RESP_RATE_RANGE,
    Parameter.SPO2: SPO2_RANGE,
    Parameter.SYSTOLIC: SYSTOLIC_RANGE,
    Parameter.TEMPERATURE: TEMPERATURE_RANGE,
}


def column_name(parameter: Parameter, bound: Bound) -> str:
    """The AlarmLimits column that holds one override: `pulse_extreme_low`."""
    return f"{parameter.value}_{bound.value}"


def is_physical(parameter: Parameter, value: float) -> bool:
    low, high = PHYSICAL_RANGES[parameter]
    return math.isfinite(value) and low <= value <= high
