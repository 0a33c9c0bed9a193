"""The alarms migration (0006) both ways, and what the alarms table itself refuses, on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import make_engine, migrate
from shared.models import Alarm, AlarmKind, AlarmPriority, AlarmState, Patient
from tests.helpers import to_revision

ALARM_TABLES = {"alarms", "alarm_limits"}


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def test_0006_upgrades_from_0005_and_downgrades_back(engine: Engine) -> None:
    assert not ALARM_TABLES & to_revision(engine, "0005")
    assert ALARM_TABLES <= to_revision(engine, "0006")
    assert not ALARM_TABLES & to_revision(engine, "0005", down=True)
    assert ALARM_TABLES <= to_revision(engine, "0006")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    migrate(engine)
    with Session(engine) as session:
        patient = Patient(uuid=uuid.uuid4(), name="Ada Lovelace")
        session.add(patient)
        session.commit()
        yield session


def alarm(session: Session, **overrides: object) -> Alarm:
    patient = session.query(Patient).one()
    fields = {
        "patient_id": patient.id,
        "kind": AlarmKind.PHYSIOLOGICAL,
        "condition": "SpO2 low",
        "priority": AlarmPriority.HIGH,
        "value": 84.0,
        "limit_value": 85.0,
        **overrides,
    }
    return Alarm(**fields)


def test_one_open_alarm_per_patient_and_condition(session: Session) -> None:
    session.add(alarm(session, state=AlarmState.RESOLVED))
    session.add(alarm(session, state=AlarmState.RESOLVED))
    session.add(alarm(session))
    session.add(alarm(session, condition="Pulse high"))
    session.commit()
    session.add(alarm(session, state=AlarmState.ACKNOWLEDGED))
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(
    "overrides",
    [{"kind": "imaginary"}, {"priority": "urgent"}, {"state": "snoozed"}, {"escalation_level": -1}],
    ids=lambda overrides: next(iter(overrides)),
)
def test_the_database_refuses_values_outside_the_enums(
    session: Session, overrides: dict[str, object]
) -> None:
    session.add(alarm(session, **overrides))
    with pytest.raises(IntegrityError):
        session.commit()


def test_a_new_alarm_is_active_and_unescalated(session: Session) -> None:
    session.add(alarm(session))
    session.commit()
    stored = session.query(Alarm).one()
    assert stored.state == AlarmState.ACTIVE and stored.escalation_level == 0
    assert stored.started_at is not None and stored.ended_at is None
