"""Physiological alarm conditions (IEC 60601-1-8 style), pure and deterministic.

data_app calls `AlarmEngine.step` per sample inside its storage transaction, storing the
returned episodes (`Episode.to_plain`) and events; see `engine` for the timing rules.
"""

from shared.alarms.conditions import (
    LATCHING,
    PRIORITY,
    Condition,
    Crossing,
    Limits,
    Parameter,
    Priority,
    Side,
)
from shared.alarms.engine import AlarmEngine, Event, EventKind, Step
from shared.alarms.episode import Alarm, Episode, State
from shared.alarms.samples import Sample

__all__ = [
    "LATCHING",
    "PRIORITY",
    "Alarm",
    "AlarmEngine",
    "Condition",
    "Crossing",
    "Episode",
    "Event",
    "EventKind",
    "Limits",
    "Parameter",
    "Priority",
    "Sample",
    "Side",
    "State",
    "Step",
]
