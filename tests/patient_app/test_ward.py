"""The ward model: many patients stepped at once behave as the single-patient model does."""

from __future__ import annotations

from statistics import fmean, pstdev

import numpy as np
import pytest

from patient_app.patients import build_patients
from patient_app.physiology import PatientPhysiology, UnknownScenarioError, Vitals
from patient_app.scenarios import SCENARIOS
from patient_app.ward import MAX_PATIENTS, WardPhysiology, WardVitals
from tests.patient_app.test_physiology import (
    ABNORMAL,
    DT,
    NORMAL,
    PER_MINUTE,
    PHYSICAL,
    assert_smooth,
    assert_within,
    run,
)


def run_ward(ward: WardPhysiology, minutes: float, dt: float = DT) -> list[WardVitals]:
    return [ward.step(dt) for _ in range(round(minutes * 60 / dt))]


def beds(samples: list[WardVitals], bed: int) -> list[Vitals]:
    return [sample.vitals(bed) for sample in samples]


def rows(samples: list[WardVitals]) -> list[list[tuple]]:
    return [list(sample.rows()) for sample in samples]


def assert_ward_within(
    sample: WardVitals, ranges: dict[str, tuple[float, float]], which: np.ndarray | slice
) -> None:
    for name, (low, high) in ranges.items():
        values = getattr(sample, name)[which]
        assert low <= values.min() and values.max() <= high, (name, values.min(), values.max())


def test_a_normal_ward_stays_normal_for_two_hours() -> None:
    ward = WardPhysiology(300, "normal", seed=0)
    for sample in run_ward(ward, 120):
        assert_ward_within(sample, NORMAL, slice(None))


def test_every_scenario_settles_in_its_range_in_a_mixed_ward() -> None:
    ward = WardPhysiology(len(SCENARIOS) * 12, seed=3)
    scenario_of = [SCENARIOS[bed % len(SCENARIOS)] for bed in range(len(ward))]
    for bed, scenario in enumerate(scenario_of):
        ward.set_scenario(bed, scenario)
    assert [ward.scenario(bed) for bed in range(len(ward))] == scenario_of
    onset = run_ward(ward, 15)
    assert_ward_within(onset[0], NORMAL, slice(None))  # each picture develops, none is there yet
    settled = run_ward(ward, 15)
    for scenario in SCENARIOS:
        which = np.array([s == scenario for s in scenario_of])
        for sample in settled:
            assert_ward_within(sample, ABNORMAL.get(scenario, NORMAL), which)
            assert_ward_within(sample, PHYSICAL, which)
            assert (sample.systolic > sample.diastolic).all()


@pytest.mark.parametrize("scenario", ["normal", "hypoxia", "sepsis", "deteriorating"])
def test_a_ward_has_the_statistics_of_as_many_single_patients(scenario: str) -> None:
    ward_samples = run_ward(WardPhysiology(400, scenario, seed=21), 20)
    singles = [run(PatientPhysiology(scenario, seed=seed), 20) for seed in range(40)]
    for minute in (3, 15):  # mid-way through the change, and settled
        window = slice((minute - 1) * PER_MINUTE, minute * PER_MINUTE)
        for name, mean_tolerance in [
            ("pulse", 3),
            ("resp_rate", 1),
            ("systolic", 3),
            ("diastolic", 2),
            ("spo2", 1),
            ("temperature", 0.2),
        ]:
            ward_values = np.array([getattr(s, name) for s in ward_samples[window]])  # (t, bed)
            single_values = np.array([[getattr(s, name) for s in run_[window]] for run_ in singles])
            # The population's mean, and each patient's fluctuation around their own mean.
            assert abs(ward_values.mean() - single_values.mean()) <= mean_tolerance, (minute, name)
            ward_spread = fmean(pstdev(column) for column in ward_values.T.tolist())
            single_spread = fmean(pstdev(values) for values in single_values.tolist())
            assert abs(ward_spread - single_spread) <= mean_tolerance / 3, (minute, name)


def test_the_same_seed_gives_the_same_ward() -> None:
    first, second = WardPhysiology(50, "sepsis", seed=7), WardPhysiology(50, "sepsis", seed=7)
    assert rows(run_ward(first, 10)) == rows(run_ward(second, 10))
    first.set_scenario(3, "hypoxia")
    second.set_scenario(3, "hypoxia")
    assert rows(run_ward(first, 5, dt=1.5)) == rows(run_ward(second, 5, dt=1.5))


@pytest.mark.parametrize(("one", "other"), [(1, 2), (5, -5), (0, None)])
def test_other_seeds_give_other_wards(one: int, other: int | None) -> None:
    assert rows(run_ward(WardPhysiology(5, seed=one), 1)) != rows(
        run_ward(WardPhysiology(5, seed=other), 1)
    )


def test_the_beds_of_a_ward_are_different_patients() -> None:
    samples = run_ward(WardPhysiology(20, seed=4), 30)
    mean_pulses = [fmean(v.pulse for v in beds(samples, bed)) for bed in range(20)]
    assert max(mean_pulses) - min(mean_pulses) >= 5


def test_the_samples_are_python_numbers_of_the_documented_types() -> None:
    sample = WardPhysiology(3, seed=3).step(DT)
    for row in sample.rows():
        assert [type(value) for value in row] == [int, int, int, int, int, float]
        assert row[5] == round(row[5], 1)
    assert sample.vitals(2) == Vitals(*list(sample.rows())[2])


@pytest.mark.parametrize(
    ("before", "after"),
    [("normal", "tachycardia"), ("hypertension", "hypotension"), ("sepsis", "normal")],
)
def test_switching_some_beds_drifts_without_a_jump_and_leaves_the_others(
    before: str, after: str
) -> None:
    switched, untouched = WardPhysiology(40, before, seed=5), WardPhysiology(40, before, seed=5)
    last = run_ward(switched, 15)[-1]
    run_ward(untouched, 15)
    for bed in range(0, 40, 2):
        switched.set_scenario(bed, after)
    following = run_ward(switched, 30)
    others = run_ward(untouched, 30)
    for bed in range(40):
        series = [last.vitals(bed), *beds(following, bed)]
        for earlier, later in zip(series, series[1:], strict=False):
            assert_smooth(earlier, later)
        if bed % 2:
            # The same draws from the same generator: a switch elsewhere changes nothing here.
            assert beds(following, bed) == beds(others, bed)
            assert switched.scenario(bed) == before
        else:
            assert_within(following[-1].vitals(bed), ABNORMAL.get(after, NORMAL))
            assert switched.scenario(bed) == after


def test_switching_a_bed_to_its_current_scenario_keeps_deterioration_going() -> None:
    switched, untouched = (WardPhysiology(4, "deteriorating", seed=4) for _ in range(2))
    run_ward(switched, 6)
    run_ward(untouched, 6)
    switched.set_scenario(1, "deteriorating")
    assert rows(run_ward(switched, 6)) == rows(run_ward(untouched, 6))


def test_a_short_deterioration_speeds_the_deteriorating_beds_only() -> None:
    # The other beds are septic: their trend moves, at the pace of every other scenario.
    quick = WardPhysiology(10, "sepsis", seed=2, deterioration_s=60)
    default = WardPhysiology(10, "sepsis", seed=2)
    for ward in (quick, default):
        for bed in range(5):
            ward.set_scenario(bed, "deteriorating")
    quick_samples, default_samples = run_ward(quick, 3), run_ward(default, 3)
    for sample in quick_samples[-PER_MINUTE:]:
        assert_ward_within(sample, ABNORMAL["deteriorating"], slice(0, 5))
    assert default_samples[-1].pulse[:5].mean() < 110  # the ten-minute course is not there yet
    for bed in range(5, 10):
        assert beds(quick_samples, bed) == beds(default_samples, bed)


# -- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [0, -5, float("nan"), float("inf"), float("-inf")])
def test_a_bad_interval_is_refused_and_changes_nothing(dt: float) -> None:
    ward, untouched = WardPhysiology(5, seed=0), WardPhysiology(5, seed=0)
    with pytest.raises(ValueError, match="dt"):
        ward.step(dt)
    assert list(ward.step(DT).rows()) == list(untouched.step(DT).rows())


@pytest.mark.parametrize("name", ["asystole", "", "Normal", None, 3, "normal\x00"])
def test_an_unknown_scenario_is_refused(name: object) -> None:
    with pytest.raises(UnknownScenarioError, match="tachycardia"):
        WardPhysiology(3, name)  # type: ignore[arg-type]
    ward = WardPhysiology(3, seed=0)
    with pytest.raises(UnknownScenarioError):
        ward.set_scenario(1, name)  # type: ignore[arg-type]
    assert [ward.scenario(bed) for bed in range(3)] == ["normal"] * 3


@pytest.mark.parametrize("bed", [-1, 3, 10**12, True, 1.0, "0", None])
def test_a_bed_outside_the_ward_is_refused_not_wrapped(bed: object) -> None:
    ward = WardPhysiology(3, seed=0)
    with pytest.raises(IndexError, match="no bed"):
        ward.set_scenario(bed, "sepsis")  # type: ignore[arg-type]
    with pytest.raises(IndexError, match="no bed"):
        ward.scenario(bed)  # type: ignore[arg-type]
    with pytest.raises(IndexError, match="no bed"):
        ward.step(DT).vitals(bed)  # type: ignore[arg-type]
    assert [ward.scenario(b) for b in range(3)] == ["normal"] * 3


@pytest.mark.parametrize("count", [0, -1, MAX_PATIENTS + 1, 10**18, 2.5, True, "10", None])
def test_a_ward_size_outside_the_process_limit_is_refused(count: object) -> None:
    with pytest.raises(ValueError, match="count"):
        WardPhysiology(count)  # type: ignore[arg-type]


def test_no_patients_is_refused_when_building_them() -> None:
    with pytest.raises(ValueError, match="count"):
        build_patients("Bed", count=0, id_secret="s" * 32)


def test_the_largest_ward_the_limit_allows_steps() -> None:
    ward = WardPhysiology(MAX_PATIENTS, seed=1)
    sample = ward.step(DT)
    assert len(sample) == MAX_PATIENTS
    assert_ward_within(sample, NORMAL, slice(None))


@pytest.mark.parametrize("seconds", [0, -60, float("nan"), float("inf")])
def test_deterioration_must_take_a_positive_finite_time(seconds: float) -> None:
    with pytest.raises(ValueError, match="deterioration_s"):
        WardPhysiology(2, "deteriorating", deterioration_s=seconds)


@pytest.mark.parametrize("seed", [-(2**70), 2**70])
def test_huge_and_negative_seeds_are_seeds(seed: int) -> None:
    assert rows(run_ward(WardPhysiology(2, seed=seed), 1)) == rows(
        run_ward(WardPhysiology(2, seed=seed), 1)
    )
