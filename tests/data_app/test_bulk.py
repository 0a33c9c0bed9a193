"""BulkStatement: SQLite rows through the driver's executemany, as session.execute stores them."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite

from data_app.bulk import BulkStatement
from data_app.refusals import refusal_reason
from data_app.services import StoredSample, store_samples, vitals_event
from shared.db import db
from shared.models import Patient, PatientMetric
from shared.news2 import score_sample
from tests.data_app.test_storage import samples_for

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEYS = ("patient_id", "timestamp", "pulse", "resp_rate", "systolic", "diastolic", "spo2")
KEYS += ("temperature", "received_at", "news2_score", "news2_band")
INSERT = BulkStatement(sqlite.insert(PatientMetric.__table__).on_conflict_do_nothing(), KEYS)


@pytest.fixture
def sqlite_app(make_data_app, sqlite_url):
    return make_data_app(DATABASE_URL=sqlite_url)


def patient(session, name):
    row = Patient(uuid=uuid.uuid4(), name=name)
    session.add(row)
    session.flush()
    return row.id


def rows_for(patient_id, count, received_at):
    return [
        {
            "patient_id": patient_id,
            "timestamp": START + timedelta(seconds=i, microseconds=7 * i),
            "pulse": 70 + i,
            "resp_rate": 14,
            "systolic": 120,
            "diastolic": 80,
            "spo2": 97,
            "temperature": 36.5 + i / 10,
            "received_at": received_at,
            "news2_score": i % 3 or None,
            "news2_band": "low",
        }
        for i in range(count)
    ]


def stored_text(session, patient_id):
    """The rows as SQLite holds them, apart from their id and patient."""
    return session.execute(
        text(
            "SELECT timestamp, pulse, resp_rate, systolic, diastolic, spo2, temperature,"
            " received_at, news2_score, news2_band FROM patient_metrics"
            " WHERE patient_id = :p ORDER BY id"
        ),
        {"p": patient_id},
    ).all()


def test_rows_are_stored_as_session_execute_stores_them(sqlite_app):
    received_at = datetime(2026, 11, 24, 13, 0, 0, 123, tzinfo=UTC)
    with db.sessionmaker(sqlite_app).begin() as session:
        ours, theirs = patient(session, "Bulk"), patient(session, "Execute")
        assert INSERT.execute(session, rows_for(ours, 5, received_at)) == 5
        session.execute(INSERT.statement, rows_for(theirs, 5, received_at))
        assert stored_text(session, ours) == stored_text(session, theirs)
        assert stored_text(session, ours)[1][0] == "2026-11-24 12:00:01.000007"
        back = session.scalars(
            select(PatientMetric.timestamp).where(PatientMetric.patient_id == ours)
        ).all()
        assert back == [row["timestamp"] for row in rows_for(ours, 5, received_at)]


def test_the_count_says_how_many_rows_were_new(sqlite_app):
    received_at = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    with db.sessionmaker(sqlite_app).begin() as session:
        pid = patient(session, "Replayed")
        assert INSERT.execute(session, rows_for(pid, 3, received_at)) == 3
        assert INSERT.execute(session, rows_for(pid, 5, received_at)) == 2
        assert INSERT.execute(session, rows_for(pid, 5, received_at)) == 0


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("timestamp", datetime(2026, 11, 24, 12, 0), "ValueError: naive datetime"),
        ("pulse", 2**70, "OverflowError"),
        ("news2_band", "\ud800", "UnicodeEncodeError"),
    ],
)
def test_a_value_sqlite_cannot_take_is_refused_with_its_reason(sqlite_app, column, value, reason):
    # The consumer dead-letters what refusal_reason names, rather than retry it for ever.
    received_at = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    with db.sessionmaker(sqlite_app)() as session:
        rows = rows_for(patient(session, "Hostile"), 3, received_at)
        rows[1][column] = value
        with pytest.raises(Exception) as raised:  # noqa: PT011  (the reason says which)
            INSERT.execute(session, rows)
        assert reason in refusal_reason(raised.value)


def test_a_row_without_a_column_fails_rather_than_storing_null(sqlite_app):
    received_at = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    with db.sessionmaker(sqlite_app)() as session:
        rows = rows_for(patient(session, "Partial"), 2, received_at)
        del rows[1]["spo2"]
        with pytest.raises(KeyError, match="spo2"):
            INSERT.execute(session, rows)


def test_the_vitals_event_is_each_stored_sample_as_before(sqlite_app):
    first, second = uuid.uuid4(), uuid.uuid4()
    samples = samples_for(first, 2, name="Zoë Łukasiewicz") + samples_for(second, 1, name=None)
    with db.sessionmaker(sqlite_app).begin() as session:
        stored = store_samples(session, samples)
    event = json.loads(vitals_event(stored))
    assert event["type"] == "vitals"
    sample = samples[1]
    assert event["samples"][1] == {
        "patient_uuid": str(first),
        "patient_name": "Zoë Łukasiewicz",
        "timestamp": sample.timestamp.isoformat(),
        "pulse": sample.pulse,
        "resp_rate": sample.resp_rate,
        "systolic": sample.systolic,
        "diastolic": sample.diastolic,
        "spo2": sample.spo2,
        "temperature": sample.temperature,
        "bp": "120/80",
        "news2_score": score_sample(sample).score,
        "news2_band": "low",
    }
    assert list(event["samples"][1]) == list(event["samples"][0])
    assert [s["patient_uuid"] for s in event["samples"]] == [str(first)] * 2 + [str(second)]
    assert event["samples"][2]["patient_name"] is None
    assert isinstance(stored[0], StoredSample)
