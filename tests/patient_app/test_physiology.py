"""The patient model: reproducible, smooth, in range, and recognisable per scenario."""

from __future__ import annotations

from dataclasses import fields
from statistics import fmean

import pytest

from patient_app.physiology import SCENARIOS, PatientPhysiology, UnknownScenarioError, Vitals

DT = 5.0
PER_MINUTE = 12  # samples at DT
VITALS = [field.name for field in fields(Vitals)]

# Largest believable change between two samples 5 s apart.
MAX_STEP = {
    "pulse": 5,
    "resp_rate": 2,
    "systolic": 5,
    "diastolic": 4,
    "spo2": 2,
    "temperature": 0.1,
}

NORMAL = {
    "pulse": (55, 95),
    "resp_rate": (12, 20),
    "systolic": (105, 135),
    "diastolic": (65, 85),
    "spo2": (95, 100),
    "temperature": (36.2, 37.4),
}

PHYSICAL = {
    "pulse": (0, 300),
    "resp_rate": (0, 100),
    "systolic": (0, 300),
    "diastolic": (0, 250),
    "spo2": (0, 100),
    "temperature": (25.0, 45.0),
}

# The vitals that define each picture, once settled.
ABNORMAL = {
    "tachycardia": {"pulse": (130, 150)},
    "bradycardia": {"pulse": (38, 48)},
    "hypoxia": {"spo2": (82, 88), "resp_rate": (24, 30), "pulse": (98, 112)},
    "sepsis": {
        "temperature": (38.8, 39.8),
        "pulse": (115, 130),
        "resp_rate": (24, 30),
        "systolic": (85, 95),
    },
    "hypotension": {"systolic": (75, 88), "diastolic": (40, 50), "pulse": (103, 117)},
    "hypertension": {"systolic": (170, 200), "diastolic": (100, 115)},
    "deteriorating": {
        "temperature": (38.5, 39.5),
        "pulse": (120, 140),
        "resp_rate": (26, 34),
        "systolic": (78, 95),
        "spo2": (85, 91),
    },
}


def run(model: PatientPhysiology, minutes: float, dt: float = DT) -> list[Vitals]:
    return [model.step(dt) for _ in range(round(minutes * 60 / dt))]


def mean_of(samples: list[Vitals], name: str) -> float:
    return fmean(getattr(sample, name) for sample in samples)


def assert_within(sample: Vitals, ranges: dict[str, tuple[float, float]]) -> None:
    for name, (low, high) in ranges.items():
        assert low <= getattr(sample, name) <= high, (name, sample)


def assert_smooth(before: Vitals, after: Vitals) -> None:
    for name, limit in MAX_STEP.items():
        # Temperatures are rounded floats, so compare to the limit with a little slack.
        assert abs(getattr(after, name) - getattr(before, name)) <= limit + 1e-9, (before, after)


def test_same_seed_gives_identical_samples() -> None:
    first, second = PatientPhysiology("sepsis", seed=7), PatientPhysiology("sepsis", seed=7)
    assert run(first, 10) == run(second, 10)
    first.set_scenario("hypoxia")
    second.set_scenario("hypoxia")
    assert [first.step(1.5) for _ in range(50)] == [second.step(1.5) for _ in range(50)]


def test_different_seeds_give_different_samples() -> None:
    assert run(PatientPhysiology(seed=1), 2) != run(PatientPhysiology(seed=2), 2)


def test_samples_have_the_documented_types() -> None:
    sample = PatientPhysiology(seed=3).step(DT)
    assert all(type(getattr(sample, name)) is int for name in VITALS if name != "temperature")
    assert type(sample.temperature) is float
    assert sample.temperature == round(sample.temperature, 1)
    assert sample.bp == f"{sample.systolic}/{sample.diastolic}"


def test_patients_have_their_own_baselines() -> None:
    mean_pulses = [mean_of(run(PatientPhysiology(seed=seed), 30), "pulse") for seed in range(10)]
    assert max(mean_pulses) - min(mean_pulses) >= 5


@pytest.mark.parametrize("seed", range(5))
def test_normal_stays_normal_for_two_hours(seed: int) -> None:
    for sample in run(PatientPhysiology("normal", seed=seed), 120):
        assert_within(sample, NORMAL)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_consecutive_samples_change_smoothly(scenario: str) -> None:
    samples = run(PatientPhysiology(scenario, seed=11), 20)
    for before, after in zip(samples, samples[1:], strict=False):
        assert_smooth(before, after)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_sample_is_physically_possible(scenario: str, seed: int) -> None:
    for sample in run(PatientPhysiology(scenario, seed=seed), 30):
        assert_within(sample, PHYSICAL)
        assert sample.systolic > sample.diastolic


@pytest.mark.parametrize("scenario", list(ABNORMAL))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_abnormal_scenario_settles_in_its_range(scenario: str, seed: int) -> None:
    model = PatientPhysiology(scenario, seed=seed)
    onset = run(model, 15)
    assert_within(onset[0], NORMAL)  # the picture develops, it is not there from the start
    for sample in run(model, 15):
        assert_within(sample, ABNORMAL[scenario])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deteriorating_worsens_minute_by_minute(seed: int) -> None:
    samples = run(PatientPhysiology("deteriorating", seed=seed), 13)
    windows = [samples[m * PER_MINUTE : (m + 1) * PER_MINUTE] for m in (0, 3, 6, 9, 12)]
    for name, direction in [
        ("temperature", 1),
        ("pulse", 1),
        ("resp_rate", 1),
        ("systolic", -1),
        ("spo2", -1),
    ]:
        means = [direction * mean_of(window, name) for window in windows]
        assert means == sorted(means) and means[0] < means[-1], (name, means)
    start, end = windows[0], windows[-1]
    assert mean_of(end, "temperature") - mean_of(start, "temperature") >= 1.5
    assert mean_of(end, "pulse") - mean_of(start, "pulse") >= 40
    assert mean_of(start, "systolic") - mean_of(end, "systolic") >= 18
    assert mean_of(end, "spo2") <= 90


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("normal", "tachycardia"),
        ("bradycardia", "tachycardia"),
        ("hypertension", "hypotension"),
        ("sepsis", "normal"),
    ],
)
def test_switching_scenario_drifts_without_a_jump(before: str, after: str) -> None:
    model = PatientPhysiology(before, seed=5)
    last = run(model, 15)[-1]
    model.set_scenario(after)
    assert model.scenario == after
    following = run(model, 30)
    for earlier, later in zip([last, *following], following, strict=False):
        assert_smooth(earlier, later)
    assert_within(following[-1], ABNORMAL.get(after, NORMAL))


def test_switching_to_the_current_scenario_keeps_deterioration_going() -> None:
    switched, untouched = (PatientPhysiology("deteriorating", seed=4) for _ in range(2))
    run(switched, 6)
    run(untouched, 6)
    switched.set_scenario("deteriorating")
    assert run(switched, 6) == run(untouched, 6)


@pytest.mark.parametrize("scenario", ["tachycardia", "sepsis", "deteriorating"])
def test_trajectory_does_not_depend_on_the_sampling_interval(scenario: str) -> None:
    # The same seeds give the same patients; only the noise draws differ between the runs.
    fine = [run(PatientPhysiology(scenario, seed=seed), 20, dt=1.0) for seed in range(4)]
    coarse = [run(PatientPhysiology(scenario, seed=seed), 20, dt=5.0) for seed in range(4)]
    tolerance = {
        "pulse": 3,
        "resp_rate": 1.5,
        "systolic": 3,
        "diastolic": 3,
        "spo2": 1.5,
        "temperature": 0.3,
    }
    for minute in (3, 15):  # mid-way through the change, and settled
        fine_window = [s for run_ in fine for s in run_[(minute - 1) * 60 : minute * 60]]
        coarse_window = [
            s for run_ in coarse for s in run_[(minute - 1) * PER_MINUTE : minute * PER_MINUTE]
        ]
        for name, limit in tolerance.items():
            difference = mean_of(fine_window, name) - mean_of(coarse_window, name)
            assert abs(difference) <= limit, (minute, name, difference)


@pytest.mark.parametrize("name", ["asystole", "", "Normal"])
def test_unknown_scenario_is_rejected(name: str) -> None:
    with pytest.raises(UnknownScenarioError, match="tachycardia"):
        PatientPhysiology(name)
    model = PatientPhysiology(seed=0)
    with pytest.raises(UnknownScenarioError):
        model.set_scenario(name)
    assert model.scenario == "normal"


@pytest.mark.parametrize("dt", [0, -5, float("nan"), float("inf")])
def test_step_rejects_a_non_positive_or_non_finite_interval(dt: float) -> None:
    with pytest.raises(ValueError, match="dt"):
        PatientPhysiology(seed=0).step(dt)


def test_unknown_scenario_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="valid scenarios"):
        PatientPhysiology("asystole")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_short_deterioration_reaches_the_end_state_sooner(seed: int) -> None:
    quick = PatientPhysiology("deteriorating", seed=seed, deterioration_s=60)
    default = PatientPhysiology("deteriorating", seed=seed)
    assert_within(quick.step(DT), NORMAL)  # it still starts from the healthy baseline
    quick_samples, default_samples = run(quick, 3), run(default, 3)
    for sample in quick_samples[-PER_MINUTE:]:
        assert_within(sample, ABNORMAL["deteriorating"])
    # The default ten-minute course is nowhere near its end state yet.
    assert mean_of(default_samples[-PER_MINUTE:], "pulse") < 110
    assert mean_of(default_samples[-PER_MINUTE:], "spo2") > 92


def test_the_default_deterioration_takes_ten_minutes() -> None:
    implicit = PatientPhysiology("deteriorating", seed=8)
    explicit = PatientPhysiology("deteriorating", seed=8, deterioration_s=600)
    assert run(implicit, 15) == run(explicit, 15)


@pytest.mark.parametrize("scenario", ["normal", "sepsis"])
def test_the_deterioration_setting_leaves_other_scenarios_alone(scenario: str) -> None:
    quick = PatientPhysiology(scenario, seed=9, deterioration_s=20)
    assert run(quick, 10) == run(PatientPhysiology(scenario, seed=9), 10)


@pytest.mark.parametrize("seconds", [0, -60, float("nan"), float("inf")])
def test_deterioration_must_take_a_positive_finite_time(seconds: float) -> None:
    with pytest.raises(ValueError, match="deterioration_s"):
        PatientPhysiology("deteriorating", deterioration_s=seconds)
