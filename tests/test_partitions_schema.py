"""Migration 0009 on a database with samples: they move into day partitions on PostgreSQL,
and the rollups and kept-sample counts are computed from them, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select, text

from shared.db import make_engine
from shared.models import Patient, PatientMetric, patient_metric_minutes
from shared.partitions import ROLLUPS, SAMPLES, existing_partitions
from tests.helpers import to_revision

DAY = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def _stored(engine: Engine) -> None:
    """Two patients' samples at 0008: five in one minute of DAY, one on the next day."""
    samples = [(1, DAY + timedelta(seconds=10 * i), 60 + i) for i in range(5)]
    samples += [(2, DAY + timedelta(days=1, hours=3), 90)]
    with engine.begin() as connection:
        for patient_id in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO patients (id, uuid, name, created_at, alert_band,"
                    " alert_calm_samples) VALUES (:id, :uuid, :name, :at, 'low', 0)"
                ),
                {"id": patient_id, "uuid": uuid.uuid4().hex, "name": f"P{patient_id}", "at": DAY},
            )
        for patient_id, moment, pulse in samples:
            connection.execute(
                text(
                    "INSERT INTO patient_metrics (patient_id, timestamp, pulse, resp_rate,"
                    " systolic, diastolic, spo2, temperature, received_at, news2_score,"
                    " news2_band) VALUES (:p, :t, :pulse, 16, 120, 80, 97, 36.6, :t, :n, 'low')"
                ),
                # The first sample predates scoring: no NEWS2.
                {
                    "p": patient_id,
                    "t": moment.replace(tzinfo=None),
                    "pulse": pulse,
                    "n": None if pulse == 60 else 1,
                },
            )


def test_0009_rolls_up_counts_and_partitions_the_samples_there_are(engine: Engine) -> None:
    to_revision(engine, "0008")
    _stored(engine)
    to_revision(engine, "0009")
    with engine.connect() as connection:
        counts = dict(connection.execute(select(Patient.id, Patient.sample_count)).all())
        minutes = connection.execute(
            select(patient_metric_minutes).order_by(patient_metric_minutes.c.patient_id)
        ).all()
        assert connection.scalar(select(func.count()).select_from(PatientMetric)) == 6
        if engine.dialect.name == "postgresql":
            days = set(existing_partitions(connection, SAMPLES))
            assert {DAY, DAY + timedelta(days=1)} <= days
            assert SAMPLES.period_start(datetime.now(UTC)) in days
            assert set(existing_partitions(connection, ROLLUPS)) >= {DAY.replace(day=1)}
    assert counts == {1: 5, 2: 1}
    first, second = (row._mapping for row in minutes)
    assert (first["minute"], first["samples"], first["news2_samples"]) == (DAY, 5, 4)
    assert (first["pulse_min"], first["pulse_max"], first["pulse_sum"]) == (60, 64, 310)
    assert (first["news2_score_min"], first["news2_score_sum"]) == (1, 4)
    assert first["temperature_sum"] == pytest.approx(5 * 36.6)
    assert (second["minute"], second["samples"]) == (DAY + timedelta(days=1, hours=3), 1)


def test_0009_downgrades_back_keeping_every_sample(engine: Engine) -> None:
    to_revision(engine, "0008")
    _stored(engine)
    to_revision(engine, "0009")
    tables = to_revision(engine, "0008", down=True)
    assert "patient_metric_minutes" not in tables
    with engine.begin() as connection:
        assert connection.scalar(select(func.count()).select_from(PatientMetric)) == 6
        # The id sequence survived the two copies: a new row gets the next id.
        row = {
            "patient_id": 1,
            "timestamp": DAY + timedelta(hours=1),
            **dict(pulse=70, resp_rate=16, systolic=120, diastolic=80, spo2=97),
            "temperature": 36.6,
            "received_at": DAY,
        }
        new_id = connection.execute(
            insert(PatientMetric.__table__).values(row).returning(PatientMetric.id)
        ).scalar()
    assert new_id == 7
    assert "patient_metric_minutes" in to_revision(engine, "0009")
