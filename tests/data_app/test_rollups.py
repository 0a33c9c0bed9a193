"""Per-minute rollups and kept-sample counts, added to as data_app stores samples (data_app/
rollups.py), on SQLite and PostgreSQL: exact across batches, unchanged by replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from data_app.services import DataService, store_samples
from shared.db import db
from shared.models import Patient, patient_metric_minutes
from shared.sample import VitalsSample

MINUTE = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)


def sample(
    patient: uuid.UUID, second: float, pulse: int, temperature: float = 36.6
) -> VitalsSample:
    return VitalsSample(
        patient_uuid=patient,
        patient_name="Anna Ivanova",
        timestamp=MINUTE + timedelta(seconds=second),
        pulse=pulse,
        resp_rate=14,
        systolic=120,
        diastolic=80,
        spo2=97,
        temperature=temperature,
    )


def minutes(app: Flask, patient: uuid.UUID) -> list[dict]:
    with db.sessionmaker(app)() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.uuid == patient))
        rows = session.execute(
            select(patient_metric_minutes)
            .where(patient_metric_minutes.c.patient_id == patient_id)
            .order_by(patient_metric_minutes.c.minute)
        )
        return [dict(row._mapping) for row in rows]


def kept(app: Flask, patient: uuid.UUID) -> int:
    with db.sessionmaker(app)() as session:
        return session.scalar(select(Patient.sample_count).where(Patient.uuid == patient))


def test_a_minute_sums_its_samples_across_batches(data_app: Flask) -> None:
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store([sample(patient, 1, 70, 36.5), sample(patient, 20, 90, 37.0)])
    service.store([sample(patient, 40, 60, 36.9), sample(patient, 61, 80)])
    first, second = minutes(data_app, patient)
    assert (first["minute"], first["samples"], first["news2_samples"]) == (MINUTE, 3, 3)
    assert (first["pulse_min"], first["pulse_max"], first["pulse_sum"]) == (60, 90, 220)
    assert (first["temperature_min"], first["temperature_max"]) == (36.5, 37.0)
    assert abs(first["temperature_sum"] - 110.4) < 1e-9
    assert (second["minute"], second["samples"], second["pulse_sum"]) == (
        MINUTE + timedelta(minutes=1),
        1,
        80,
    )
    assert kept(data_app, patient) == 4


def test_a_replay_adds_nothing(data_app: Flask) -> None:
    patient = uuid.uuid4()
    batch = [sample(patient, s, 70 + s // 10) for s in range(0, 50, 10)]
    service = DataService(data_app)
    assert service.store(batch) == 5
    before = minutes(data_app, patient)
    # The whole batch again, part of it, and a duplicate inside one batch.
    assert service.store(batch) == 0
    assert service.store(batch[2:] + batch[-1:] + [sample(patient, 55, 99)]) == 1
    after = minutes(data_app, patient)
    assert after[0]["samples"] == before[0]["samples"] + 1 == 6
    assert after[0]["pulse_max"] == 99
    assert kept(data_app, patient) == 6


def test_rollups_are_in_the_batch_transaction(data_app: Flask) -> None:
    """A batch that fails leaves no rollup or count behind."""
    patient = uuid.uuid4()
    DataService(data_app).store([sample(patient, 0, 70)])
    session = db.sessionmaker(data_app)()
    try:
        with session.begin():
            store_samples(session, [sample(patient, 5, 150)])
            session.rollback()
    finally:
        session.close()
    (minute,) = minutes(data_app, patient)
    assert (minute["samples"], minute["pulse_max"]) == (1, 70)
    assert kept(data_app, patient) == 1
