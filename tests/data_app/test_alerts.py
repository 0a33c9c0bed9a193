"""The alert state machine: rises notify at once, falls only once they have settled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from data_app.alerts import AlertDecision, AlertState, advance

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
RECOVERY = 3


def run(
    bands: list[str], state: AlertState | None = None, recovery_samples: int = RECOVERY
) -> tuple[AlertState, list[AlertDecision | None]]:
    """Feed one band per minute; return the final state and every decision."""
    state = state or AlertState()
    start = state.checked_at or START
    decisions = []
    for minute, band in enumerate(bands, start=1):
        state, decision = advance(state, band, start + timedelta(minutes=minute), recovery_samples)
        decisions.append(decision)
    return state, decisions


def notified(decisions: list[AlertDecision | None]) -> list[AlertDecision]:
    return [d for d in decisions if d is not None]


def test_first_high_sample_notifies_once() -> None:
    state, decisions = run(["high"])
    assert decisions == [AlertDecision(kind="worsened", band="high", previous_band="low")]
    assert state == AlertState(band="high", checked_at=START + timedelta(minutes=1))


def test_low_samples_never_notify() -> None:
    state, decisions = run(["low"] * 5)
    assert notified(decisions) == []
    assert state.band == "low"


def test_repeated_high_samples_notify_nothing_more() -> None:
    _, decisions = run(["high"] * 6)
    assert len(notified(decisions)) == 1


def test_stepwise_rise_notifies_each_step() -> None:
    _, decisions = run(["low-medium", "medium", "medium", "high"])
    assert [(d.band, d.previous_band) for d in notified(decisions)] == [
        ("low-medium", "low"),
        ("medium", "low-medium"),
        ("high", "medium"),
    ]


@pytest.mark.parametrize("dips", [1, RECOVERY - 1])
def test_brief_dip_then_high_again_does_not_realert(dips: int) -> None:
    state, decisions = run(["high"] + ["medium"] * dips + ["high"])
    assert len(notified(decisions)) == 1
    assert (state.band, state.calm_samples, state.calm_band) == ("high", 0, None)


def test_settling_at_medium_is_silent_and_a_new_rise_alerts_again() -> None:
    state, decisions = run(["high"] + ["medium"] * RECOVERY)
    assert len(notified(decisions)) == 1
    assert (state.band, state.calm_samples) == ("medium", 0)

    state, decisions = run(["high"], state)
    assert decisions == [AlertDecision(kind="worsened", band="high", previous_band="medium")]


def test_settles_at_the_worst_band_of_the_streak() -> None:
    state, decisions = run(["high", "low", "medium", "low"])
    assert notified(decisions)[1:] == []
    assert state.band == "medium"


def test_settling_at_low_recovers_exactly_once() -> None:
    state, decisions = run(["high"] + ["low"] * (RECOVERY + 5))
    assert notified(decisions) == [
        AlertDecision(kind="worsened", band="high", previous_band="low"),
        AlertDecision(kind="recovered", band="low", previous_band="high"),
    ]
    assert decisions[RECOVERY] is not None  # on the Nth calm sample, not later
    assert state.band == "low"


def test_recovery_after_a_silent_step_down_names_the_last_band() -> None:
    _, decisions = run(["high"] + ["medium"] * RECOVERY + ["low"] * RECOVERY)
    assert notified(decisions)[-1] == AlertDecision(
        kind="recovered", band="low", previous_band="medium"
    )


def test_same_band_in_the_middle_of_a_calm_streak_resets_it() -> None:
    _, decisions = run(["high", "low", "low", "high", "low", "low"])
    assert len(notified(decisions)) == 1
    _, decisions = run(["high", "low", "low", "high", "low", "low", "low"])
    assert notified(decisions)[-1].kind == "recovered"


def test_worsening_in_the_middle_of_a_calm_streak_resets_it_and_alerts() -> None:
    state, _ = run(["medium"])
    state, decisions = run(["low", "low", "high", "low", "low"], state)
    assert notified(decisions) == [
        AlertDecision(kind="worsened", band="high", previous_band="medium")
    ]
    assert (state.band, state.calm_samples, state.calm_band) == ("high", 2, "low")


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-1)])
def test_replayed_or_older_samples_are_ignored(offset: timedelta) -> None:
    state, _ = run(["high", "low"])
    for band in ("high", "low", "low", "low"):
        after, decision = advance(state, band, state.checked_at + offset, RECOVERY)
        assert (after, decision) == (state, None)


def test_older_sample_does_not_count_towards_recovery() -> None:
    state, _ = run(["high", "low", "low"])
    late = state.checked_at - timedelta(minutes=5)
    after, decision = advance(state, "low", late, RECOVERY)
    assert decision is None
    assert after.band == "high"


def test_recovery_samples_of_one_drops_at_once() -> None:
    _, decisions = run(["high", "low"], recovery_samples=1)
    assert notified(decisions)[-1].kind == "recovered"


@pytest.mark.parametrize("bad", [0, -1])
def test_recovery_samples_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="recovery_samples"):
        advance(AlertState(), "high", START, bad)


def test_unknown_band_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown NEWS2 band"):
        advance(AlertState(), "red", START, RECOVERY)
