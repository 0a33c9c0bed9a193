"""Physiological alarms raised, latched and resolved in the batch's transaction, from each
patient's limits; the engine's own rules are tested in tests/test_alarm_conditions.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from data_app.services import DataService
from shared.db import db
from shared.models import Alarm, AlarmLimits, Notification, Patient
from shared.sample import VitalsSample
from tests.helpers import CRITICAL_VITALS, NORMAL_VITALS, consumer_of, stored_rows, vitals_message

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)  # the delay is 10 s: three crossing samples raise


def samples(patient: uuid.UUID, *values: dict, start: datetime = START) -> list[VitalsSample]:
    """One sample per entry, 5 s apart: NORMAL_VITALS with the entry's changes."""
    return [
        VitalsSample(
            patient_uuid=patient,
            patient_name="Ines Duarte",
            timestamp=start + i * STEP,
            **{**NORMAL_VITALS, **changes},
        )
        for i, changes in enumerate(values)
    ]


def alarms(app) -> list[Alarm]:
    """The alarms of the vitals' limits; a SpO2 of 88 also scores in NEWS2 (see the end)."""
    with db.sessionmaker(app)() as session:
        query = select(Alarm).where(Alarm.condition != "news2").order_by(Alarm.started_at)
        return list(session.scalars(query))


def alarm_notifications(app) -> list[Notification]:
    with db.sessionmaker(app)() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.title.contains("priority"))
                .order_by(Notification.seq)
            )
        )


LOW_SPO2 = {"spo2": 88}  # below 90, not below the extreme 85: medium, after the delay
NORMAL: dict = {}


def test_a_spike_shorter_than_the_delay_raises_nothing(data_app):
    service = DataService(data_app)
    service.store(samples(uuid.uuid4(), NORMAL, LOW_SPO2, LOW_SPO2, NORMAL, NORMAL))
    assert alarms(data_app) == []
    assert alarm_notifications(data_app) == []


def test_a_sustained_crossing_raises_one_alarm_with_its_notification(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    # Split over batches: the delay is measured across them, from the patient's row.
    stream = samples(patient, NORMAL, LOW_SPO2, LOW_SPO2, LOW_SPO2, LOW_SPO2, LOW_SPO2)
    for sample in stream:
        service.store([sample])
    (alarm,) = alarms(data_app)
    assert (alarm.kind, alarm.condition, alarm.priority, alarm.state) == (
        "physiological",
        "spo2_low",
        "medium",
        "active",
    )
    assert (alarm.value, alarm.limit_value) == (88, 90)
    assert alarm.started_at == START + 3 * STEP  # the sample that made the delay
    (notification,) = alarm_notifications(data_app)
    assert alarm.notification_id == notification.seq
    assert notification.title == "Ines Duarte: SpO2 low (medium priority)"
    assert "Warning" in notification.text and "SpO2 88%" in notification.text
    assert "Critical" not in notification.text and "hypoxaemia" not in notification.text


def test_an_extreme_value_alarms_at_once_and_latches_until_acknowledged(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(patient, NORMAL, {"spo2": 80}))
    (alarm,) = alarms(data_app)
    assert (alarm.priority, alarm.limit_value, alarm.started_at) == ("high", 85, START + STEP)
    assert "Critical" in alarm_notifications(data_app)[0].text
    # Recovered for far longer than the delay: a high alarm stays until someone sees it.
    service.store(samples(patient, *[NORMAL] * 10, start=START + 2 * STEP))
    (alarm,) = alarms(data_app)
    assert alarm.state == "active" and alarm.ended_at is None


def test_a_medium_alarm_ends_once_back_inside_for_the_delay(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(patient, *[LOW_SPO2] * 4, *[NORMAL] * 4))
    (alarm,) = alarms(data_app)
    assert alarm.state == "resolved"
    assert alarm.ended_at == START + 6 * STEP  # back inside at 4, for 10 s at 6
    with db.sessionmaker(data_app)() as session:
        assert session.scalar(select(Patient.alarm_episodes)) is None  # all idle again
    # The next episode is a new alarm.
    service.store(samples(patient, *[LOW_SPO2] * 4, start=START + 8 * STEP))
    assert [a.state for a in alarms(data_app)] == ["resolved", "active"]


def test_going_extreme_during_a_medium_alarm_raises_it_to_high_and_tells_again(data_app):
    patient = uuid.uuid4()
    DataService(data_app).store(samples(patient, *[LOW_SPO2] * 3, {"spo2": 82}))
    (alarm,) = alarms(data_app)
    assert (alarm.priority, alarm.value, alarm.limit_value) == ("high", 82, 85)
    assert [n.title.rsplit("(", 1)[1] for n in alarm_notifications(data_app)] == [
        "medium priority)",
        "high priority)",
    ]


def test_a_patients_own_limits_are_the_ones_that_alarm(data_app):
    fast, other = uuid.uuid4(), uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(fast, NORMAL) + samples(other, NORMAL))
    with db.sessionmaker(data_app).begin() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.uuid == fast))
        session.add(
            AlarmLimits(
                patient_id=patient_id, pulse_high=100, reason="test", updated_by=uuid.uuid4()
            )
        )
    tachycardia = {"pulse": 110}  # inside the default 120
    later = START + STEP
    service.store(samples(fast, *[tachycardia] * 3, start=later))
    service.store(samples(other, *[tachycardia] * 3, start=later))
    (alarm,) = alarms(data_app)
    assert (alarm.condition, alarm.value, alarm.limit_value) == ("pulse_high", 110, 100)


def test_a_replayed_batch_raises_nothing_again(data_app):
    service = DataService(data_app)
    batch = samples(uuid.uuid4(), *[LOW_SPO2] * 4)
    assert service.store(batch) == 4
    assert service.store(batch) == 0
    assert len(alarms(data_app)) == 1
    assert len(alarm_notifications(data_app)) == 1


@pytest.mark.parametrize(
    "planted",
    [
        {"spo2_low": "not an episode"},
        {"spo2_low": {"last_seen": "yesterday", "alarm": None}},
        {"no_such_condition": {}},
        ["a", "list"],
    ],
)
def test_an_unreadable_episode_is_dropped_and_alarms_go_on(data_app, planted):
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(patient, NORMAL))
    with db.sessionmaker(data_app).begin() as session:
        session.execute(update(Patient).values(alarm_episodes=planted))
    service.store(samples(patient, *[LOW_SPO2] * 3, start=START + STEP))
    assert [a.condition for a in alarms(data_app)] == ["spo2_low"]


def news2_alarms(app) -> list[Alarm]:
    with db.sessionmaker(app)() as session:
        query = select(Alarm).where(Alarm.condition == "news2").order_by(Alarm.started_at)
        return list(session.scalars(query))


def test_a_news2_band_alert_is_an_alarm_told_by_the_alert_itself(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    # NEWS2 11: high at once; three normal samples settle it back to low.
    service.store(samples(patient, NORMAL, CRITICAL_VITALS, NORMAL, NORMAL, NORMAL))
    (alarm,) = news2_alarms(data_app)
    assert (alarm.priority, alarm.value, alarm.started_at) == ("high", 0, START + STEP)
    assert (alarm.state, alarm.ended_at) == ("resolved", START + 4 * STEP)
    with db.sessionmaker(data_app)() as session:
        told = session.scalar(select(Notification).where(Notification.seq == alarm.notification_id))
    assert "NEWS2 11, high risk" in told.title  # the band alert, not a second notification


def test_a_worse_band_raises_the_news2_alarm_it_does_not_open_another(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    low_medium = {"resp_rate": 25}  # 3 in one parameter: low-medium
    service.store(samples(patient, low_medium))
    assert [(a.priority, a.state) for a in news2_alarms(data_app)] == [("low", "active")]
    service.store(samples(patient, CRITICAL_VITALS, start=START + STEP))
    assert [(a.priority, a.value) for a in news2_alarms(data_app)] == [("high", 11)]


# -- invalid data: a technical alarm -----------------------------------------------------------


def invalid_data_alarms(app) -> list[Alarm]:
    with db.sessionmaker(app)() as session:
        query = select(Alarm).where(Alarm.condition == "invalid_data").order_by(Alarm.started_at)
        return list(session.scalars(query))


def refused(patient: uuid.UUID, **wrong) -> bytes:
    return json.dumps({"patient_uuid": str(patient), "spo2": "high", **wrong}).encode()


def test_samples_refused_again_and_again_raise_a_low_technical_alarm(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(patient, NORMAL))
    service.note_refused([refused(patient), refused(patient)])
    assert invalid_data_alarms(data_app) == []
    service.note_refused([refused(patient), refused(patient)])  # the third in a row, and a fourth
    (alarm,) = invalid_data_alarms(data_app)
    assert (alarm.kind, alarm.priority, alarm.state, alarm.value) == (
        "technical",
        "low",
        "active",
        3,
    )
    with db.sessionmaker(data_app)() as session:
        told = session.scalar(select(Notification).where(Notification.seq == alarm.notification_id))
    assert told.title == "Ines Duarte: Invalid data (low priority)"
    assert "Warning" not in told.text and "Critical" not in told.text
    # A good sample ends it, and starts the count again.
    service.store(samples(patient, NORMAL, start=START + STEP))
    assert [a.state for a in invalid_data_alarms(data_app)] == ["resolved"]
    service.note_refused([refused(patient)] * 2)
    assert len(invalid_data_alarms(data_app)) == 1


def test_a_good_sample_between_refusals_restarts_the_count(data_app):
    patient = uuid.uuid4()
    service = DataService(data_app)
    service.store(samples(patient, NORMAL))
    service.note_refused([refused(patient)] * 2)
    service.store(samples(patient, NORMAL, start=START + STEP))
    service.note_refused([refused(patient)] * 2)
    assert invalid_data_alarms(data_app) == []


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[1, 2]",
        b'{"patient_uuid": 42}',
        b'{"patient_uuid": "not-a-uuid"}',
        b"[" * 100_000,
        b'{"patient_uuid": "' + b"0" * 70_000 + b'"}',
        b"\xff\xfe",
    ],
)
def test_what_names_no_patient_counts_for_none(data_app, value):
    service = DataService(data_app)
    service.note_refused([value] * 5)
    assert service.refused_in_a_row == {}
    assert invalid_data_alarms(data_app) == []


def test_refusals_for_a_patient_never_seen_create_no_patient(data_app):
    stranger = uuid.uuid4()
    DataService(data_app).note_refused([refused(stranger)] * 5)
    with db.sessionmaker(data_app)() as session:
        assert session.scalar(select(Patient).where(Patient.uuid == stranger)) is None
    assert invalid_data_alarms(data_app) == []


def test_the_consumer_raises_it_from_what_it_dead_letters(data_app, produce, topic_names, wait_for):
    patient = uuid.uuid4()
    topic = topic_names["KAFKA_TOPIC"]
    consumer = consumer_of(data_app)
    consumer.start()
    produce(topic, [vitals_message(patient, 0)])
    wait_for(lambda: stored_rows(data_app) == 1, message="the first sample")
    produce(topic, [refused(patient, timestamp=f"2025-01-01T00:00:0{i}Z") for i in range(3)])
    (alarm,) = wait_for(lambda: invalid_data_alarms(data_app), message="the invalid-data alarm")
    assert alarm.priority == "low"
    # Counted just after the alarm: the dead letters are in the same batch.
    wait_for(lambda: consumer.status["dead_lettered"] == 3, message="3 dead letters counted")
