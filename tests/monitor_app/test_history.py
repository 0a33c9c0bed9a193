"""GET /api/v1/patient/{uuid}/history: vital signs summarised per time bucket."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from monitor_app.history import services
from monitor_app.history.schemas import HistorySchema
from monitor_app.history.services import WINDOWS
from shared.db import db
from shared.models import Patient
from tests.helpers import insert_samples, on_sqlite_only, view_statements

# 2025-01-31 09:00Z: a whole number of 240-second buckets since the epoch, so of every width.
TO = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
NORMAL = {
    "pulse": 60,
    "resp_rate": 14,
    "systolic": 120,
    "diastolic": 80,
    "spo2": 97,
    "temperature": 36.6,
    "news2_score": 0,
    "news2_band": "low",
}
NULL_STATS = {"min": None, "avg": None, "max": None}


def history_url(patient_uuid: str) -> str:
    return f"/api/v1/patient/{patient_uuid}/history"


def get_history(
    client: FlaskClient, patient_uuid: str, window: str = "15m", to: datetime = TO
) -> dict[str, Any]:
    response = client.get(
        history_url(patient_uuid), query_string={"window": window, "to": to.isoformat()}
    )
    assert response.status_code == 200, response.json
    return response.json


def starts(history: dict[str, Any]) -> list[str]:
    return [bucket["start"] for bucket in history["buckets"]]


def at(seconds: float) -> datetime:
    """The instant `seconds` before TO."""
    return TO - timedelta(seconds=seconds)


@pytest.fixture
def add_samples(app: Flask) -> Callable[..., None]:
    """Insert samples for a patient in one statement; each is NORMAL with the given changes."""

    def add(patient_uuid: str, samples: Iterable[dict[str, Any]]) -> None:
        with db.sessionmaker(app).begin() as session:
            patient_id = session.scalar(
                select(Patient.id).where(Patient.uuid == uuid.UUID(patient_uuid))
            )
            insert_samples(
                session, [{**NORMAL, "patient_id": patient_id, **sample} for sample in samples]
            )

    return add


def test_min_avg_max_per_bucket(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(
        ada.uuid,
        [
            # The bucket of 08:50:00-08:50:05, its last sample a microsecond before the next.
            {
                "timestamp": at(600),
                "pulse": 60,
                "resp_rate": 12,
                "systolic": 118,
                "spo2": 95,
                "temperature": 36.6,
                "news2_score": 1,
            },
            {
                "timestamp": at(597.5),
                "pulse": 63,
                "resp_rate": 15,
                "systolic": 125,
                "spo2": 96,
                "temperature": 36.71,
                "news2_score": None,
                "news2_band": None,
            },
            {
                "timestamp": at(595.000001),
                "pulse": 70,
                "resp_rate": 20,
                "systolic": 131,
                "spo2": 98,
                "temperature": 36.9,
                "news2_score": 3,
            },
            # 08:50:05-08:50:10, stored before scoring existed.
            {
                "timestamp": at(595),
                "pulse": 80,
                "diastolic": 70,
                "temperature": 37.2,
                "news2_score": None,
                "news2_band": None,
            },
            {
                "timestamp": at(591),
                "pulse": 85,
                "diastolic": 75,
                "temperature": 37.3,
                "news2_score": None,
                "news2_band": None,
            },
        ],
    )

    history = get_history(client, ada.uuid)

    assert history["buckets"] == [
        {
            "start": "2025-01-31T08:50:00+00:00",
            "count": 3,
            "pulse": {"min": 60, "avg": 64.3, "max": 70},  # 193 / 3
            "resp_rate": {"min": 12, "avg": 15.7, "max": 20},  # 47 / 3
            "systolic": {"min": 118, "avg": 124.7, "max": 131},  # 374 / 3
            "diastolic": {"min": 80, "avg": 80.0, "max": 80},
            "spo2": {"min": 95, "avg": 96.3, "max": 98},  # 289 / 3
            "temperature": {"min": 36.6, "avg": 36.74, "max": 36.9},  # 110.21 / 3
            "news2_score": {"min": 1, "avg": 2.0, "max": 3},
        },  # the null one is left out
        {
            "start": "2025-01-31T08:50:05+00:00",
            "count": 2,
            "pulse": {"min": 80, "avg": 82.5, "max": 85},
            "resp_rate": {"min": 14, "avg": 14.0, "max": 14},
            "systolic": {"min": 120, "avg": 120.0, "max": 120},
            "diastolic": {"min": 70, "avg": 72.5, "max": 75},
            "spo2": {"min": 97, "avg": 97.0, "max": 97},
            "temperature": {"min": 37.2, "avg": 37.25, "max": 37.3},
            "news2_score": NULL_STATS,
        },
    ]


def test_averages_round_half_up(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(
        ada.uuid,
        [
            {"timestamp": at(60 - i), "pulse": pulse, "temperature": 36.125}
            for i, pulse in enumerate([70, 70, 70, 71])
        ],
    )

    (bucket,) = get_history(client, ada.uuid)["buckets"]

    # 281 / 4 = 70.25 and 36.125 (exact in binary): halves go up, not to the even neighbour.
    assert (bucket["pulse"]["avg"], bucket["temperature"]["avg"]) == (70.3, 36.13)


def test_response_envelope(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(ada.uuid, [{"timestamp": at(30)}])

    history = get_history(client, ada.uuid, window="1h")

    assert {key: value for key, value in history.items() if key != "buckets"} == {
        "patient_uuid": ada.uuid,
        "window": "1h",
        "from": "2025-01-31T08:00:00+00:00",
        "to": "2025-01-31T09:00:00+00:00",
        "bucket_seconds": 10,
    }
    assert starts(history) == ["2025-01-31T08:59:30+00:00"]


@pytest.mark.parametrize(
    ("window", "span", "bucket_seconds"),
    [
        ("15m", timedelta(minutes=15), 5),
        ("1h", timedelta(hours=1), 10),
        ("6h", timedelta(hours=6), 60),
        ("24h", timedelta(hours=24), 240),
        ("7d", timedelta(days=7), 1800),
        ("30d", timedelta(days=30), 10800),
    ],
)
def test_window_sizes(
    client: FlaskClient,
    make_patient: Callable,
    add_samples: Callable,
    window: str,
    span: timedelta,
    bucket_seconds: int,
) -> None:
    ada = make_patient("Ada")
    # One sample in the window's first second, one in its last.
    add_samples(ada.uuid, [{"timestamp": TO - span}, {"timestamp": at(0.5)}])

    history = get_history(client, ada.uuid, window=window)

    assert history["bucket_seconds"] == bucket_seconds
    assert history["from"] == (TO - span).isoformat()
    assert starts(history) == [(TO - span).isoformat(), at(bucket_seconds).isoformat()]


def test_defaults_to_the_last_hour(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada")

    response = client.get(history_url(ada.uuid))

    assert response.status_code == 200
    history = response.json
    until = datetime.fromisoformat(history["to"])
    assert until.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(history["from"]) == until - timedelta(hours=1)
    assert (history["window"], history["bucket_seconds"], history["buckets"]) == ("1h", 10, [])


def test_buckets_oldest_first_and_gaps_left_out(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    # Inserted newest first; nothing between 08:59:20 and 08:59:50.
    add_samples(ada.uuid, [{"timestamp": at(seconds)} for seconds in (3, 7, 41, 45, 59, 60)])

    history = get_history(client, ada.uuid, window="1h")

    assert starts(history) == [
        "2025-01-31T08:59:00+00:00",
        "2025-01-31T08:59:10+00:00",
        "2025-01-31T08:59:50+00:00",
    ]
    assert [bucket["count"] for bucket in history["buckets"]] == [2, 2, 2]


def test_buckets_align_to_the_epoch_and_window_is_half_open(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    to = TO + timedelta(seconds=7)  # 09:00:07, so the window starts at 08:45:07
    add_samples(
        ada.uuid,
        [
            {"timestamp": to - timedelta(minutes=15, seconds=1), "pulse": 100},  # before `from`
            {"timestamp": to - timedelta(minutes=15), "pulse": 61},  # at `from`: counted
            {"timestamp": to - timedelta(microseconds=1), "pulse": 62},  # just before `to`
            {"timestamp": to, "pulse": 101},  # at `to`: not counted
        ],
    )

    history = get_history(client, ada.uuid, to=to)

    assert (history["from"], history["to"]) == (
        "2025-01-31T08:45:07+00:00",
        "2025-01-31T09:00:07+00:00",
    )
    # Starts are multiples of 5 s since the epoch, not offsets from `from`.
    assert [(bucket["start"], bucket["pulse"]["max"]) for bucket in history["buckets"]] == [
        ("2025-01-31T08:45:05+00:00", 61),
        ("2025-01-31T09:00:05+00:00", 62),
    ]


def test_to_in_another_time_zone(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(ada.uuid, [{"timestamp": at(1)}])

    response = client.get(
        history_url(ada.uuid), query_string={"window": "15m", "to": "2025-01-31T10:00:00+01:00"}
    )

    assert response.json["to"] == "2025-01-31T09:00:00+00:00"
    assert starts(response.json) == ["2025-01-31T08:59:55+00:00"]


def test_other_patients_are_left_out(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada, bea = make_patient("Ada"), make_patient("Bea")
    add_samples(ada.uuid, [{"timestamp": at(10), "pulse": 70}])
    add_samples(bea.uuid, [{"timestamp": at(10), "pulse": 140}, {"timestamp": at(20)}])

    (bucket,) = get_history(client, ada.uuid)["buckets"]

    assert (bucket["count"], bucket["pulse"]["max"]) == (1, 70)


def test_a_day_of_samples_fits_a_chart(
    client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(
        ada.uuid, [{"timestamp": at(5 * i), "pulse": 60 + i % 48} for i in range(1, 17_281)]
    )

    history = get_history(client, ada.uuid, window="24h")

    buckets = history["buckets"]
    # At most 360; exactly, as `to` falls on a bucket boundary: 48 samples in each.
    assert len(buckets) == 360
    assert sum(bucket["count"] for bucket in buckets) == 17_280
    assert {bucket["count"] for bucket in buckets} == {48}
    moments = [datetime.fromisoformat(start) for start in starts(history)]
    assert all(
        later - earlier == timedelta(seconds=240)
        for earlier, later in zip(moments, moments[1:], strict=False)
    )


def test_buckets_come_from_one_statement(
    app: Flask, client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(ada.uuid, [{"timestamp": at(seconds)} for seconds in range(1, 600, 7)])

    with view_statements(app) as statements:
        history = get_history(client, ada.uuid)

    assert len(history["buckets"]) > 50
    # The patient, then the buckets: the samples never travel to Python.
    assert len(statements) == 2, statements
    assert "GROUP BY" in statements[1][0]


@pytest.mark.parametrize("window", ["6h", "24h", "7d"])
def test_long_windows_are_summed_from_the_rollups_into_the_same_buckets(
    app: Flask, client: FlaskClient, make_patient: Callable, add_samples: Callable, window: str
) -> None:
    """Whole minutes from the rollups, the part-minutes at either end from the samples: the
    buckets are those the samples alone give, whatever the window's edges."""
    ada = make_patient("Ada")
    span, bucket_seconds = WINDOWS[window]
    to = TO + timedelta(seconds=7.5)  # not on a minute: both ends cut a minute
    add_samples(
        ada.uuid,
        [
            {
                "timestamp": to - timedelta(seconds=s),
                "pulse": 50 + (s * 7) % 90,
                "temperature": 36 + (s % 17) / 10,
                "news2_score": None if s % 11 == 0 else s % 4,
            }
            for s in (0, 1, 3, 7, 52, 59, 61, 3_000, 9_999, 21_599, 21_600, 21_601, 86_000)
            + tuple(range(20, 6_000, 37))
        ],
    )

    with view_statements(app) as statements:
        history = get_history(client, ada.uuid, window=window, to=to)

    assert any("patient_metric_minutes" in sql for sql, _ in statements), statements
    with db.sessionmaker(app)() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.uuid == uuid.UUID(ada.uuid)))
        from_samples = services._merged(
            services._sample_partials(session, patient_id, to - span, to, bucket_seconds),
            bucket_seconds,
        )
    expected = HistorySchema().dump(
        services.History(uuid.UUID(ada.uuid), window, to - span, to, bucket_seconds, from_samples)
    )
    assert history["buckets"] == expected["buckets"]
    assert sum(bucket["count"] for bucket in history["buckets"]) > 100


def test_short_windows_read_the_samples(
    app: Flask, client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(ada.uuid, [{"timestamp": at(30)}])
    with view_statements(app) as statements:
        get_history(client, ada.uuid, window="1h")
    assert not any("patient_metric_minutes" in sql for sql, _ in statements)


def test_buckets_query_uses_the_patient_time_index(
    app: Flask, client: FlaskClient, make_patient: Callable, add_samples: Callable
) -> None:
    ada = make_patient("Ada")
    add_samples(ada.uuid, [{"timestamp": at(1)}])
    with view_statements(app) as statements:
        get_history(client, ada.uuid)
    sql, parameters = statements[-1]

    with db.engine(app).begin() as connection:
        if connection.dialect.name == "sqlite":
            plan = str(connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all())
            # SQLite backs the unique constraint with an index of its own naming.
            expected = "USING INDEX sqlite_autoindex_patient_metrics_1 (patient_id=? AND timestamp>"
        else:
            # A tiny table is cheaper to scan; only the index's usability is in question here.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = str(connection.exec_driver_sql(f"EXPLAIN {sql}", parameters).all())
            # The index of the unique constraint, in each partition the window touches.
            expected = "_patient_id_timestamp_key on patient_metrics_"

    assert expected in plan, plan


def test_unknown_patient_is_404(client: FlaskClient) -> None:
    unknown = uuid.uuid4()

    response = client.get(history_url(str(unknown)))

    assert response.status_code == 404
    assert response.json == {
        "code": 404,
        "status": "Not Found",
        "message": f"No patient with UUID {unknown}.",
        "errors": {},
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"window": "2h"}, "window"),
        ({"window": ""}, "window"),
        ({"window": "1H"}, "window"),
        ({"to": "yesterday"}, "to"),
        ({"to": "2025-02-30T08:00:00Z"}, "to"),
        # Without an offset the instant is ambiguous: refused rather than guessed.
        ({"to": "2025-01-31T08:00:00"}, "to"),
    ],
)
@on_sqlite_only
def test_bad_query_is_422(
    client: FlaskClient, make_patient: Callable, query: dict, field: str
) -> None:
    ada = make_patient("Ada")

    response = client.get(history_url(ada.uuid), query_string=query)

    assert response.status_code == 422
    body = response.json
    assert (body["code"], body["status"]) == (422, "Unprocessable Entity")
    assert list(body["errors"]["query"]) == [field]


def test_malformed_uuid_is_422(client: FlaskClient) -> None:
    response = client.get(history_url("not-a-uuid"))
    assert response.status_code == 422
    assert response.json["errors"] == {"path": ["Not a valid UUID."]}


def test_documented_in_openapi(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json

    operation = spec["paths"]["/api/v1/patient/{patient_uuid}/history"]["get"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(query) == {"window", "to"}
    assert query["window"]["schema"]["enum"] == ["15m", "1h", "6h", "24h", "7d", "30d"]
    assert query["window"]["schema"]["default"] == "1h"
    assert {"200", "404", "422"} <= set(operation["responses"])
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/History"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["History"]["properties"]) == {
        "patient_uuid",
        "window",
        "from",
        "to",
        "bucket_seconds",
        "buckets",
    }
    assert set(schemas["Bucket"]["properties"]) == {
        "start",
        "count",
        "pulse",
        "resp_rate",
        "systolic",
        "diastolic",
        "spo2",
        "temperature",
        "news2_score",
    }
    assert set(schemas["VitalStats"]["properties"]) == {"min", "avg", "max"}
    assert all(
        field.get("description")
        for name in ("History", "Bucket", "VitalStats", "TemperatureStats", "ScoreStats")
        for field in schemas[name]["properties"].values()
    )


@pytest.mark.parametrize("window", ["1h", "24h"])
def test_the_body_is_flask_s_json_of_the_schema_s_dump_byte_for_byte(
    app: Flask, client: FlaskClient, make_patient: Callable, add_samples: Callable, window: str
) -> None:
    """The body is written by msgspec, not from HistorySchema's dump: the two give the same
    bytes, from the samples (1 h) and from the rollups and part-minutes (24 h) alike."""
    ada = make_patient("Ada")
    to = TO + timedelta(seconds=7.5)  # not on a minute: a 24 h window reads both sources
    add_samples(
        ada.uuid,
        [
            {
                "timestamp": to - timedelta(seconds=s),
                "pulse": 50 + (s * 7) % 90,
                "systolic": 100 + s % 41,
                "temperature": 37 if s % 5 == 0 else 36 + (s % 17) / 10,
                # Unscored samples, among them every sample of some buckets.
                "news2_score": None if s % 3 == 0 or s > 3_000 else s % 4,
                "news2_band": None if s % 3 == 0 or s > 3_000 else "low",
            }
            for s in (*range(1, 61, 4), *range(61, 3_590, 23), *range(4_000, 86_000, 613))
        ],
    )

    with view_statements(app) as statements:
        response = client.get(
            history_url(ada.uuid), query_string={"window": window, "to": to.isoformat()}
        )

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert any("patient_metric_minutes" in sql for sql, _ in statements) == (window == "24h")
    span, _bucket_seconds = WINDOWS[window]
    with db.sessionmaker(app)() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.uuid == uuid.UUID(ada.uuid)))
        history = services.patient_history(
            session, patient_id, uuid.UUID(ada.uuid), window, to.astimezone(UTC)
        )
    expected = app.json.response(HistorySchema().dump(history)).get_data(as_text=True)
    assert response.get_data(as_text=True) == expected
    assert len(response.json["buckets"]) > 20
    assert '"news2_score":{"avg":null,"max":null,"min":null}' in expected
    assert '"temperature":{"avg":' in expected and '"min":37.0' in expected


def test_means_round_as_the_decimal_form_of_the_quotient() -> None:
    """A whole-number total is rounded in integers; the result is the Decimal rounding of
    the float quotient's decimal form, ties (x.x5) included, for bucket-sized counts."""
    cases = [
        (total, samples, places)
        for samples in (*range(1, 50), 360, 1_440, 17_280)
        for total in (*range(0, 1_200, 1), *range(3_000_000, 3_000_400))
        for places in (1, 2)
    ]
    mismatched = [
        case
        for case in cases
        if services._mean(case[0], case[1], case[2])
        != services._rounded(case[0] / case[1], case[2])
    ]
    assert mismatched == []
    assert services._mean(281, 4, 1) == 70.3  # a tie goes up
    assert services._mean(None, 0, 1) is None
    assert services._mean(36.125 * 4, 4, 2) == 36.13  # a float total takes the Decimal way
