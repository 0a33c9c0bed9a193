"""Retention and partitions (data_app/retention.py), on SQLite and PostgreSQL: old samples go
(whole partitions on PostgreSQL), their rollups stay until their own retention, each
patient's kept-sample count follows, and partitions are made ahead of the data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from data_app.retention import RetentionJob, RetentionPolicy, maintain
from data_app.services import store_samples
from shared.db import db
from shared.models import Patient, PatientMetric, patient_metric_minutes
from shared.partitions import ROLLUPS, SAMPLES, create_partitions, existing_partitions
from shared.sample import VitalsSample

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(raw_days=30, rollup_days=60, days_ahead=7)


def sample(patient: uuid.UUID, moment: datetime, pulse: int = 70) -> VitalsSample:
    return VitalsSample(
        patient_uuid=patient,
        patient_name="Anna Ivanova",
        timestamp=moment,
        pulse=pulse,
        resp_rate=14,
        systolic=120,
        diastolic=80,
        spo2=97,
        temperature=36.7,
    )


def store(app: Flask, samples: list[VitalsSample]) -> int:
    with db.sessionmaker(app).begin() as session:
        return len(store_samples(session, samples))


def state(app: Flask, patient: uuid.UUID) -> tuple[int, int, int]:
    """The patient's kept-sample count, their samples and their rollup samples."""
    with db.sessionmaker(app)() as session:
        patient_id, count = session.execute(
            select(Patient.id, Patient.sample_count).where(Patient.uuid == patient)
        ).one()
        rows = session.scalar(select(func.count()).where(PatientMetric.patient_id == patient_id))
        minutes = session.scalar(
            select(func.coalesce(func.sum(patient_metric_minutes.c.samples), 0)).where(
                patient_metric_minutes.c.patient_id == patient_id
            )
        )
    return count, rows, minutes


def postgres(app: Flask) -> bool:
    return db.engine(app).dialect.name == "postgresql"


def test_samples_past_retention_go_and_their_rollups_stay(data_app: Flask) -> None:
    patient = uuid.uuid4()
    old, kept = NOW - timedelta(days=40), NOW - timedelta(days=10)
    if postgres(data_app):
        # A partition of its own for the old day, as if made ahead at the time.
        with db.engine(data_app).begin() as connection:
            create_partitions(connection, SAMPLES, [old])
    store(data_app, [sample(patient, old + timedelta(seconds=s)) for s in range(0, 120, 5)])
    store(data_app, [sample(patient, kept + timedelta(seconds=s)) for s in range(0, 60, 5)])
    assert state(data_app, patient) == (36, 36, 36)
    done = maintain(db.engine(data_app), POLICY, now=NOW)
    assert done.deleted_minutes == 0
    # The old day's 24 samples are gone, its two minutes of rollups kept.
    assert state(data_app, patient) == (12, 12, 36)
    if postgres(data_app):
        assert SAMPLES.partition_name(old) in done.dropped
        assert done.deleted_samples == 0
    else:
        assert done.deleted_samples == 24
    # A second pass (or a second data_app) finds nothing to do and uncounts nothing.
    again = maintain(db.engine(data_app), POLICY, now=NOW)
    assert (again.dropped, again.deleted_samples) == ([], 0)
    assert state(data_app, patient) == (12, 12, 36)


def test_rollups_past_their_own_retention_go(data_app: Flask) -> None:
    patient = uuid.uuid4()
    store(data_app, [sample(patient, NOW - timedelta(days=90))])
    store(data_app, [sample(patient, NOW - timedelta(days=1))])
    maintain(db.engine(data_app), POLICY, now=NOW)
    assert state(data_app, patient) == (1, 1, 1)


def test_a_sample_from_a_day_without_partition_is_stored_and_later_removed(
    data_app: Flask,
) -> None:
    """A backfill of old days lands in the default partition rather than failing its batch."""
    patient = uuid.uuid4()
    ancient = datetime(2001, 1, 1, tzinfo=UTC)
    assert store(data_app, [sample(patient, ancient), sample(patient, NOW)]) == 2
    assert state(data_app, patient) == (2, 2, 2)
    done = maintain(db.engine(data_app), POLICY, now=NOW)
    assert done.deleted_samples == 1
    assert done.deleted_minutes == 1
    assert state(data_app, patient) == (1, 1, 1)


def test_partitions_are_made_ahead_and_take_over_the_default_partitions_rows(
    data_app: Flask,
) -> None:
    if not postgres(data_app):
        pytest.skip("SQLite tables are not partitioned")
    patient = uuid.uuid4()
    later = NOW + timedelta(days=30)  # no partition yet: into the default one
    with db.engine(data_app).connect() as connection:
        assert SAMPLES.period_start(later) not in existing_partitions(connection, SAMPLES)
    store(data_app, [sample(patient, NOW + timedelta(days=30)), sample(patient, NOW)])
    policy = RetentionPolicy(raw_days=30, rollup_days=60, days_ahead=31)
    done = maintain(db.engine(data_app), policy, now=NOW)
    assert SAMPLES.partition_name(later) in done.made
    with db.engine(data_app).connect() as connection:
        days = existing_partitions(connection, SAMPLES)
        assert SAMPLES.period_start(later) in days
        assert ROLLUPS.period_start(later) in existing_partitions(connection, ROLLUPS)
        moved = connection.exec_driver_sql(
            f"SELECT count(*) FROM {days[SAMPLES.period_start(later)]}"
        ).scalar()
        stray = connection.exec_driver_sql(
            f"SELECT count(*) FROM {SAMPLES.default_partition}"
        ).scalar()
    assert (moved, stray) == (1, 0)
    assert state(data_app, patient) == (2, 2, 2)
    # The moved row is still the same sample: a replay of it is not stored again.
    assert store(data_app, [sample(patient, later)]) == 0


def test_rollups_cannot_be_kept_shorter_than_samples() -> None:
    with pytest.raises(ValueError, match="ROLLUP_RETENTION_DAYS"):
        RetentionPolicy(raw_days=30, rollup_days=7, days_ahead=7)


def test_the_retention_job_runs_when_it_starts(make_data_app, wait_for) -> None:
    app = make_data_app(RAW_RETENTION_DAYS=1, ROLLUP_RETENTION_DAYS=1)
    patient = uuid.uuid4()
    # Older than a month: its rollup minute is past the cutoff whatever today's date (a
    # month's rollup partition goes only once the whole month is).
    store(app, [sample(patient, datetime.now(UTC) - timedelta(days=40))])
    job = RetentionJob(app)
    job.start()
    try:
        wait_for(lambda: job.last is not None, timeout=20, message="no retention pass ran")
    finally:
        job.stop()
    assert state(app, patient) == (0, 0, 0)
