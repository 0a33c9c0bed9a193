"""Escalation in real Celery worker processes: a worker killed mid-escalation, the next two
carrying on the schedule from the database, each step once between them."""

from __future__ import annotations

import signal
import uuid

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shared.db import utcnow
from shared.models import Alarm, Notification, Patient
from tests.test_analysis_pipeline import stack, start_worker  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

# Two-second periods, checked five times a second: the whole schedule in a few seconds.
FAST = {"ALARM_ESCALATION_SECONDS": "2", "ALARM_CHECK_SECONDS": "0.2"}


def test_a_killed_worker_leaves_the_schedule_to_the_next_ones(stack, wait_for):  # noqa: F811
    engine = create_engine(stack["settings"]["DATABASE_URL"], poolclass=NullPool)
    alarm_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        patient = Patient(uuid=uuid.uuid4(), name="Lena Vogt")
        session.add(patient)
        session.flush()
        alarm = Alarm(
            id=alarm_id,
            patient_id=patient.id,
            kind="physiological",
            condition="spo2_low",
            priority="high",
            value=81,
            limit_value=85,
            started_at=utcnow(),
            state="active",
            escalation_level=0,
        )
        session.add(alarm)

    def level() -> int:
        with Session(engine) as session:
            return session.scalar(select(Alarm.escalation_level).where(Alarm.id == alarm_id))

    try:
        start_worker(stack, wait_for, "first", **FAST)
        wait_for(lambda: level() >= 1, timeout=30, message="the first escalation")
        stack["processes"].running["first"].send_signal(signal.SIGKILL)
        stack["processes"].running["first"].wait(10)
        reached = level()

        # Two workers watching at once, from where the killed one left it.
        start_worker(stack, wait_for, "second", **FAST)
        start_worker(stack, wait_for, "third", **FAST)
        wait_for(lambda: level() == 3, timeout=30, message="escalation to the top level")
        with Session(engine) as session:
            titles = session.scalars(
                select(Notification.title)
                .where(Notification.title.contains("escalation"))
                .order_by(Notification.seq)
            ).all()
    finally:
        engine.dispose()
    assert reached in (1, 2)
    # Each level told once, in order, whichever worker got there.
    assert titles == [f"Lena Vogt: SpO2 low unacknowledged (escalation {n})" for n in (1, 2, 3)]
