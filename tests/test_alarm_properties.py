"""Properties of the alarm engine over random sample streams (Hypothesis)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.alarm_limits import DEFAULT_LIMITS, all_quiet, quiet_ranges
from shared.alarms import (
    AlarmEngine,
    Condition,
    Crossing,
    Episode,
    Event,
    EventKind,
    Parameter,
    Priority,
    Sample,
)
from tests.alarm_streams import LIMITS, at


@dataclass(frozen=True)
class Acknowledge:
    condition: Condition
    seconds: float


# Values cluster around the limits (SpO2 90/85 low, pulse 50/40 low and 120/150 high).
_SPO2 = st.one_of(st.integers(75, 100), st.none(), st.sampled_from([math.nan, math.inf]))
_PULSE = st.one_of(st.integers(30, 170), st.none(), st.just(math.nan))
# Mostly forward steps, some repeats and some going back in time.
_STEP = st.one_of(st.integers(1, 8), st.integers(9, 40), st.integers(-30, 0))
_CONDITIONS = st.sampled_from([c for c in AlarmEngine(LIMITS).conditions])
_EVENT = st.one_of(
    st.tuples(_STEP, _SPO2, _PULSE),
    st.tuples(st.integers(0, 10), _CONDITIONS).map(lambda t: Acknowledge(t[1], t[0])),
)
STREAMS = st.lists(_EVENT, max_size=80)
DELAYS = st.sampled_from([0, 5, 10, 20]).map(lambda s: timedelta(seconds=s))


def _inputs(stream):
    """The stream with absolute times: Samples and Acknowledges in order."""
    seconds, inputs = 0, []
    for item in stream:
        if isinstance(item, Acknowledge):
            inputs.append(Acknowledge(item.condition, seconds + item.seconds))
            continue
        step, spo2, pulse = item
        seconds += step
        inputs.append(Sample(at(seconds), pulse=pulse, spo2=spo2))
    return inputs


def _run(engine, inputs, through_json=False):
    episodes: dict[Condition, Episode] = {}
    events: list[Event] = []
    for item in inputs:
        if isinstance(item, Acknowledge):
            episode = episodes.get(item.condition, Episode())
            step = engine.acknowledge(item.condition, episode, at(item.seconds))
            episodes = {**episodes, **step.episodes}
        else:
            step = engine.step(episodes, item)
            episodes = step.episodes
        events.extend(step.events)
        if through_json:
            stored = json.loads(json.dumps({str(c): e.to_plain() for c, e in episodes.items()}))
            episodes = {Condition.parse(c): Episode.from_plain(e) for c, e in stored.items()}
    return events, episodes


@settings(max_examples=300, deadline=None)
@given(STREAMS, DELAYS)
def test_raised_and_resolved_alternate_per_condition(stream, delay):
    events, _ = _run(AlarmEngine(LIMITS, delay=delay), _inputs(stream))
    open_alarms: dict[Condition, Priority] = {}
    for event in events:
        if event.kind is EventKind.RAISED:
            assert event.condition not in open_alarms
            open_alarms[event.condition] = event.priority
        elif event.kind is EventKind.UPGRADED:
            assert open_alarms[event.condition] is Priority.MEDIUM
            assert event.priority is Priority.HIGH
            open_alarms[event.condition] = event.priority
        else:
            assert open_alarms.pop(event.condition) is event.priority


@settings(max_examples=300, deadline=None)
@given(STREAMS, DELAYS)
def test_no_raise_before_the_delay_of_continuous_crossing_unless_extreme(stream, delay):
    engine = AlarmEngine(LIMITS, delay=delay)
    inputs = _inputs(stream)
    events, _ = _run(engine, inputs)
    for event in (e for e in events if e.kind is EventKind.RAISED):
        side, limit = event.condition.side, LIMITS[event.condition.parameter]
        if event.priority is Priority.HIGH:
            assert limit.crossing(side, event.value) is Crossing.EXTREME
            continue
        # Walk back over the samples the engine applied for this parameter: the run of
        # crossings that ends at the raise, unbroken by a gap, must span the delay.
        applied = _applied(inputs, event.condition.parameter, until=event.timestamp)
        onset = applied[-1][0]
        for (earlier, value), (later, _) in zip(applied[-2::-1], applied[::-1], strict=False):
            if limit.crossing(side, value) is None or later - earlier > engine.max_gap:
                break
            onset = earlier
        assert applied[-1][0] == event.timestamp
        assert event.timestamp - onset >= delay


def _applied(inputs, parameter: Parameter, until):
    """(timestamp, value) of each sample applied for `parameter`, up to `until`."""
    applied = []
    for item in inputs:
        if isinstance(item, Acknowledge) or item.value(parameter) is None:
            continue
        if applied and item.timestamp <= applied[-1][0]:
            continue
        if item.timestamp > until:
            break
        applied.append((item.timestamp, item.value(parameter)))
    return applied


@settings(max_examples=150, deadline=None)
@given(STREAMS, DELAYS)
def test_the_engine_is_deterministic_and_its_state_survives_json(stream, delay):
    engine = AlarmEngine(LIMITS, delay=delay)
    inputs = _inputs(stream)
    first = _run(engine, inputs)
    assert _run(engine, inputs) == first
    # Storing the episodes between every sample, as data_app will, changes nothing.
    assert _run(engine, inputs, through_json=True) == first


@settings(max_examples=150, deadline=None)
@given(STREAMS, DELAYS)
def test_late_values_change_nothing(stream, delay):
    engine = AlarmEngine(LIMITS, delay=delay)
    inputs = [item for item in _inputs(stream) if not isinstance(item, Acknowledge)]
    # The same stream without each value no newer than its parameter's newest before it.
    newest: dict[Parameter, object] = {}
    in_order = []
    for item in inputs:
        kept = {}
        for parameter in (Parameter.PULSE, Parameter.SPO2):
            value = item.value(parameter)
            if value is not None and (
                parameter not in newest or item.timestamp > newest[parameter]
            ):
                newest[parameter] = item.timestamp
                kept[parameter.value] = value
        in_order.append(Sample(item.timestamp, **kept))
    assert _run(engine, inputs) == _run(engine, in_order)


# data_app skips the engine for a patient with nothing under way whose values are all quiet
# (shared/alarm_limits.all_quiet): the engine must agree that nothing would happen.
_VALUE = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 250))
_VITALS = st.fixed_dictionaries({parameter.value: _VALUE for parameter in Parameter})
_DELAY_OR_NONE = st.sampled_from([timedelta(0), timedelta(seconds=10)])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_VITALS, _DELAY_OR_NONE)
def test_quiet_values_are_exactly_those_the_engine_lets_pass(vitals, delay):
    engine = AlarmEngine(DEFAULT_LIMITS, delay=delay)
    sample = Sample(at(0), **vitals)
    step = engine.step({}, sample)
    nothing = not step.events and all(
        e.alarm is None and e.pending_since is None for e in step.episodes.values()
    )
    if all_quiet(quiet_ranges(DEFAULT_LIMITS), sample):
        assert nothing
    elif all(v is None or math.isfinite(v) for v in vitals.values()):
        # A finite value out of range starts something: pending, or an alarm at once.
        assert not nothing
