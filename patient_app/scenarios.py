"""What the patient model simulates: the vitals, their healthy dynamics, each scenario's picture.

The numbers live here once; ward.WardPhysiology is the model that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def __init__(self, scenario: object) -> None:
        super().__init__(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
        self.scenario = scenario


def scenario_index(scenario: object) -> int:
    """The scenario's position in SCENARIOS; UnknownScenarioError for anything else."""
    try:
        return SCENARIOS.index(scenario)  # type: ignore[arg-type]
    except ValueError:
        raise UnknownScenarioError(scenario) from None


@dataclass(frozen=True)
class Channel:
    mean: float  # healthy adult population mean
    spread: float  # individual baselines are drawn uniformly within mean ± spread
    tau: float  # s; time constant of the approach to a new target
    sigma: float  # stationary SD of the fluctuation around the trend
    theta: float  # s; how long a fluctuation persists


# Fluctuations are capped at 3 sigma, which is what keeps a normal patient inside the normal
# ranges and an abnormal one inside its picture. Temperature moves slowest: it is body heat.
# The order is the order of Vitals' fields.
CHANNELS: dict[str, Channel] = {
    "pulse": Channel(72.0, 8.0, 180.0, 1.5, 90.0),
    "resp_rate": Channel(15.0, 1.0, 180.0, 0.6, 90.0),
    "systolic": Channel(120.0, 8.0, 180.0, 1.5, 90.0),
    "diastolic": Channel(77.0, 3.0, 180.0, 1.2, 90.0),
    "spo2": Channel(97.6, 0.8, 120.0, 0.5, 60.0),
    "temperature": Channel(36.8, 0.25, 240.0, 0.08, 900.0),
}
NOISE_CAP = 3.0  # in sigmas, for the fluctuation and for each random kick

# Steady-state values of each scenario; a vital a scenario leaves out stays at baseline.
TARGETS: dict[str, dict[str, float]] = {
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
MIN_PULSE_PRESSURE = 15  # a narrower gap between systolic and diastolic is an artefact

BOUNDS: dict[str, tuple[float, float]] = {
    "pulse": (0, 300),
    "resp_rate": (0, 100),
    "systolic": (0, 300),
    "diastolic": (0, 250),
    "spo2": (0, 100),
    "temperature": (25.0, 45.0),
}
