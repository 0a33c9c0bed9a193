"""When to tell clinicians about a patient's NEWS2 band: a per-patient state machine.

A rise is announced at once. A fall is believed only after `recovery_samples` better
samples in a row, and then only to the worst band seen among them; otherwise a patient
hovering on a band edge would raise a fresh alarm every other sample and teach the ward
to ignore them. Only a settled return to "low" is worth a message of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from shared.news2 import Band, band_rank


# A struct, not a frozen dataclass: one is made for every stored sample, and a frozen
# dataclass sets each field through object.__setattr__.
class AlertState(msgspec.Struct, frozen=True):
    band: str = Band.LOW  # the band clinicians were last told about (or silently settled at)
    calm_samples: int = 0  # consecutive samples better than `band`
    calm_band: str | None = None  # the worst band among those samples
    checked_at: datetime | None = None  # timestamp of the newest sample taken into account


@dataclass(frozen=True)
class AlertDecision:
    kind: str  # "worsened" | "recovered"
    band: str
    previous_band: str


def advance(
    state: AlertState, band: str, timestamp: datetime, recovery_samples: int
) -> tuple[AlertState, AlertDecision | None]:
    """Fold one sample's band into the state; say whom to notify, if anyone."""
    if recovery_samples < 1:
        raise ValueError(f"recovery_samples must be at least 1, got {recovery_samples}")
    rank, current = band_rank(band), band_rank(state.band)
    # A replayed or late sample says nothing about the patient now.
    if state.checked_at is not None and timestamp <= state.checked_at:
        return state, None
    if rank > current:
        return (
            AlertState(band=band, checked_at=timestamp),
            AlertDecision(kind="worsened", band=band, previous_band=state.band),
        )
    if rank == current:
        return AlertState(band=state.band, checked_at=timestamp), None

    calm_band = band if state.calm_band is None else max(state.calm_band, band, key=band_rank)
    calm_samples = state.calm_samples + 1
    if calm_samples < recovery_samples:
        return AlertState(
            band=state.band, calm_samples=calm_samples, calm_band=calm_band, checked_at=timestamp
        ), None
    settled = AlertState(band=calm_band, checked_at=timestamp)
    if calm_band != Band.LOW:
        return settled, None
    return settled, AlertDecision(kind="recovered", band=calm_band, previous_band=state.band)
