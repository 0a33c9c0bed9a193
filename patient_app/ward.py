"""WardPhysiology: every patient a simulator process runs, as arrays stepped together.

One numpy step advances thousands of patients; a Python loop over per-patient models cost tens
of microseconds each. Arrays are (channel, bed): a row per vital, in the order of Vitals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .scenarios import (
    BOUNDS,
    CHANNELS,
    DEFAULT_DETERIORATION_S,
    MIN_PULSE_PRESSURE,
    NOISE_CAP,
    SCENARIOS,
    TARGETS,
    Vitals,
    scenario_index,
)

# The most patients one simulator process runs (PATIENT_COUNT).
MAX_PATIENTS = 100_000

_ROW = {name: row for row, name in enumerate(CHANNELS)}


def _column(values: list[float]) -> np.ndarray:
    """Per-channel constants as a column, to broadcast against (channel, bed) arrays."""
    column = np.array(values, dtype=float).reshape(-1, 1)
    column.flags.writeable = False
    return column


_MEAN = _column([ch.mean for ch in CHANNELS.values()])
_SPREAD = _column([ch.spread for ch in CHANNELS.values()])
_SIGMA = _column([ch.sigma for ch in CHANNELS.values()])
_CAP = NOISE_CAP * _SIGMA
_LOW = _column([BOUNDS[name][0] for name in CHANNELS])
_HIGH = _column([BOUNDS[name][1] for name in CHANNELS])
# (scenario, channel): the scenario's steady state, NaN where it leaves the vital at baseline.
_GOALS = np.array([[TARGETS[s].get(name, math.nan) for name in CHANNELS] for s in SCENARIOS])
_DETERIORATING = SCENARIOS.index("deteriorating")


@lru_cache(maxsize=64)
def _step_factors(dt: float, pace: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel, for a step of dt seconds: (trend pull, noise memory, kick scale). A
    simulator steps every tick by the same dt; these are its exps, computed once."""
    keep = _column([math.exp(-dt / ch.theta) for ch in CHANNELS.values()])
    kick_scale = _SIGMA * np.sqrt(1 - keep * keep)
    kick_scale.flags.writeable = False
    return _column([math.exp(-dt / (ch.tau * pace)) for ch in CHANNELS.values()]), keep, kick_scale


def _generator(seed: int | None) -> np.random.Generator:
    # A simulation, not security: a seedable generator is what makes runs reproducible. numpy
    # takes non-negative seeds only, and PATIENT_SEED may be negative.
    return np.random.default_rng(None if seed is None else [abs(seed), int(seed < 0)])


@dataclass(frozen=True, eq=False)
class WardVitals:
    """One sample of every patient in a ward: an array per vital, indexed by bed."""

    pulse: np.ndarray
    resp_rate: np.ndarray
    systolic: np.ndarray
    diastolic: np.ndarray
    spo2: np.ndarray
    temperature: np.ndarray  # rounded to 1 decimal

    def __len__(self) -> int:
        return len(self.pulse)

    def rows(self) -> Iterator[tuple[int, int, int, int, int, float]]:
        """Each bed's (pulse, resp_rate, systolic, diastolic, spo2, temperature) as Python
        numbers, in bed order: the cheap way to build thousands of messages."""
        return zip(
            self.pulse.tolist(),
            self.resp_rate.tolist(),
            self.systolic.tolist(),
            self.diastolic.tolist(),
            self.spo2.tolist(),
            self.temperature.tolist(),
            strict=True,
        )

    def vitals(self, bed: int) -> Vitals:
        """One bed's sample."""
        bed = _checked_bed(bed, len(self))
        return Vitals(
            pulse=int(self.pulse[bed]),
            resp_rate=int(self.resp_rate[bed]),
            systolic=int(self.systolic[bed]),
            diastolic=int(self.diastolic[bed]),
            spo2=int(self.spo2[bed]),
            temperature=float(self.temperature[bed]),
        )


def _checked_bed(bed: int, count: int) -> int:
    # numpy would read bed -1 as the last one: a wrong bed must fail, not pick a neighbour.
    if isinstance(bed, bool) or not isinstance(bed, int) or not 0 <= bed < count:
        raise IndexError(f"no bed {bed!r} in a ward of {count}")
    return bed


class WardPhysiology:
    """Each patient's vitals: a trend relaxing toward their scenario's targets plus bounded
    noise, every patient stepped at once.

    Every patient starts at their own healthy baseline, so an abnormal scenario develops over a
    few minutes of simulated time rather than appearing at once. Each bed has its own scenario.
    """

    def __init__(
        self,
        count: int,
        scenario: str = "normal",
        seed: int | None = None,
        *,
        deterioration_s: float = DEFAULT_DETERIORATION_S,
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PATIENTS:
            raise ValueError(f"count must be 1 to {MAX_PATIENTS} patients, got {count!r}")
        if not (deterioration_s > 0 and math.isfinite(deterioration_s)):
            raise ValueError(
                f"deterioration_s must be a positive number of seconds, got {deterioration_s!r}"
            )
        start = scenario_index(scenario)
        self._deterioration_s = deterioration_s
        # A shorter deterioration is the default one played faster: the vitals follow the
        # sliding targets proportionally faster too, or they would lag minutes behind them.
        self._deterioration_pace = min(1.0, deterioration_s / DEFAULT_DETERIORATION_S)
        self._rng = _generator(seed)
        shape = (len(CHANNELS), count)
        self._baseline = _MEAN + _SPREAD * self._rng.uniform(-1.0, 1.0, shape)
        self._trend = self._baseline.copy()
        # Start the fluctuation in its stationary distribution so the first samples already vary.
        self._noise = self._rng.standard_normal(shape) * _SIGMA
        np.clip(self._noise, -_CAP, _CAP, out=self._noise)
        self._scenario = np.full(count, start, dtype=np.intp)
        self._elapsed = np.zeros(count)  # seconds each bed has spent in its current scenario
        # Each bed's goal as an offset from its baseline, so a sliding target is one multiply.
        goals = _GOALS[self._scenario].T
        self._shift = np.where(np.isnan(goals), 0.0, goals - self._baseline)

    def __len__(self) -> int:
        return len(self._scenario)

    def scenario(self, bed: int) -> str:
        """The scenario bed's vitals are currently drifting toward."""
        return SCENARIOS[self._scenario[_checked_bed(bed, len(self))]]

    def set_scenario(self, bed: int, scenario: str) -> None:
        """Switch one bed's scenario; its vitals then drift from where they are, without a jump."""
        index = scenario_index(scenario)
        bed = _checked_bed(bed, len(self))
        if index != self._scenario[bed]:
            self._scenario[bed] = index
            self._elapsed[bed] = 0.0
            goal = _GOALS[index]
            baseline = self._baseline[:, bed]
            self._shift[:, bed] = np.where(np.isnan(goal), 0.0, goal - baseline)

    def step(self, dt: float) -> WardVitals:
        """Advance every patient by dt seconds and return the new samples."""
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        deteriorating = self._scenario == _DETERIORATING
        # Targets at mid-step. "deteriorating" slides from baseline toward its end state; every
        # other scenario's target is its goal from the start.
        progress = np.where(
            deteriorating, np.minimum(1.0, (self._elapsed + dt / 2) / self._deterioration_s), 1.0
        )
        targets = self._baseline + progress * self._shift
        self._elapsed += dt
        pull, keep, kick_scale = _step_factors(dt, 1.0)
        if self._deterioration_pace != 1.0 and deteriorating.any():
            pull = np.where(deteriorating, _step_factors(dt, self._deterioration_pace)[0], pull)
        # Exact solutions of the relaxation and Ornstein-Uhlenbeck equations, so the path's
        # statistics do not depend on how finely time is sampled.
        trend = self._trend
        trend -= targets
        trend *= pull
        trend += targets
        kick = self._rng.standard_normal(trend.shape)
        np.clip(kick, -NOISE_CAP, NOISE_CAP, out=kick)
        kick *= kick_scale
        self._noise *= keep
        self._noise += kick
        np.clip(self._noise, -_CAP, _CAP, out=self._noise)
        return self._sample()

    def _sample(self) -> WardVitals:
        value = np.clip(self._trend + self._noise, _LOW, _HIGH)
        # rint rounds half to even, as Python's round() does.
        whole = np.rint(value).astype(np.int64)
        systolic = np.maximum(whole[_ROW["systolic"]], MIN_PULSE_PRESSURE)
        return WardVitals(
            pulse=whole[_ROW["pulse"]],
            resp_rate=whole[_ROW["resp_rate"]],
            systolic=systolic,
            diastolic=np.minimum(whole[_ROW["diastolic"]], systolic - MIN_PULSE_PRESSURE),
            spo2=whole[_ROW["spo2"]],
            temperature=np.round(value[_ROW["temperature"]], 1),
        )
