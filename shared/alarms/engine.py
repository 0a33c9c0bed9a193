"""The alarm engine: samples in, events and new episode states out, with no I/O.

Time is the samples' own timestamps, never the wall clock, so replaying a stream gives the
same alarms. The engine holds only its settings; the caller keeps the episodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.alarms.conditions import (
    LATCHING,
    PRIORITY,
    Condition,
    Crossing,
    Limit,
    Parameter,
    Priority,
    Side,
)
from shared.alarms.episode import Alarm, Episode


class EventKind(StrEnum):
    RAISED = "raised"
    UPGRADED = "upgraded"  # the same episode went extreme: medium became high
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    condition: Condition
    priority: Priority
    value: float  # the sample's value; for a resolution by acknowledgement, the last one
    limit: float  # the limit crossed, or for a resolution the one the value is back inside
    timestamp: datetime  # the sample's, or the acknowledgement's


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
        # Naive and aware instants do not compare; refuse here rather than mid-stream.
        if self.timestamp.tzinfo is None:
            raise ValueError(f"sample timestamp must carry a zone: {self.timestamp!r}")

    @classmethod
    def from_vitals(cls, vitals: Mapping[str, Any]) -> Sample:
        """From a decoded sample as data_app stores it (`load_vitals`: systolic split out)."""
        return cls(
            timestamp=vitals["timestamp"],
            **{name: vitals.get(name) for name in (*Parameter, "diastolic")},
        )

    def value(self, parameter: Parameter) -> float | None:
        """The parameter's value, or None if missing or not a finite number."""
        value = getattr(self, parameter.value)
        # NaN or inf is a sensor fault, not physiology: it is treated as no value at all.
        return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Step:
    events: tuple[Event, ...]
    episodes: dict[Condition, Episode] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmEngine:
    """One patient's limits and the timing rules; `step` each sample, `acknowledge` alarms.

    `delay`: how long a normal-limit crossing must persist before it raises, and how long
    a value must be back inside before its alarm resolves. `max_gap`: a longer silence
    between two samples breaks the persistence, as nothing is known of the time between.
    """

    limits: Mapping[Parameter, Limit]
    delay: timedelta = timedelta(seconds=10)
    max_gap: timedelta = timedelta(seconds=15)

    def __post_init__(self) -> None:
        if self.delay < timedelta(0):
            raise ValueError(f"delay must not be negative, got {self.delay}")
        if self.max_gap <= timedelta(0):
            raise ValueError(f"max_gap must be positive, got {self.max_gap}")
        for parameter, limit in self.limits.items():
            if not isinstance(parameter, Parameter) or not isinstance(limit, Limit):
                raise ValueError(f"limits must map a Parameter to a Limit: {parameter!r}")

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(Condition(p, side) for p in self.limits for side in Side)

    def step(self, episodes: Mapping[Condition, Episode], sample: Sample) -> Step:
        """Apply one sample to every condition; missing episodes start idle."""
        new = dict(episodes)
        events: list[Event] = []
        for condition in self.conditions:
            value = sample.value(condition.parameter)
            episode = episodes.get(condition, Episode())
            if value is None:
                new.setdefault(condition, episode)
                continue
            new[condition], event = self._apply(condition, episode, value, sample.timestamp)
            if event is not None:
                events.append(event)
        return Step(tuple(events), new)

    def acknowledge(self, condition: Condition, episode: Episode, at: datetime) -> Step:
        """A clinician acknowledged the alarm: a recovered latched one resolves."""
        alarm = episode.alarm
        if alarm is None or alarm.acknowledged_at is not None:
            return Step((), {condition: episode})
        if alarm.recovered_at is None:
            acknowledged = replace(alarm, acknowledged_at=at)
            return Step((), {condition: replace(episode, alarm=acknowledged)})
        limit = self.limits[condition.parameter].threshold(condition.side)
        # Limits may have changed since the alarm was raised; fall back to its own.
        limit = alarm.limit if limit is None else limit
        event = _event(EventKind.RESOLVED, condition, alarm, alarm.last_value, limit, at)
        return Step((event,), {condition: Episode(last_seen=episode.last_seen)})

    def _apply(
        self, condition: Condition, episode: Episode, value: float, at: datetime
    ) -> tuple[Episode, Event | None]:
        if episode.last_seen is not None and at <= episode.last_seen:
            return episode, None  # late or repeated: state never moves backwards
        limit = self.limits[condition.parameter]
        reading = _Reading(
            condition=condition,
            limit=limit,
            value=value,
            at=at,
            crossing=limit.crossing(condition.side, value),
            gap=episode.last_seen is not None and at - episode.last_seen > self.max_gap,
        )
        episode = replace(episode, last_seen=at)
        if episode.alarm is None:
            return self._idle(episode, reading)
        return self._alarmed(episode, episode.alarm, reading)

    def _idle(self, episode: Episode, r: _Reading) -> tuple[Episode, Event | None]:
        """No alarm yet: a crossing starts (or continues) pending, and raises once due."""
        if r.crossing is None:
            return replace(episode, pending_since=None), None
        since = episode.pending_since
        if since is None or r.gap:
            since = r.at
        # An extreme value raises at once; a normal crossing once it has lasted the delay.
        if r.crossing is not Crossing.EXTREME and r.at - since < self.delay:
            return replace(episode, pending_since=since), None
        priority = PRIORITY[r.crossing]
        threshold = r.threshold(r.crossing)
        alarm = Alarm(
            priority=priority,
            onset=since,
            started_at=r.at,
            limit=threshold,
            worst=r.value,
            last_value=r.value,
            latched=priority in LATCHING,
        )
        event = _event(EventKind.RAISED, r.condition, alarm, r.value, threshold, r.at)
        return Episode(last_seen=r.at, alarm=alarm), event

    def _alarmed(self, episode: Episode, alarm: Alarm, r: _Reading) -> tuple[Episode, Event | None]:
        """An alarm is showing: it may worsen, upgrade, start recovering, latch or resolve."""
        alarm = replace(alarm, last_value=r.value)
        if r.crossing is not None:
            # Out again: a latched alarm shows as active once more, still the same episode.
            worst = (
                min(alarm.worst, r.value)
                if r.condition.side is Side.LOW
                else max(alarm.worst, r.value)
            )
            alarm = replace(alarm, worst=worst, recovered_at=None)
            episode = replace(episode, recovering_since=None)
            priority = PRIORITY[r.crossing]
            if not priority.outranks(alarm.priority):
                return replace(episode, alarm=alarm), None
            # Escalation re-annunciates: an acknowledgement of the lesser alarm is void.
            threshold = r.threshold(r.crossing)
            alarm = replace(
                alarm,
                priority=priority,
                limit=threshold,
                latched=alarm.latched or priority in LATCHING,
                acknowledged_at=None,
            )
            event = _event(EventKind.UPGRADED, r.condition, alarm, r.value, threshold, r.at)
            return replace(episode, alarm=alarm), event
        if alarm.recovered_at is not None:
            return replace(episode, alarm=alarm), None  # latched until acknowledged
        since = episode.recovering_since
        if since is None or r.gap:
            since = r.at
        if r.at - since < self.delay:
            return replace(episode, alarm=alarm, recovering_since=since), None
        if alarm.latched and alarm.acknowledged_at is None:
            latched = replace(alarm, recovered_at=r.at)
            return replace(episode, alarm=latched, recovering_since=None), None
        threshold = r.threshold(None, fallback=alarm.limit)
        event = _event(EventKind.RESOLVED, r.condition, alarm, r.value, threshold, r.at)
        return Episode(last_seen=r.at), event


@dataclass(frozen=True, slots=True)
class _Reading:
    """One sample's value for one condition, with what the engine derives from it."""

    condition: Condition
    limit: Limit
    value: float
    at: datetime
    crossing: Crossing | None
    gap: bool  # more than max_gap since the episode's previous sample

    def threshold(self, crossing: Crossing | None, fallback: float | None = None) -> float:
        threshold = self.limit.threshold(self.condition.side, crossing)
        threshold = fallback if threshold is None else threshold
        # A crossing implies a limit on its side; a resolution falls back to the alarm's own,
        # for limits edited while the alarm showed.
        assert threshold is not None
        return threshold


def _event(
    kind: EventKind,
    condition: Condition,
    alarm: Alarm,
    value: float,
    limit: float,
    at: datetime,
) -> Event:
    return Event(kind, condition, alarm.priority, value, limit, at)
