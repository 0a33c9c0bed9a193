"""A seeded model of one ICU patient whose vitals drift smoothly toward a scenario's picture."""

from __future__ import annotations

from .scenarios import DEFAULT_DETERIORATION_S, SCENARIOS, UnknownScenarioError, Vitals
from .ward import WardPhysiology

__all__ = [
    "DEFAULT_DETERIORATION_S",
    "SCENARIOS",
    "PatientPhysiology",
    "UnknownScenarioError",
    "Vitals",
]


class PatientPhysiology:
    """One patient's vitals: a ward of one, so one model serves a named patient and a ward.

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
        self._ward = WardPhysiology(1, scenario, seed, deterioration_s=deterioration_s)

    @property
    def scenario(self) -> str:
        """The scenario the vitals are currently drifting toward."""
        return self._ward.scenario(0)

    def set_scenario(self, scenario: str) -> None:
        """Switch scenario; the vitals then drift from where they are, without a jump."""
        self._ward.set_scenario(0, scenario)

    def step(self, dt: float) -> Vitals:
        """Advance the model by dt seconds and return the new sample."""
        return self._ward.step(dt).vitals(0)
