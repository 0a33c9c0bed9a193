"""One (patient, condition) episode's state, as plain values for a DB row or JSON column."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.alarms.conditions import Priority


class State(StrEnum):
    IDLE = "idle"  # inside the limits, nothing to show
    PENDING = "pending"  # crossing, for less than the delay so far
    ACTIVE = "active"  # alarm raised, value still out
    RECOVERING = "recovering"  # alarm raised, value back in for less than the delay
    LATCHED = "latched"  # recovered, but latched until acknowledged


@dataclass(frozen=True, slots=True)
class Alarm:
    priority: Priority
    onset: datetime  # the first crossing sample of the episode
    started_at: datetime  # the sample that raised it
    limit: float  # the limit whose crossing raised (or last upgraded) it
    worst: float  # the furthest-out value of the episode
    last_value: float
    latched: bool
    acknowledged_at: datetime | None = None
    recovered_at: datetime | None = None  # set only on a latched alarm left showing


@dataclass(frozen=True, slots=True)
class Episode:
    """What the engine remembers of one condition for one patient; the default is idle."""

    last_seen: datetime | None = None  # the newest sample applied; older ones are ignored
    pending_since: datetime | None = None
    recovering_since: datetime | None = None
    alarm: Alarm | None = None

    @property
    def state(self) -> State:
        if self.alarm is None:
            return State.IDLE if self.pending_since is None else State.PENDING
        if self.alarm.recovered_at is not None:
            return State.LATCHED
        return State.ACTIVE if self.recovering_since is None else State.RECOVERING

    def to_plain(self) -> dict[str, Any]:
        """JSON-ready values: instants as ISO 8601 strings, enums as their values."""
        plain = _plain(self)
        plain["alarm"] = None if self.alarm is None else _plain(self.alarm)
        return plain

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> Episode:
        """The inverse of `to_plain`; KeyError, TypeError or ValueError for anything else."""
        alarm = plain["alarm"]
        return cls(
            last_seen=_instant(plain["last_seen"], optional=True),
            pending_since=_instant(plain["pending_since"], optional=True),
            recovering_since=_instant(plain["recovering_since"], optional=True),
            alarm=None if alarm is None else _alarm(alarm),
        )


def _alarm(plain: dict[str, Any]) -> Alarm:
    if not isinstance(plain["latched"], bool):
        raise ValueError(f"latched must be a boolean, got {plain['latched']!r}")
    return Alarm(
        priority=Priority(plain["priority"]),
        onset=_instant(plain["onset"]),
        started_at=_instant(plain["started_at"]),
        limit=float(plain["limit"]),
        worst=float(plain["worst"]),
        last_value=float(plain["last_value"]),
        latched=plain["latched"],
        acknowledged_at=_instant(plain["acknowledged_at"], optional=True),
        recovered_at=_instant(plain["recovered_at"], optional=True),
    )


def _plain(value: Episode | Alarm) -> dict[str, Any]:
    plain = {}
    for field in fields(value):
        item = getattr(value, field.name)
        if isinstance(item, datetime):
            item = item.isoformat()
        elif isinstance(item, StrEnum):
            item = item.value
        plain[field.name] = item
    return plain


def _instant(text: str | None, optional: bool = False) -> datetime | None:
    if text is None and optional:
        return None
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"instant must carry a zone: {text!r}")
    return instant
