"""The alarm engine: samples in, events and new episode states out, with no I/O.

Time is the samples' own timestamps, never the wall clock, so replaying a stream gives the
same alarms. The engine holds only its settings; the caller keeps the episodes.

The rules, per condition (a parameter and a side of its limits):
- A normal-limit crossing raises a medium alarm once crossing samples have spanned `delay`;
  an extreme one raises high at once. A value equal to a limit is inside it.
- One alarm per episode. Going extreme during a medium alarm upgrades it to high (an
  UPGRADED event, and any acknowledgement is void); priority never goes back down.
- Back inside for `delay` resolves the alarm, unless it is latching (high) and not yet
  acknowledged: then it stays, LATCHED, until acknowledged, and a new crossing meanwhile
  is the same alarm active again. Acknowledging an alarm still out lets it resolve on
  recovery.
- Persistence is only ever measured between samples seen: more than `max_gap` between two
  restarts it. A missing, NaN or infinite value changes nothing; so does a sample no newer
  than the last one applied to the episode (late, or a redelivered duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

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
from shared.alarms.episode import Alarm, Episode
from shared.alarms.samples import Sample, require_zone


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
class Step:
    """A call's events, and the new state of each episode it covered, to store as given."""

    events: tuple[Event, ...]
    episodes: dict[Condition, Episode] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmEngine:
    """One patient's limits and the timing rules; `step` each sample, `acknowledge` alarms.

    `delay`: how long a normal-limit crossing must persist before it raises, and how long
    a value must be back inside before its alarm resolves. `max_gap`: a longer silence
    between two samples breaks the persistence, as nothing is known of the time between.
    """

    limits: Mapping[Parameter, Limits]
    delay: timedelta = timedelta(seconds=10)
    max_gap: timedelta = timedelta(seconds=15)

    def __post_init__(self) -> None:
        if self.delay < timedelta(0):
            raise ValueError(f"delay must not be negative, got {self.delay}")
        if self.max_gap <= timedelta(0):
            raise ValueError(f"max_gap must be positive, got {self.max_gap}")
        for parameter, limit in self.limits.items():
            if not isinstance(parameter, Parameter) or not isinstance(limit, Limits):
                raise ValueError(f"limits must map a Parameter to Limits: {parameter!r}")
            if problems := limit.problems():
                raise ValueError(f"limits must hold together: {parameter}: {problems}")

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
        require_zone(at)
        alarm = episode.alarm
        if alarm is None or alarm.acknowledged_at is not None:
            return Step((), {condition: episode})
        if alarm.recovered_at is None:
            acknowledged = replace(alarm, acknowledged_at=at)
            return Step((), {condition: replace(episode, alarm=acknowledged)})
        # Limits may have changed since the alarm was raised; fall back to its own.
        limits = self.limits.get(condition.parameter)
        limit = None if limits is None else limits.threshold(condition.side)
        limit = alarm.limit if limit is None else limit
        event = _event(EventKind.RESOLVED, condition, alarm, alarm.last_value, limit, at)
        return Step((event,), {condition: Episode(last_seen=episode.last_seen)})

    def _apply(
        self, condition: Condition, episode: Episode, value: float, at: datetime
    ) -> tuple[Episode, Event | None]:
        if episode.last_seen is not None and at <= episode.last_seen:
            # Late or repeated: state never moves backwards. A far-future sample would hold
            # the episode until time caught up, so callers pass only validated timestamps
            # (VitalsSchema refuses future ones).
            return episode, None
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
    limit: Limits
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
