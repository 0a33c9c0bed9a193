"""NEWS2 scoring against the RCP 2017 chart, edge by edge."""

from __future__ import annotations

import pytest

from shared.alarm_limits import Side
from shared.news2 import (
    BANDS,
    PARAMETERS,
    News2,
    band_rank,
    deviation,
    parameter_score,
    round_temperature,
    score_news2,
)

NORMAL = {"resp_rate": 16, "spo2": 98, "systolic": 120, "pulse": 70, "temperature": 37.0}

# (parameter, value, sub-score): both sides of every edge on the chart.
EDGES = [
    ("resp_rate", 8, 3),
    ("resp_rate", 9, 1),
    ("resp_rate", 11, 1),
    ("resp_rate", 12, 0),
    ("resp_rate", 20, 0),
    ("resp_rate", 21, 2),
    ("resp_rate", 24, 2),
    ("resp_rate", 25, 3),
    ("spo2", 91, 3),
    ("spo2", 92, 2),
    ("spo2", 93, 2),
    ("spo2", 94, 1),
    ("spo2", 95, 1),
    ("spo2", 96, 0),
    ("systolic", 90, 3),
    ("systolic", 91, 2),
    ("systolic", 100, 2),
    ("systolic", 101, 1),
    ("systolic", 110, 1),
    ("systolic", 111, 0),
    ("systolic", 219, 0),
    ("systolic", 220, 3),
    ("pulse", 40, 3),
    ("pulse", 41, 1),
    ("pulse", 50, 1),
    ("pulse", 51, 0),
    ("pulse", 90, 0),
    ("pulse", 91, 1),
    ("pulse", 110, 1),
    ("pulse", 111, 2),
    ("pulse", 130, 2),
    ("pulse", 131, 3),
    ("temperature", 35.0, 3),
    ("temperature", 35.1, 1),
    ("temperature", 36.0, 1),
    ("temperature", 36.1, 0),
    ("temperature", 38.0, 0),
    ("temperature", 38.1, 1),
    ("temperature", 39.0, 1),
    ("temperature", 39.1, 2),
]


def sample(**changes: float) -> dict[str, float]:
    return {**NORMAL, **changes}


@pytest.mark.parametrize(("parameter", "value", "expected"), EDGES)
def test_chart_edges(parameter: str, value: float, expected: int) -> None:
    result = score_news2(**sample(**{parameter: value}))
    assert result.parameters[parameter] == expected
    assert result.score == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (35.04, 3),
        (35.05, 1),  # 35.05 is 35.0499... in binary; still rounds up
        (36.049, 1),
        (36.05, 0),
        (38.04, 0),
        (38.05, 1),
        (39.049, 1),
        (39.05, 2),
    ],
)
def test_temperature_rounds_half_up_to_one_decimal(value: float, expected: int) -> None:
    assert parameter_score("temperature", value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_temperature_must_be_finite(value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_temperature(value)


def test_normal_sample_scores_zero() -> None:
    assert score_news2(**NORMAL) == News2(
        score=0, band="low", parameters=dict.fromkeys(PARAMETERS, 0)
    )


@pytest.mark.parametrize(
    ("changes", "score", "band"),
    [
        ({}, 0, "low"),
        ({"pulse": 120, "temperature": 38.5, "spo2": 95}, 4, "low"),  # 2 + 1 + 1
        ({"pulse": 120, "temperature": 39.5, "spo2": 95}, 5, "medium"),  # 2 + 2 + 1
        ({"pulse": 120, "temperature": 39.5, "spo2": 94, "systolic": 105}, 6, "medium"),
        ({"pulse": 120, "temperature": 39.5, "spo2": 93, "systolic": 105}, 7, "high"),
        ({"spo2": 90}, 3, "low-medium"),  # a single 3 alone
        ({"spo2": 90, "pulse": 45}, 4, "low-medium"),
        ({"spo2": 90, "pulse": 120}, 5, "medium"),  # a single 3, but the aggregate wins
    ],
)
def test_band_edges(changes: dict[str, float], score: int, band: str) -> None:
    result = score_news2(**sample(**changes))
    assert (result.score, result.band) == (score, band)


def test_septic_patient_worked_by_hand() -> None:
    # RR 26 -> 3, SpO2 93 -> 2, BP 95 -> 2, pulse 118 -> 2, 38.6 -> 1: 10, high.
    result = score_news2(resp_rate=26, spo2=93, systolic=95, pulse=118, temperature=38.6)
    assert result == News2(
        score=10,
        band="high",
        parameters={"resp_rate": 3, "spo2": 2, "systolic": 2, "pulse": 2, "temperature": 1},
    )


def test_cold_bradycardic_patient_worked_by_hand() -> None:
    # RR 10 -> 1, SpO2 96 -> 0, BP 230 -> 3, pulse 48 -> 1, 35.96 rounds to 36.0 -> 1: 6.
    result = score_news2(resp_rate=10, spo2=96, systolic=230, pulse=48, temperature=35.96)
    assert result == News2(
        score=6,
        band="medium",
        parameters={"resp_rate": 1, "spo2": 0, "systolic": 3, "pulse": 1, "temperature": 1},
    )


def test_result_is_hashable() -> None:
    assert len({score_news2(**NORMAL), score_news2(**NORMAL)}) == 1


@pytest.mark.parametrize(
    ("parameter", "value", "side"),
    [
        ("resp_rate", 11, "low"),
        ("resp_rate", 16, None),
        ("resp_rate", 21, "high"),
        ("spo2", 95, "low"),
        ("spo2", 100, None),
        ("systolic", 110, "low"),
        ("systolic", 220, "high"),
        ("pulse", 50, "low"),
        ("pulse", 91, "high"),
        ("temperature", 36.04, "low"),
        ("temperature", 36.05, None),
        ("temperature", 38.1, "high"),
    ],
)
def test_deviation(parameter: str, value: float, side: str | None) -> None:
    assert deviation(parameter, value) is (None if side is None else Side(side))


def test_band_rank_orders_bands_by_risk() -> None:
    assert [band_rank(band) for band in ("low", "low-medium", "medium", "high")] == [0, 1, 2, 3]
    assert BANDS == ("low", "low-medium", "medium", "high")


@pytest.mark.parametrize("band", ["", "HIGH", "critical"])
def test_band_rank_rejects_unknown_band(band: str) -> None:
    with pytest.raises(ValueError, match="unknown NEWS2 band"):
        band_rank(band)
