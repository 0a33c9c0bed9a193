"""What an alarm condition is: a parameter, a side of its limits, and its priority.

Names follow NEWS2's `PARAMETERS`, the names data_app stores a decoded sample under.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# What the engine watches: the vitals a patient's alarm limits name (NEWS2's `PARAMETERS`; a
# test keeps the two equal).
from shared.alarm_limits import Parameter

__all__ = [
    "LATCHING",
    "PRIORITY",
    "Condition",
    "Crossing",
    "Limit",
    "Parameter",
    "Priority",
    "Side",
]


class Side(StrEnum):
    LOW = "low"
    HIGH = "high"


class Crossing(StrEnum):
    """How far out a value is: past the normal limit, or past the wider extreme one."""

    NORMAL = "normal"
    EXTREME = "extreme"


class Priority(StrEnum):
    MEDIUM = "medium"
    HIGH = "high"

    def outranks(self, other: Priority) -> bool:
        return _RANK.index(self) > _RANK.index(other)


_RANK = (Priority.MEDIUM, Priority.HIGH)  # ascending urgency


# IEC 60601-1-8 leaves the mapping to the manufacturer. An extreme value is immediately
# life-threatening (high); a normal-limit crossing calls for a prompt response (medium).
PRIORITY: dict[Crossing, Priority] = {
    Crossing.NORMAL: Priority.MEDIUM,
    Crossing.EXTREME: Priority.HIGH,
}

# High-priority alarms latch: a nurse must see one that came and went while away.
LATCHING: frozenset[Priority] = frozenset({Priority.HIGH})

_NAMES: dict[Parameter, str] = {
    Parameter.PULSE: "Pulse",
    Parameter.RESP_RATE: "Respiratory rate",
    Parameter.SPO2: "SpO2",
    Parameter.SYSTOLIC: "Systolic BP",
    Parameter.TEMPERATURE: "Temperature",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One alarm condition, e.g. SpO2 low; a patient has at most one episode of each."""

    parameter: Parameter
    side: Side

    @property
    def text(self) -> str:
        """The central station's wording, e.g. "SpO2 low"."""
        return f"{_NAMES[self.parameter]} {self.side}"

    def __str__(self) -> str:
        return f"{self.parameter}_{self.side}"

    @classmethod
    def parse(cls, name: str) -> Condition:
        """The inverse of `str()`: "spo2_low" -> Condition(SPO2, LOW)."""
        parameter, _, side = name.rpartition("_")
        return cls(Parameter(parameter), Side(side))


def _beyond(side: Side, value: float, limit: float | None) -> bool:
    # A value equal to a limit is still inside it.
    if limit is None:
        return False
    return value < limit if side is Side.LOW else value > limit


@dataclass(frozen=True, slots=True)
class Limit:
    """One parameter's limits; any may be None (no alarm on that side at that level)."""

    low: float | None = None
    high: float | None = None
    extreme_low: float | None = None
    extreme_high: float | None = None

    def __post_init__(self) -> None:
        values = (self.extreme_low, self.low, self.high, self.extreme_high)
        if any(v is not None and not math.isfinite(v) for v in values):
            raise ValueError(f"limits must be finite numbers: {self}")
        present = [v for v in values if v is not None]
        # Extremes are the wider limits, so the four must not decrease in this order.
        if present != sorted(present):
            raise ValueError(
                f"limits must satisfy extreme_low <= low <= high <= extreme_high: {self}"
            )

    def normal(self, side: Side) -> float | None:
        return self.low if side is Side.LOW else self.high

    def extreme(self, side: Side) -> float | None:
        return self.extreme_low if side is Side.LOW else self.extreme_high

    def crossing(self, side: Side, value: float) -> Crossing | None:
        """How far past this side's limits the value is; None when inside them."""
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
