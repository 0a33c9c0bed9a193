"""GET /api/v1/patient/{uuid}/metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta, timezone

import pytest
from flask.testing import FlaskClient

from tests.helpers import on_sqlite_only


def metrics_url(patient_uuid: str) -> str:
    return f"/api/v1/patient/{patient_uuid}/metrics"


def test_newest_first(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=5)
    make_patient("Bea", samples=3)

    response = client.get(metrics_url(ada.uuid))

    assert response.status_code == 200
    assert [sample["timestamp"] for sample in response.json] == [
        moment.isoformat() for moment in reversed(ada.sample_times)
    ]


def test_sample_representation(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=1)

    (sample,) = client.get(metrics_url(ada.uuid)).json

    assert sample == {
        "timestamp": "2025-01-31T08:00:00+00:00",
        "pulse": 60,
        "resp_rate": 14,
        "bp": "120/80",
        "systolic": 120,
        "diastolic": 80,
        "spo2": 97,
        "temperature": 36.6,
        "news2_score": 0,
        "news2_band": "low",
    }


def test_from_is_inclusive_and_to_exclusive(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=6)
    times = ada.sample_times

    response = client.get(
        metrics_url(ada.uuid),
        query_string={"from": times[1].isoformat(), "to": times[4].isoformat()},
    )

    assert [s["timestamp"] for s in response.json] == [t.isoformat() for t in times[3:0:-1]]


def test_window_bounds_in_other_time_zones(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=6)
    paris = timezone(timedelta(hours=1))

    response = client.get(
        metrics_url(ada.uuid),
        query_string={
            "from": ada.sample_times[4].astimezone(paris).isoformat(),
            "to": ada.sample_times[5].isoformat().replace("+00:00", "Z"),
        },
    )

    assert [s["pulse"] for s in response.json] == [64]


def test_limit_keeps_the_newest(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=5)

    response = client.get(metrics_url(ada.uuid), query_string={"limit": 2})

    assert [s["pulse"] for s in response.json] == [64, 63]


def test_to_pages_back_through_history(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=5)

    first = client.get(metrics_url(ada.uuid), query_string={"limit": 3}).json
    rest = client.get(
        metrics_url(ada.uuid), query_string={"limit": 3, "to": first[-1]["timestamp"]}
    ).json

    assert [s["pulse"] for s in first + rest] == [64, 63, 62, 61, 60]


def test_patient_without_samples(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada")
    response = client.get(metrics_url(ada.uuid))
    assert (response.status_code, response.json) == (200, [])


def test_unknown_patient_is_404(client: FlaskClient) -> None:
    unknown = uuid.uuid4()

    response = client.get(metrics_url(str(unknown)))

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
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"from": "2025-01-31T09:00:00Z", "to": "2025-01-31T08:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-02-30T08:00:00Z"}, "to"),
        # Without an offset the instant is ambiguous: refused rather than guessed.
        ({"from": "2025-01-31T08:00:00"}, "from"),
    ],
)
@on_sqlite_only
def test_bad_query_is_422(
    client: FlaskClient, make_patient: Callable, query: dict, field: str
) -> None:
    ada = make_patient("Ada", samples=1)

    response = client.get(metrics_url(ada.uuid), query_string=query)

    assert response.status_code == 422
    body = response.json
    assert (body["code"], body["status"]) == (422, "Unprocessable Entity")
    assert list(body["errors"]["query"]) == [field]


@pytest.mark.parametrize("bad_uuid", ["not-a-uuid", "42", "0" * 33])
@on_sqlite_only
def test_malformed_uuid_is_422(client: FlaskClient, bad_uuid: str) -> None:
    response = client.get(metrics_url(bad_uuid))
    assert response.status_code == 422
    assert response.json["errors"] == {"path": ["Not a valid UUID."]}


def test_samples_are_shown_exactly_as_their_schema_documents(app, make_patient: Callable) -> None:
    from sqlalchemy import select

    from monitor_app.metrics.schemas import MetricSchema, dump_samples
    from monitor_app.metrics.services import list_metrics
    from shared.db import db
    from shared.models import Patient, PatientMetric

    ada = make_patient("Ada", samples=4)
    with app.app_context():
        session = db.session
        patient = session.scalar(select(Patient).where(Patient.uuid == uuid.UUID(str(ada.uuid))))
        unscored = session.scalars(
            select(PatientMetric).where(PatientMetric.patient_id == patient.id)
        ).first()
        unscored.news2_score, unscored.news2_band, unscored.temperature = None, None, 37
        session.commit()
        orm = session.scalars(
            select(PatientMetric)
            .where(PatientMetric.patient_id == patient.id)
            .order_by(PatientMetric.timestamp.desc())
        ).all()
        rows = list_metrics(session, patient.id, since=None, until=None, limit=10)
        assert dump_samples(rows) == MetricSchema(many=True).dump(orm)
        assert any(sample["news2_score"] is None for sample in dump_samples(rows))


def test_the_page_is_flask_s_json_of_the_schema_s_dump_byte_for_byte(
    app, client: FlaskClient, make_patient: Callable
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from monitor_app.metrics.schemas import MetricSchema
    from shared.db import db
    from shared.models import Patient, PatientMetric

    ada = make_patient("Ada", samples=3)
    with db.sessionmaker(app).begin() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.uuid == uuid.UUID(ada.uuid)))
        oldest, middle, _newest = ada.sample_times
        # Unscored, a whole-degree temperature, and a time with microseconds.
        session.execute(
            update(PatientMetric)
            .where(PatientMetric.patient_id == patient_id, PatientMetric.timestamp == oldest)
            .values(news2_score=None, news2_band=None, temperature=37)
        )
        session.execute(
            update(PatientMetric)
            .where(PatientMetric.patient_id == patient_id, PatientMetric.timestamp == middle)
            .values(timestamp=datetime(2025, 1, 31, 8, 1, 30, 123456, tzinfo=UTC))
        )
    with db.sessionmaker(app)() as session:
        orm = session.scalars(
            select(PatientMetric)
            .where(PatientMetric.patient_id == patient_id)
            .order_by(PatientMetric.timestamp.desc())
        ).all()
        # What the endpoint answered when it let Flask write the dump.
        expected = app.json.response(MetricSchema(many=True).dump(orm)).get_data(as_text=True)

    response = client.get(metrics_url(ada.uuid))

    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == expected
    assert '"timestamp":"2025-01-31T08:01:30.123456+00:00"' in expected
    assert '"news2_score":null' in expected and '"temperature":37.0' in expected
