"""PostgreSQL's COPY path (data_app/staging.py): a batch copied into a staging table, then moved
with ON CONFLICT, is still stored exactly once; a value COPY cannot write is refused, not retried
for ever; the staging table survives a batch that rolls back."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta, timezone

import msgspec
import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import data_app.consumer as consumer
from data_app.refusals import refusal_reason
from data_app.services import store_samples
from shared.db import db
from shared.models import Patient, PatientMetric, patient_metric_minutes
from tests.data_app.test_storage import samples_for
from tests.helpers import consumer_of, stored_rows, vitals_message

on_postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
pytestmark = on_postgres_only


def staged_here(session: Session) -> int | None:
    """Rows in this connection's staging table of samples; None if it has none."""
    if session.scalar(text("SELECT to_regclass('pg_temp.vigil_staged_samples')")) is None:
        return None
    return session.scalar(text("SELECT count(*) FROM pg_temp.vigil_staged_samples"))


def totals(app: Flask, patient: uuid.UUID) -> tuple[int, int, int]:
    """(samples stored, samples in the patient's minutes, the patient's kept-sample count)."""
    with db.sessionmaker(app)() as session:
        patient_id, kept = session.execute(
            select(Patient.id, Patient.sample_count).where(Patient.uuid == patient)
        ).one()
        stored = session.scalar(select(func.count()).where(PatientMetric.patient_id == patient_id))
        minutes = session.scalar(
            select(func.sum(patient_metric_minutes.c.samples)).where(
                patient_metric_minutes.c.patient_id == patient_id
            )
        )
        return stored, minutes, kept


def test_replays_and_in_batch_duplicates_are_stored_once_through_copy(data_app: Flask) -> None:
    patient = uuid.uuid4()
    batch = samples_for(patient, 20)
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, batch[:15])) == 15
        # Copied, then moved out again: nothing is left to move twice.
        assert staged_here(session) == 0
    with db.sessionmaker(data_app).begin() as session:
        replayed = store_samples(session, batch[10:] + batch[-1:] + batch[:3])
    assert sorted(s.sample.timestamp for s in replayed) == [s.timestamp for s in batch[15:]]
    assert totals(data_app, patient) == (20, 20, 20)
    with db.sessionmaker(data_app)() as session:
        newest = session.scalars(
            select(PatientMetric).order_by(PatientMetric.timestamp.desc()).limit(1)
        ).one()
    assert (newest.timestamp, newest.pulse, newest.temperature) == (
        batch[-1].timestamp,
        batch[-1].pulse,
        batch[-1].temperature,
    )
    assert newest.news2_band is not None


def test_a_time_given_in_another_zone_is_stored_at_its_instant(data_app: Flask) -> None:
    """COPY writes the columns' UTC without a zone itself (shared.db.UTCDateTime's form); the
    same instant written in two zones is one sample."""
    patient = uuid.uuid4()
    utc, later = samples_for(patient, 2)
    plus_five = timezone(timedelta(hours=5))
    in_kolkata = msgspec.structs.replace(later, timestamp=later.timestamp.astimezone(plus_five))
    with db.sessionmaker(data_app).begin() as session:
        stored = store_samples(session, [utc, in_kolkata, later])
    assert len(stored) == 2
    with db.sessionmaker(data_app)() as session:
        moments = session.scalars(select(PatientMetric.timestamp).order_by("timestamp")).all()
        minute = session.scalar(select(patient_metric_minutes.c.minute))
    assert moments == [utc.timestamp, later.timestamp]
    assert minute == utc.timestamp.replace(second=0)
    assert totals(data_app, patient) == (2, 2, 2)


def test_two_batches_in_one_transaction_each_count_once(data_app: Flask) -> None:
    """The commit empties the staging tables; a second batch before it must not move the
    first one's rows (and add their rollups) again."""
    patient = uuid.uuid4()
    batch = samples_for(patient, 30)
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, batch[:10])) == 10
        assert len(store_samples(session, batch[10:])) == 20
    assert totals(data_app, patient) == (30, 30, 30)


def test_a_batch_that_rolls_back_leaves_the_next_one_working(data_app: Flask) -> None:
    """The staging table made in the first batch on a connection goes with its rollback."""
    patient = uuid.uuid4()
    batch = samples_for(patient, 10)
    maker = db.sessionmaker(data_app)
    with maker() as session:
        first_backend = session.scalar(text("SELECT pg_backend_pid()"))
        store_samples(session, batch[:5])
        assert staged_here(session) == 0
        session.rollback()
        assert staged_here(session) is None
    with maker.begin() as session:
        # The same pooled connection, which had the staging table for a moment.
        assert session.scalar(text("SELECT pg_backend_pid()")) == first_backend
        assert len(store_samples(session, batch)) == 10
    assert totals(data_app, patient) == (10, 10, 10)


@pytest.mark.parametrize(
    ("pulse", "error"),
    [
        # Fits the staging table's bigint, not the column's integer: the server refuses it.
        # (psycopg's binary int4 writer would have stored it as -2**31.)
        (2**31, "integer out of range"),
        (2**40, "integer out of range"),
        # No PostgreSQL integer holds it: psycopg refuses to write it.
        (2**70, "OverflowError"),
    ],
)
def test_a_value_copy_cannot_store_is_a_refusal_not_a_wrapped_number(
    data_app: Flask, pulse: int, error: str
) -> None:
    patient = uuid.uuid4()
    batch = samples_for(patient, 3)
    batch[1] = msgspec.structs.replace(batch[1], pulse=pulse)
    with pytest.raises(Exception) as raised:  # noqa: PT011  (the kinds differ; the reason says)
        with db.sessionmaker(data_app).begin() as session:
            store_samples(session, batch)
    reason = refusal_reason(raised.value)
    assert reason is not None and error in reason, reason
    assert stored_rows(data_app) == 0
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, [batch[0], batch[2]])) == 2


def test_a_sample_copy_cannot_store_is_dead_lettered_alone(
    make_data_app, produce, read_topic, topic_names, wait_for, monkeypatch
) -> None:
    real_decode = consumer.decode_sample

    def lenient(value: bytes, *bounds):
        # As if validation let through a pulse no column holds (it does not).
        document = json.loads(value)
        sample = real_decode(json.dumps({**document, "pulse": 70}).encode(), *bounds)
        return msgspec.structs.replace(sample, pulse=document["pulse"])

    monkeypatch.setattr(consumer, "decode_sample", lenient)
    app = make_data_app()
    patients = [uuid.uuid4() for _ in range(3)]
    good = [vitals_message(patients[0], i) for i in range(6)]
    too_big = {**vitals_message(patients[1], 0), "pulse": 2**40}
    huge = {**vitals_message(patients[2], 0), "pulse": 2**70}
    stream = [*good[:3], too_big, huge, *good[3:]]
    produce(topic_names["KAFKA_TOPIC"], stream)
    consumer_of(app).start()

    wait_for(lambda: stored_rows(app) == len(good), message="every storable sample stored")
    dead = read_topic(topic_names["KAFKA_DLQ_TOPIC"], 2)
    reasons = {json.loads(m.value())["patient_uuid"]: dict(m.headers()) for m in dead}
    assert set(reasons) == {str(patients[1]), str(patients[2])}
    assert reasons[str(patients[1])]["dlq.reason"].startswith(b"not storable: ")
    assert b"out of range" in reasons[str(patients[1])]["dlq.reason"]
    assert b"OverflowError" in reasons[str(patients[2])]["dlq.reason"]
    with db.sessionmaker(app)() as session:
        pulses = set(session.scalars(select(PatientMetric.pulse)))
    assert pulses == {m["pulse"] for m in good}
