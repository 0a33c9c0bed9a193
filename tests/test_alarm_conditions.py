"""The alarm engine's behaviour, scenario by scenario, on the samples' own timestamps."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from shared.alarm_limits import DEFAULT_LIMITS, Bound
from shared.alarms import (
    AlarmEngine,
    Condition,
    Episode,
    EventKind,
    Limits,
    Parameter,
    Priority,
    Sample,
    Side,
    State,
)
from tests.alarm_streams import LIMITS, PULSE_HIGH, SPO2_LOW, Run, at, every

SPO2 = Parameter.SPO2


# 1. Condition delay


def test_a_crossing_raises_once_it_has_lasted_the_delay():
    run = Run().feed(SPO2, every(5, [88, 88]))
    assert run.events == []
    assert run.episode(SPO2_LOW).state is State.PENDING

    (event,) = run.feed(SPO2, [(10, 88)]).events
    assert event.kind is EventKind.RAISED
    assert event.condition == SPO2_LOW
    assert event.priority is Priority.MEDIUM
    assert (event.value, event.limit, event.timestamp) == (88, 90, at(10))
    alarm = run.episode(SPO2_LOW).alarm
    assert (alarm.onset, alarm.started_at, alarm.latched) == (at(0), at(10), False)
    assert run.episode(SPO2_LOW).state is State.ACTIVE


def test_a_spike_shorter_than_the_delay_raises_nothing():
    run = Run().feed(SPO2, every(5, [88, 88, 95, 88, 88, 95, 88, 95]))
    assert run.events == []
    assert run.episode(SPO2_LOW).state is State.IDLE


def test_a_value_equal_to_its_limit_is_inside():
    run = Run().feed(SPO2, every(5, [90] * 6))
    assert run.events == []
    assert run.episode(SPO2_LOW).state is State.IDLE


@pytest.mark.parametrize(("delay", "raised_at"), [(0, 0), (5, 5), (20, 20)])
def test_the_delay_is_the_engines_setting(delay, raised_at):
    run = Run(engine=AlarmEngine(LIMITS, delay=timedelta(seconds=delay)))
    run.feed(SPO2, every(5, [88] * 6))
    assert run.kinds() == [("raised", raised_at)]


def test_a_gap_longer_than_max_gap_restarts_the_persistence():
    run = Run().feed(SPO2, [(0, 88), (30, 88)])
    assert run.events == []
    assert run.episode(SPO2_LOW).pending_since == at(30)
    run.feed(SPO2, [(35, 88), (40, 88)])
    assert run.kinds() == [("raised", 40)]


def test_a_short_gap_counts_only_up_to_the_next_sample():
    # A lost sample (10 s from 9 to 19) is bridged, but the persistence is still
    # measured from sample to sample: 0 then 9 s is under the 10 s delay.
    run = Run().feed(SPO2, [(0, 88), (9, 88)])
    assert run.events == []
    run.feed(SPO2, [(19, 88)])
    assert run.kinds() == [("raised", 19)]


def test_time_passing_without_a_value_raises_nothing():
    run = Run().feed(SPO2, every(5, [88, 88]))
    run.feed(Parameter.PULSE, every(5, [80] * 10, start=10))  # SpO2 absent meanwhile
    assert run.events == []
    assert run.episode(SPO2_LOW).pending_since == at(0)


# 2. Extreme values


def test_an_extreme_value_raises_high_at_once():
    (event,) = Run().feed(SPO2, [(0, 80)]).events
    assert (event.kind, event.priority, event.value, event.limit) == (
        EventKind.RAISED,
        Priority.HIGH,
        80,
        85,
    )
    assert event.timestamp == at(0)


def test_an_extreme_value_during_the_delay_raises_high_with_the_episodes_onset():
    run = Run().feed(SPO2, [(0, 88), (5, 80)])
    assert [(e.kind, e.priority) for e in run.events] == [(EventKind.RAISED, Priority.HIGH)]
    assert run.episode(SPO2_LOW).alarm.onset == at(0)


@pytest.mark.parametrize(
    ("value", "side", "priority", "limit"),
    [(160, Side.HIGH, Priority.HIGH, 150), (35, Side.LOW, Priority.HIGH, 40)],
)
def test_each_side_has_its_own_extreme(value, side, priority, limit):
    (event,) = Run().feed(Parameter.PULSE, [(0, value)]).events
    assert event.condition == Condition(Parameter.PULSE, side)
    assert (event.priority, event.limit) == (priority, limit)


def test_an_extreme_only_limit_alarms_without_a_normal_one():
    run = Run(engine=AlarmEngine({SPO2: Limits(extreme_low=85)}))
    run.feed(SPO2, [(0, 88), (5, 84), (10, 86), (15, 86), (20, 86)])
    assert run.kinds() == [("raised", 5)]
    assert run.episode(SPO2_LOW).state is State.LATCHED


# 3. One alarm per episode


def test_an_active_alarm_raises_nothing_more_and_keeps_the_worst_value():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 87, 86.5, 89, 88]))
    assert run.kinds() == [("raised", 10)]
    alarm = run.episode(SPO2_LOW).alarm
    assert (alarm.worst, alarm.last_value) == (86.5, 88)


def test_going_extreme_upgrades_the_alarm_and_never_downgrades_it():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 80, 80, 88, 88]))
    assert run.kinds() == [("raised", 10), ("upgraded", 15)]
    upgraded = run.events[1]
    assert (upgraded.priority, upgraded.value, upgraded.limit) == (Priority.HIGH, 80, 85)
    alarm = run.episode(SPO2_LOW).alarm
    assert (alarm.priority, alarm.limit, alarm.latched) == (Priority.HIGH, 85, True)


def test_an_upgrade_voids_the_acknowledgement_of_the_lesser_alarm():
    run = Run().feed(SPO2, every(5, [88, 88, 88]))
    run.acknowledge(SPO2_LOW, 12)
    assert run.episode(SPO2_LOW).alarm.acknowledged_at == at(12)
    run.feed(SPO2, [(15, 80)])
    assert run.episode(SPO2_LOW).alarm.acknowledged_at is None


# 4. Resolution


def test_a_medium_alarm_resolves_once_back_inside_for_the_delay():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 95, 95]))
    assert run.kinds() == [("raised", 10)]
    assert run.episode(SPO2_LOW).state is State.RECOVERING
    run.feed(SPO2, [(25, 96)])
    assert run.kinds() == [("raised", 10), ("resolved", 25)]
    resolved = run.events[1]
    assert (resolved.priority, resolved.value, resolved.limit) == (Priority.MEDIUM, 96, 90)
    assert run.episode(SPO2_LOW) == Episode(last_seen=at(25))


def test_a_bounce_out_before_the_delay_keeps_the_alarm_active():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 95, 95, 88, 95, 95]))
    assert run.kinds() == [("raised", 10)]
    run.feed(SPO2, [(40, 95)])
    assert run.kinds() == [("raised", 10), ("resolved", 40)]


def test_a_new_episode_after_resolution_waits_the_delay_again():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 95, 95, 95, 88, 88, 88]))
    assert run.kinds() == [("raised", 10), ("resolved", 25), ("raised", 40)]


# 5. Latching


def test_a_high_alarm_latches_after_recovery_until_acknowledged():
    run = Run().feed(SPO2, every(5, [80, 95, 95, 95, 95]))
    assert run.kinds() == [("raised", 0)]
    assert run.episode(SPO2_LOW).state is State.LATCHED
    assert run.episode(SPO2_LOW).alarm.recovered_at == at(15)

    (event,) = run.acknowledge(SPO2_LOW, 60)
    assert (event.kind, event.priority, event.value, event.limit, event.timestamp) == (
        EventKind.RESOLVED,
        Priority.HIGH,
        95,
        90,
        at(60),
    )
    assert run.episode(SPO2_LOW) == Episode(last_seen=at(20))


def test_an_acknowledged_high_alarm_resolves_on_recovery():
    run = Run().feed(SPO2, [(0, 80)])
    assert run.acknowledge(SPO2_LOW, 2) == ()
    episode = run.episode(SPO2_LOW)
    assert (episode.state, episode.alarm.acknowledged_at) == (State.ACTIVE, at(2))
    run.feed(SPO2, every(5, [95, 95, 95], start=5))
    assert run.kinds() == [("raised", 0), ("resolved", 15)]


def test_a_latched_alarm_crossing_again_is_the_same_alarm_active_again():
    run = Run().feed(SPO2, every(5, [80, 95, 95, 95, 88]))
    assert run.episode(SPO2_LOW).state is State.ACTIVE
    run.feed(SPO2, every(5, [95, 95, 95], start=25))
    assert run.kinds() == [("raised", 0)]
    assert run.episode(SPO2_LOW).state is State.LATCHED


def test_an_upgraded_alarm_latches():
    run = Run().feed(SPO2, every(5, [88, 88, 88, 80, 95, 95, 95, 95]))
    assert run.kinds() == [("raised", 10), ("upgraded", 15)]
    assert run.episode(SPO2_LOW).state is State.LATCHED


def test_acknowledging_nothing_or_twice_changes_nothing():
    run = Run()
    assert run.acknowledge(SPO2_LOW, 0) == ()
    assert run.episode(SPO2_LOW) == Episode()
    run.feed(SPO2, [(0, 80)])
    run.acknowledge(SPO2_LOW, 1)
    before = run.episode(SPO2_LOW)
    assert run.acknowledge(SPO2_LOW, 2) == ()
    assert run.episode(SPO2_LOW) == before


# 6. Missing values, hostile values and late samples


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_no_usable_value_leaves_the_episode_unchanged(value):
    run = Run().feed(SPO2, every(5, [88, 88]))
    before = run.episode(SPO2_LOW)
    run.feed(SPO2, [(10, value), (60, value)])
    assert run.events == []
    assert run.episode(SPO2_LOW) == before


@pytest.mark.parametrize("seconds", [3, 5, -3600])
def test_a_late_or_repeated_sample_is_ignored(seconds):
    run = Run().feed(SPO2, every(5, [88, 88, 88]))
    before = run.episode(SPO2_LOW)
    run.feed(SPO2, [(seconds, 99)])
    assert run.episode(SPO2_LOW) == before
    run.feed(SPO2, [(15, 88)])
    assert run.kinds() == [("raised", 10)]


def test_a_late_sample_does_not_undo_a_pending_crossing():
    run = Run().feed(SPO2, [(5, 88), (2, 95), (10, 88), (15, 88)])
    assert run.kinds() == [("raised", 15)]


def test_sides_and_parameters_are_separate_episodes():
    run = Run()
    run.feed(Parameter.PULSE, every(5, [130, 130, 130]))
    assert run.kinds() == [("raised", 10)]
    assert run.events[0].condition == PULSE_HIGH
    assert run.episode(Condition(Parameter.PULSE, Side.LOW)).state is State.IDLE
    assert run.episode(SPO2_LOW) == Episode()


# Construction refuses what would make no sense


@pytest.mark.parametrize(
    ("limit", "blamed"),
    [
        ({"low": 100, "high": 90}, "low"),
        ({"low": 90, "high": 90}, "low"),
        ({"low": 90, "extreme_low": 95}, "extreme_low"),
        ({"high": 120, "extreme_high": 110}, "extreme_high"),
        # Not neighbours: with low and high missing, the extremes still must not cross.
        ({"extreme_low": 100, "high": 90}, "extreme_low"),
        ({"extreme_low": 100, "extreme_high": 90}, "extreme_high"),
        ({"low": 100, "extreme_high": 90}, "extreme_high"),
        ({"low": math.nan}, "low"),
        ({"high": math.inf}, "high"),
    ],
)
def test_the_engine_refuses_limits_that_do_not_hold_together(limit, blamed):
    assert set(Limits(**limit).problems()) == {Bound(blamed)}
    with pytest.raises(ValueError, match="limits must hold together"):
        AlarmEngine({SPO2: Limits(**limit)})


def test_the_default_limits_hold_together():
    assert {p: d.problems() for p, d in DEFAULT_LIMITS.items()} == {p: {} for p in Parameter}


def test_a_value_equal_to_a_limit_is_inside_it():
    limits = Limits(low=90, high=100, extreme_low=90, extreme_high=100)
    assert limits.crossing(Side.LOW, 90) is None
    assert limits.crossing(Side.HIGH, 100) is None


@pytest.mark.parametrize(
    "settings",
    [{"delay": timedelta(seconds=-1)}, {"max_gap": timedelta(0)}],
)
def test_engine_refuses_negative_timing(settings):
    with pytest.raises(ValueError, match="must"):
        AlarmEngine(LIMITS, **settings)


def test_engine_refuses_limits_keyed_by_plain_strings():
    with pytest.raises(ValueError, match="Parameter to Limits"):
        AlarmEngine({"spo2": Limits(low=90)})


def test_a_sample_needs_a_zoned_timestamp():
    with pytest.raises(ValueError, match="zone"):
        Sample(at(0).replace(tzinfo=None), spo2=95)


def test_a_latched_alarm_resolves_even_once_its_limits_are_gone():
    run = Run().feed(SPO2, every(5, [80, 95, 95, 95]))
    run.engine = AlarmEngine({Parameter.PULSE: LIMITS[Parameter.PULSE]})
    (event,) = run.acknowledge(SPO2_LOW, 30)
    assert (event.kind, event.limit) == (EventKind.RESOLVED, 85)


def test_an_acknowledgement_needs_a_zoned_instant():
    run = Run().feed(SPO2, [(0, 80)])
    with pytest.raises(ValueError, match="zone"):
        run.engine.acknowledge(SPO2_LOW, run.episode(SPO2_LOW), at(1).replace(tzinfo=None))
