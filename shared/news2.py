"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017).

The monitors measure neither consciousness nor supplemental oxygen, so every sample is
scored as Alert and on room air (both 0), and SpO2 always uses scale 1. The aggregate is
therefore a lower bound on the bedside score: a confused patient on oxygen scores higher.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from shared.alarm_limits import Side

if TYPE_CHECKING:
    from shared.sample import VitalsSample


class Band(StrEnum):
    """The NEWS2 clinical risk bands, in ascending risk (stored and sent as their values)."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


BANDS: tuple[Band, ...] = tuple(Band)
PARAMETERS = ("resp_rate", "spo2", "systolic", "pulse", "temperature")

# The RCP chart, one row per column of it: (highest value in the column, score).
# Columns are contiguous and ascending, so a value belongs to the first column whose top
# is not below it. Temperature is compared after rounding to one decimal, as charted.
_CHART: dict[str, tuple[tuple[float, int], ...]] = {
    "resp_rate": ((8, 3), (11, 1), (20, 0), (24, 2), (math.inf, 3)),
    "spo2": ((91, 3), (93, 2), (95, 1), (math.inf, 0)),
    "systolic": ((90, 3), (100, 2), (110, 1), (219, 0), (math.inf, 3)),
    "pulse": ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (math.inf, 3)),
    "temperature": ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (math.inf, 2)),
}

# The same chart split for lookups: each parameter's column tops, and their scores.
_TOPS = {name: [top for top, _ in rows] for name, rows in _CHART.items()}
_SCORES = {name: [score for _, score in rows] for name, rows in _CHART.items()}
# And each parameter's, for scoring without a lookup by name.
_RESP_RATE_TOPS, _RESP_RATE_SCORES = _TOPS["resp_rate"], _SCORES["resp_rate"]
_SPO2_TOPS, _SPO2_SCORES = _TOPS["spo2"], _SCORES["spo2"]
_SYSTOLIC_TOPS, _SYSTOLIC_SCORES = _TOPS["systolic"], _SCORES["systolic"]
_PULSE_TOPS, _PULSE_SCORES = _TOPS["pulse"], _SCORES["pulse"]
_TEMPERATURE_TOPS, _TEMPERATURE_SCORES = _TOPS["temperature"], _SCORES["temperature"]

# A single parameter this far out makes even a low aggregate "low-medium".
_RED_SCORE = 3


@dataclass(frozen=True)
class News2:
    score: int
    band: Band
    # Out of the hash because a dict is unhashable; equal results still hash equal.
    parameters: dict[str, int] = field(hash=False)


# Readings repeat (a thermometer shows a few hundred values), and the exact decimal rounding
# below is the costliest step of scoring a sample, so results are remembered.
@lru_cache(maxsize=4096)
def round_temperature(value: float) -> float:
    """Round to one decimal, half up, as a nurse reads the thermometer onto the chart."""
    if not math.isfinite(value):
        raise ValueError(f"temperature must be a finite number, got {value!r}")
    # Through str: 35.05 is stored as 35.04999..., which would otherwise round down.
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _column(parameter: str, value: float) -> int:
    if parameter == "temperature":
        value = round_temperature(value)
    return bisect_left(_TOPS[parameter], value)


def parameter_score(parameter: str, value: float) -> int:
    """The sub-score of one parameter; KeyError for a name not in PARAMETERS."""
    return _SCORES[parameter][_column(parameter, value)]


def deviation(parameter: str, value: float) -> Side | None:
    """Which side of the range that scores 0 the value lies on; None inside it."""
    rows = _CHART[parameter]
    normal = next(i for i, (_, score) in enumerate(rows) if score == 0)
    column = _column(parameter, value)
    if column == normal:
        return None
    return Side.LOW if column < normal else Side.HIGH


def normal_ranges() -> dict[str, dict[str, float | None]]:
    """Per parameter, the range that scores 0: normal when `above < value <= up_to`.

    `up_to` is None where no value is too high (SpO2 on scale 1).
    """
    ranges = {}
    for parameter, rows in _CHART.items():
        normal = next(i for i, (_, score) in enumerate(rows) if score == 0)
        top = rows[normal][0]
        ranges[parameter] = {
            "above": rows[normal - 1][0] if normal else None,
            "up_to": None if math.isinf(top) else top,
        }
    return ranges


def score_news2(
    *, resp_rate: int, spo2: int, systolic: int, pulse: int, temperature: float
) -> News2:
    """Score one vitals sample (Alert, room air, SpO2 scale 1)."""
    # Spelt out, not looped over by name: data_app scores every sample it stores.
    rounded = round_temperature(temperature)
    parameters = {
        "resp_rate": _RESP_RATE_SCORES[bisect_left(_RESP_RATE_TOPS, resp_rate)],
        "spo2": _SPO2_SCORES[bisect_left(_SPO2_TOPS, spo2)],
        "systolic": _SYSTOLIC_SCORES[bisect_left(_SYSTOLIC_TOPS, systolic)],
        "pulse": _PULSE_SCORES[bisect_left(_PULSE_TOPS, pulse)],
        "temperature": _TEMPERATURE_SCORES[bisect_left(_TEMPERATURE_TOPS, rounded)],
    }
    score = sum(parameters.values())
    return News2(score=score, band=_band(score, parameters), parameters=parameters)


def score_sample(sample: VitalsSample) -> News2:
    """Score a decoded sample, as data_app stores it."""
    return score_news2(
        resp_rate=sample.resp_rate,
        spo2=sample.spo2,
        systolic=sample.systolic,
        pulse=sample.pulse,
        temperature=sample.temperature,
    )


def _band(score: int, parameters: dict[str, int]) -> Band:
    if score >= 7:
        return Band.HIGH
    if score >= 5:
        return Band.MEDIUM
    if _RED_SCORE in parameters.values():
        return Band.LOW_MEDIUM
    return Band.LOW


def band_rank(band: str) -> int:
    """Position of the band (or a band's stored value) in BANDS, higher meaning riskier."""
    try:
        return _RANKS[band]
    except (KeyError, TypeError):  # TypeError: unhashable
        raise ValueError(f"unknown NEWS2 band {band!r}; expected one of {BANDS}") from None


# A Band hashes and compares as its value, so either finds its rank (once a sample, twice).
_RANKS = {band.value: rank for rank, band in enumerate(BANDS)}
