"""Helpers for the alarm engine's tests: streams of one parameter, timed in seconds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.alarms import AlarmEngine, Condition, Episode, Event, Limits, Parameter, Sample, Side

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SPO2_LOW = Condition(Parameter.SPO2, Side.LOW)
PULSE_HIGH = Condition(Parameter.PULSE, Side.HIGH)
LIMITS = {
    Parameter.SPO2: Limits(low=90, extreme_low=85),
    Parameter.PULSE: Limits(low=50, high=120, extreme_low=40, extreme_high=150),
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Run:
    """An engine fed sample by sample, remembering every event and the episodes."""

    engine: AlarmEngine = field(default_factory=lambda: AlarmEngine(LIMITS))
    episodes: dict[Condition, Episode] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def feed(self, parameter: Parameter, stream: Iterable[tuple[float, float | None]]) -> Run:
        for seconds, value in stream:
            self.sample(Sample(at(seconds), **{parameter.value: value}))
        return self

    def sample(self, sample: Sample) -> tuple[Event, ...]:
        step = self.engine.step(self.episodes, sample)
        self.episodes = step.episodes
        self.events.extend(step.events)
        return step.events

    def acknowledge(self, condition: Condition, seconds: float) -> tuple[Event, ...]:
        step = self.engine.acknowledge(condition, self.episode(condition), at(seconds))
        self.episodes.update(step.episodes)
        self.events.extend(step.events)
        return step.events

    def episode(self, condition: Condition) -> Episode:
        return self.episodes.get(condition, Episode())

    def kinds(self) -> list[tuple[str, float]]:
        """Each event as (kind, seconds after T0), in order."""
        return [(e.kind.value, (e.timestamp - T0).total_seconds()) for e in self.events]


def every(seconds: float, values: Iterable[float | None], start: float = 0):
    """(t, value) pairs `seconds` apart from `start`."""
    return [(start + i * seconds, v) for i, v in enumerate(values)]
