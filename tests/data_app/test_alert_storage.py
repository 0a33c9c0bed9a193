"""NEWS2 stored with each sample, and alert notifications raised in the batch's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from data_app.services import DataService, raise_alerts, store_samples
from shared.db import db
from shared.models import Notification, PatientMetric
from shared.sample import VitalsSample
from tests.helpers import CRITICAL_VITALS as CRITICAL
from tests.helpers import NORMAL_VITALS as NORMAL

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# Pulse 115 (2), respiration 22 (2), SpO2 93 (2): NEWS2 6, medium risk.
MEDIUM = {
    "pulse": 115,
    "resp_rate": 22,
    "systolic": 120,
    "diastolic": 75,
    "spo2": 93,
    "temperature": 37.0,
}


def stream(
    patient: uuid.UUID, *phases: tuple[dict, int], start: datetime = START
) -> list[VitalsSample]:
    samples, second = [], 0
    for vitals, count in phases:
        for _ in range(count):
            samples.append(
                VitalsSample(
                    patient_uuid=patient,
                    patient_name="Maria Sokolova",
                    timestamp=start + timedelta(seconds=5 * second),
                    **vitals,
                )
            )
            second += 1
    return samples


def notifications(app) -> list[Notification]:
    """The NEWS2 alerts; sustained critical vitals also raise alarms (test_alarm_raising.py)."""
    with db.sessionmaker(app)() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.title.contains("NEWS2"))
                .order_by(Notification.seq)
            )
        )


def test_each_sample_is_stored_with_its_news2(data_app):
    pid = uuid.uuid4()
    DataService(data_app).store(stream(pid, (NORMAL, 1), (CRITICAL, 1), (MEDIUM, 1)))
    with db.sessionmaker(data_app)() as session:
        scored = session.execute(
            select(PatientMetric.news2_score, PatientMetric.news2_band).order_by(
                PatientMetric.timestamp
            )
        ).all()
    assert scored == [(0, "low"), (11, "high"), (6, "medium")]


def test_one_alert_per_band_change_and_one_recovery(data_app):
    pid = uuid.uuid4()
    service = DataService(data_app)
    batch = stream(pid, (NORMAL, 3), (CRITICAL, 6), (NORMAL, 5))
    # Two batches, split mid-crisis: the state carries over through the database.
    assert service.store(batch[:6]) + service.store(batch[6:]) == len(batch)

    alerts = notifications(data_app)
    assert [n.title.split(": ", 1)[1] for n in alerts] == [
        "NEWS2 11, high risk",
        "NEWS2 0, low risk, recovered",
    ]
    first, recovery = alerts
    assert "Critical" in first.text and "hypoxaemia" in first.text and "SpO2 88%" in first.text
    assert first.user_id == data_app.config["WARD_ID"]
    assert all(n.processing_status == "pending" and n.patient_id is not None for n in alerts)
    assert "recovered" in recovery.text


def test_a_replayed_batch_raises_nothing_again(data_app):
    pid = uuid.uuid4()
    batch = stream(pid, (CRITICAL, 3))
    service = DataService(data_app)
    assert service.store(batch) == 3
    assert service.store(batch) == 0
    assert len(notifications(data_app)) == 1


def test_worsening_again_after_settling_alerts_again(data_app):
    pid = uuid.uuid4()
    batch = stream(pid, (MEDIUM, 2), (CRITICAL, 2), (MEDIUM, 4), (CRITICAL, 1))
    DataService(data_app).store(batch)
    titles = [n.title for n in notifications(data_app)]
    assert titles == [
        "Maria Sokolova: NEWS2 6, medium risk",
        "Maria Sokolova: NEWS2 11, high risk",
        "Maria Sokolova: NEWS2 11, high risk",
    ]


def test_alerts_roll_back_with_the_batch(data_app):
    pid = uuid.uuid4()
    try:
        with db.sessionmaker(data_app).begin() as session:
            stored = store_samples(session, stream(pid, (CRITICAL, 2)))
            assert raise_alerts(session, stored, user_id=uuid.uuid4(), recovery_samples=3)
            raise RuntimeError("the batch fails after the alerts were added")
    except RuntimeError:
        pass
    assert notifications(data_app) == []
    # Retried, the batch raises its alert once.
    DataService(data_app).store(stream(pid, (CRITICAL, 2)))
    assert len(notifications(data_app)) == 1


def test_a_failed_batch_forgets_the_patient_ids_it_learnt(data_app, monkeypatch):
    import data_app.services as services

    service = DataService(data_app)
    known, newcomer = uuid.uuid4(), uuid.uuid4()
    service.store(stream(known, (NORMAL, 1)))
    assert set(service.patient_ids) == {known}

    def failing(*_args, **_kwargs):
        raise RuntimeError("the batch fails after its patients were created")

    monkeypatch.setattr(services, "raise_alerts", failing)
    with pytest.raises(RuntimeError):
        service.store(stream(newcomer, (NORMAL, 1), start=START + timedelta(hours=1)))
    # The newcomer's row was rolled back: an id remembered from it would point nowhere.
    assert service.patient_ids == {}
    monkeypatch.undo()
    assert service.store(stream(newcomer, (NORMAL, 2), start=START + timedelta(hours=1))) == 2
    assert service.store(stream(known, (NORMAL, 1), start=START + timedelta(hours=2))) == 1
    assert set(service.patient_ids) == {known, newcomer}


def test_a_sample_from_the_future_already_stored_does_not_silence_alerts(data_app):
    # Stored before such samples were refused: 4 minutes ahead, its state took every real
    # sample for an older one and ignored it, a crisis included, until the clock caught up.
    pid = uuid.uuid4()
    now = datetime.now(UTC)
    service = DataService(data_app)
    service.store(stream(pid, (MEDIUM, 1), start=now + timedelta(minutes=4)))
    assert service.store(stream(pid, (CRITICAL, 1), start=now)) == 1
    assert [n.title for n in notifications(data_app)] == [
        "Maria Sokolova: NEWS2 6, medium risk",
        "Maria Sokolova: NEWS2 11, high risk",
    ]
