"""Per-patient alarm limits: the vital signs they apply to and the adult ICU defaults.

A limit beyond the normal band (low/high) raises an alarm after the engine's confirmation
delay; one beyond the wider extreme band raises it at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


class Side(StrEnum):
    LOW = "low"
    HIGH = "high"


class Crossing(StrEnum):
    """How far out a value is: past the normal limit, or past the wider extreme one."""

    NORMAL = "normal"
    EXTREME = "extreme"


# The bounds from lowest to highest, as consistent limits order them.
_ORDER = (Bound.EXTREME_LOW, Bound.LOW, Bound.HIGH, Bound.EXTREME_HIGH)


@dataclass(frozen=True, slots=True)
class Limits:
    """One parameter's limits; None means no alarm on that side at that level (SpO2 has no
    high). Built from anything a client sends, so `problems` says whether they hold together;
    the alarm engine takes only limits without problems."""

    low: float | None = None
    high: float | None = None
    extreme_low: float | None = None
    extreme_high: float | None = None

    def get(self, bound: Bound) -> float | None:
        return getattr(self, bound.value)

    def with_bounds(self, values: dict[Bound, float | None]) -> Limits:
        return replace(self, **{bound.value: value for bound, value in values.items()})

    def problems(self) -> dict[Bound, str]:
        """What makes these limits inconsistent, by bound; empty when they hold together.

        Every present pair is compared, not only neighbours, since a missing bound must not
        let, say, an extreme low above the high through.
        """
        found: dict[Bound, str] = {}
        present: list[tuple[Bound, float]] = []
        for bound in _ORDER:
            value = self.get(bound)
            if value is None:
                continue
            if not math.isfinite(value):
                found[bound] = "Must be a finite number."
                continue
            present.append((bound, value))
        for i, (lower, low_value) in enumerate(present):
            for upper, high_value in present[i + 1 :]:
                if (lower, upper) == (Bound.LOW, Bound.HIGH):
                    if low_value >= high_value:
                        found.setdefault(Bound.LOW, f"Must be below high ({high_value:g}).")
                elif low_value > high_value:
                    # Blame the extreme: it is the wider limit, set around the normal ones.
                    if upper is Bound.EXTREME_HIGH:
                        message = f"Must be at or above {lower} ({low_value:g})."
                        found.setdefault(upper, message)
                    else:
                        message = f"Must be at or below {upper} ({high_value:g})."
                        found.setdefault(lower, message)
        return found

    def normal(self, side: Side) -> float | None:
        return self.low if side is Side.LOW else self.high

    def extreme(self, side: Side) -> float | None:
        return self.extreme_low if side is Side.LOW else self.extreme_high

    def crossing(self, side: Side, value: float) -> Crossing | None:
        """How far past this side's limits the value is; None when inside them. A value equal
        to a limit is still inside it."""
        if _beyond(side, value, self.extreme(side)):
            return Crossing.EXTREME
        if _beyond(side, value, self.normal(side)):
            return Crossing.NORMAL
        return None

    def threshold(self, side: Side, crossing: Crossing | None = None) -> float | None:
        """The limit a crossing passed; for None, the one a value must be back inside."""
        if crossing is Crossing.EXTREME:
            return self.extreme(side)
        normal = self.normal(side)
        return normal if normal is not None else self.extreme(side)


def _beyond(side: Side, value: float, limit: float | None) -> bool:
    if limit is None:
        return False
    return value < limit if side is Side.LOW else value > limit


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


def effective_limits(overrides: object | None) -> dict[Parameter, Limits]:
    """Each parameter's limits: the defaults, with each bound that `overrides` (an
    AlarmLimits row, or None) sets; a null column keeps the default."""
    if overrides is None:
        return dict(DEFAULT_LIMITS)
    return {
        parameter: DEFAULT_LIMITS[parameter].with_bounds(
            {
                bound: value
                for bound in Bound
                if (value := getattr(overrides, column_name(parameter, bound))) is not None
            }
        )
        for parameter in Parameter
    }


def quiet_ranges(limits: Mapping[Parameter, Limits]) -> tuple[tuple[str, float, float], ...]:
    """Per parameter, the range inside which a value crosses none of its limits (the normal
    ones, else the extremes, which consistent limits put outside them)."""
    ranges = []
    for parameter, limit in limits.items():
        low = limit.low if limit.low is not None else limit.extreme_low
        high = limit.high if limit.high is not None else limit.extreme_high
        ranges.append(
            (
                parameter.value,
                -math.inf if low is None else low,
                math.inf if high is None else high,
            )
        )
    return tuple(ranges)


def all_quiet(ranges: tuple[tuple[str, float, float], ...], vitals: object) -> bool:
    """Whether every value of `vitals` (a VitalsSample, or the engine's Sample) lies inside its
    quiet range: then the alarm engine, stepping idle episodes, would raise nothing and
    remember nothing. A missing value is quiet; so is NaN (no comparison holds), which the
    engine also ignores."""
    for name, low, high in ranges:
        value = getattr(vitals, name, None)
        if value is not None and (value < low or value > high):
            return False
    return True


def is_physical(parameter: Parameter, value: float) -> bool:
    low, high = PHYSICAL_RANGES[parameter]
    return math.isfinite(value) and low <= value <= high
