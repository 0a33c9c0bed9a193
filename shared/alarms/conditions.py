"""What an alarm condition is: a parameter, a side of its limits, and its priority.

Names follow NEWS2's `PARAMETERS`, the names data_app stores a decoded sample under.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# What the engine watches: the vitals a patient's alarm limits name (NEWS2's `PARAMETERS`; a
# test keeps the two equal), and how a value crosses those limits.
from shared.alarm_limits import Crossing, Limits, Parameter, Side

__all__ = [
    "LATCHING",
    "PRIORITY",
    "Condition",
    "Crossing",
    "Limits",
    "Parameter",
    "Priority",
    "Side",
]


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
