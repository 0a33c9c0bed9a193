"""A seeded model of one ICU patient whose vitals drift smoothly toward a scenario's picture."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from shared.blood_pressure import format_bp

SCENARIOS: tuple[str, ...] = (
    "normal",
    "tachycardia",
    "bradycardia",
    "hypoxia",
    "sepsis",
    "hypotension",
    "hypertension",
    "deteriorating",
)


@dataclass(frozen=True)
class Vitals:
    """One sample of a patient's vital signs."""

    pulse: int  # beats/min
    resp_rate: int  # breaths/min
    systolic: int  # mmHg
    diastolic: int  # mmHg
    spo2: int  # %
    temperature: float  # °C, rounded to 1 decimal

    @property
    def bp(self) -> str:
        """Blood pressure as charted, e.g. "120/80"."""
        return format_bp(self.systolic, self.diastolic)


class UnknownScenarioError(ValueError):
    """A scenario name that is not in SCENARIOS."""

    def __init__(self, scenario: str) -> None:
        super().__init__(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
        self.scenario = scenario


@dataclass(frozen=True)
class _Channel:
    mean: float  # healthy adult population mean
    spread: float  # individual baselines are drawn uniformly within mean ± spread
    tau: float  # s; time constant of the approach to a new target
    sigma: float  # stationary SD of the fluctuation around the trend
    theta: float  # s; how long a fluctuation persists


# Fluctuations are capped at 3 sigma, which is what keeps a normal patient inside the normal
# ranges and an abnormal one inside its picture. Temperature moves slowest: it is body heat.
_CHANNELS: dict[str, _Channel] = {
    "pulse": _Channel(72.0, 8.0, 180.0, 1.5, 90.0),
    "resp_rate": _Channel(15.0, 1.0, 180.0, 0.6, 90.0),
    "systolic": _Channel(120.0, 8.0, 180.0, 1.5, 90.0),
    "diastolic": _Channel(77.0, 3.0, 180.0, 1.2, 90.0),
    "spo2": _Channel(97.6, 0.8, 120.0, 0.5, 60.0),
    "temperature": _Channel(36.8, 0.25, 240.0, 0.08, 900.0),
}

# Steady-state values of each scenario; a vital a scenario leaves out stays at baseline.
_TARGETS: dict[str, dict[str, float]] = {
    "normal": {},
    "tachycardia": {"pulse": 140.0, "resp_rate": 18.0},
    "bradycardia": {"pulse": 43.0},
    "hypoxia": {"spo2": 85.0, "resp_rate": 27.0, "pulse": 105.0},
    # SIRS with early shock: fever, tachycardia, tachypnoea, MAP about 65.
    "sepsis": {
        "temperature": 39.3,
        "pulse": 122.0,
        "resp_rate": 27.0,
        "systolic": 90.0,
        "diastolic": 52.0,
        "spo2": 94.0,
    },
    # Reflex tachycardia from the baroreceptors.
    "hypotension": {"systolic": 81.0, "diastolic": 45.0, "pulse": 110.0},
    "hypertension": {"systolic": 185.0, "diastolic": 107.0},
    # Where "deteriorating" ends up: septic shock with falling saturation.
    "deteriorating": {
        "temperature": 39.0,
        "pulse": 130.0,
        "resp_rate": 30.0,
        "systolic": 85.0,
        "diastolic": 48.0,
        "spo2": 88.0,
    },
}

# "deteriorating" slides from baseline to its end state over this many seconds by default.
DEFAULT_DETERIORATION_S = 600.0
_MIN_PULSE_PRESSURE = 15  # a narrower gap between systolic and diastolic is an artefact

_BOUNDS: dict[str, tuple[float, float]] = {
    "pulse": (0, 300),
    "resp_rate": (0, 100),
    "systolic": (0, 300),
    "diastolic": (0, 250),
    "spo2": (0, 100),
    "temperature": (25.0, 45.0),
}


def _check(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise UnknownScenarioError(scenario)
    return scenario


@lru_cache(maxsize=64)
def _step_factors(dt: float, pace: float) -> tuple[tuple[str, float, float, float, float], ...]:
    """Per channel, for a step of dt seconds: (name, sigma, trend pull, noise memory, kick
    scale). A simulator steps thousands of patients by the same dt; these are its exps."""
    factors = []
    for name, ch in _CHANNELS.items():
        keep = math.exp(-dt / ch.theta)
        factors.append(
            (
                name,
                ch.sigma,
                math.exp(-dt / (ch.tau * pace)),
                keep,
                ch.sigma * math.sqrt(1 - keep * keep),
            )
        )
    return tuple(factors)


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class PatientPhysiology:
    """One patient's vitals: a trend relaxing toward the scenario's targets plus bounded noise.

    The patient starts at their own healthy baseline, so an abnormal scenario develops over a
    few minutes of simulated time rather than appearing at once.
    """

    def __init__(
        self,
        scenario: str = "normal",
        seed: int | None = None,
        *,
        deterioration_s: float = DEFAULT_DETERIORATION_S,
    ) -> None:
        if not (deterioration_s > 0 and math.isfinite(deterioration_s)):
            raise ValueError(
                f"deterioration_s must be a positive number of seconds, got {deterioration_s!r}"
            )
        self._scenario = _check(scenario)
        self._deterioration_s = deterioration_s
        # A shorter deterioration is the default one played faster: the vitals follow the
        # sliding targets proportionally faster too, or they would lag minutes behind them.
        self._deterioration_pace = min(1.0, deterioration_s / DEFAULT_DETERIORATION_S)
        # A simulation, not security: a seedable generator is what makes runs reproducible.
        self._rng = random.Random(seed)  # noqa: S311
        self._baseline = {
            name: ch.mean + self._rng.uniform(-ch.spread, ch.spread)
            for name, ch in _CHANNELS.items()
        }
        self._trend = dict(self._baseline)
        # Start the fluctuation in its stationary distribution so the first samples already vary.
        self._noise = {
            name: _clip(self._rng.gauss(0.0, ch.sigma), -3 * ch.sigma, 3 * ch.sigma)
            for name, ch in _CHANNELS.items()
        }
        self._elapsed = 0.0  # seconds spent in the current scenario

    @property
    def scenario(self) -> str:
        """The scenario the vitals are currently drifting toward."""
        return self._scenario

    def set_scenario(self, scenario: str) -> None:
        """Switch scenario; the vitals then drift from where they are, without a jump."""
        if _check(scenario) != self._scenario:
            self._scenario = scenario
            self._elapsed = 0.0

    def step(self, dt: float) -> Vitals:
        """Advance the model by dt seconds and return the new sample."""
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        targets = self._targets(self._elapsed + dt / 2)
        self._elapsed += dt
        pace = self._deterioration_pace if self._scenario == "deteriorating" else 1.0
        for name, sigma, pull, keep, kick_scale in _step_factors(dt, pace):
            # Exact solutions of the relaxation and Ornstein-Uhlenbeck equations, so the path's
            # statistics do not depend on how finely time is sampled.
            self._trend[name] = targets[name] + (self._trend[name] - targets[name]) * pull
            kick = _clip(self._rng.gauss(0.0, 1.0), -3.0, 3.0)
            noise = self._noise[name] * keep + kick_scale * kick
            self._noise[name] = _clip(noise, -3 * sigma, 3 * sigma)
        return self._sample()

    def _targets(self, elapsed: float) -> dict[str, float]:
        goal = {**self._baseline, **_TARGETS[self._scenario]}
        if self._scenario != "deteriorating":
            return goal
        progress = min(1.0, elapsed / self._deterioration_s)
        return {
            name: base + progress * (goal[name] - base) for name, base in self._baseline.items()
        }

    def _sample(self) -> Vitals:
        value = {
            name: _clip(self._trend[name] + self._noise[name], *_BOUNDS[name]) for name in _CHANNELS
        }
        systolic = max(round(value["systolic"]), _MIN_PULSE_PRESSURE)
        return Vitals(
            pulse=round(value["pulse"]),
            resp_rate=round(value["resp_rate"]),
            systolic=systolic,
            diastolic=min(round(value["diastolic"]), systolic - _MIN_PULSE_PRESSURE),
            spo2=round(value["spo2"]),
            temperature=round(value["temperature"], 1),
        )
