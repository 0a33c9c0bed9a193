"""The alarms API: the ward's list and its filters, a patient's history, acknowledging (by a
clinician, recorded) and silencing (bounded); and what callers who may not are told."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from data_app.alarms import AlarmTiming, raise_alarms
from data_app.services import StoredSample
from shared.audit import AuditAction, AuditEvent
from shared.auth.roles import Role
from shared.config import DEFAULT_WARD_ID
from shared.db import db
from shared.models import Alarm, Patient
from shared.news2 import score_sample
from shared.sample import VitalsSample
from tests.auth import Account
from tests.helpers import NORMAL_VITALS, on_sqlite_only

API = "/api/v1"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)
TIMING = AlarmTiming(delay=timedelta(seconds=10), max_gap=timedelta(seconds=15))


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


@pytest.fixture
def feed(app: Flask, make_patient: Callable) -> Callable[..., None]:
    """Store samples' alarms as data_app does: `feed(patient_uuid, {"spo2": 80}, {}, …)`,
    one sample every 5 s from `start`, NORMAL_VITALS with each entry's changes."""

    def store(patient_uuid: str, *changes: dict, start: datetime = T0) -> None:
        with db.sessionmaker(app).begin() as session:
            patient_id = session.scalar(
                select(Patient.id).where(Patient.uuid == uuid.UUID(patient_uuid))
            )
            stored = []
            for i, change in enumerate(changes):
                sample = VitalsSample(
                    patient_uuid=uuid.UUID(patient_uuid),
                    timestamp=start + i * STEP,
                    **{**NORMAL_VITALS, **change},
                )
                news2 = score_sample(sample)
                stored.append(StoredSample(patient_id, uuid.UUID(patient_uuid), sample, news2))
            raise_alarms(session, stored, user_id=DEFAULT_WARD_ID, timing=TIMING)

    return store


def the_alarm(app: Flask) -> Alarm:
    with db.sessionmaker(app)() as session:
        return session.scalars(select(Alarm)).one()


def audit_events(app: Flask, action: AuditAction) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
    with db.sessionmaker(app)() as session:
        return list(session.scalars(query))


def test_the_list_is_newest_first_and_filters(
    client: FlaskClient, make_patient: Callable, feed: Callable
) -> None:
    first, second = make_patient("Ana Ortiz").uuid, make_patient("Ben Okafor").uuid
    feed(first, {"spo2": 80})  # high at once
    feed(second, *[{"pulse": 130}] * 3, start=T0 + STEP)  # medium after the delay
    listed = client.get(f"{API}/alarms")
    assert listed.status_code == 200
    assert [(a["patient_name"], a["condition"], a["priority"]) for a in listed.json] == [
        ("Ben Okafor", "pulse_high", "medium"),
        ("Ana Ortiz", "spo2_low", "high"),
    ]
    high = listed.json[1]
    assert high["condition_text"] == "SpO2 low" and high["state"] == "active"
    assert (high["value"], high["limit"], high["escalation_level"]) == (80, 85, 0)
    assert high["patient_uuid"] == first and high["kind"] == "physiological"
    assert high["started_at"] == "2025-03-01T12:00:00+00:00"
    by = {
        "priority=high": ["Ana Ortiz"],
        "priority=low": [],
        f"patient_uuid={second}": ["Ben Okafor"],
        "state=open": ["Ben Okafor", "Ana Ortiz"],
        "state=resolved": [],
        "kind=technical": [],
    }
    for query, names in by.items():
        answer = client.get(f"{API}/alarms?{query}")
        assert [a["patient_name"] for a in answer.json] == names, query


def test_a_patients_history_keeps_its_resolved_alarms(
    client: FlaskClient, make_patient: Callable, feed: Callable
) -> None:
    patient = make_patient().uuid
    feed(patient, *[{"pulse": 130}] * 3, *[{}] * 3, *[{"pulse": 130}] * 3)
    history = client.get(f"{API}/patients/{patient}/alarms")
    assert history.status_code == 200
    assert [a["state"] for a in history.json] == ["active", "resolved"]
    assert history.json[1]["ended_at"] is not None
    assert client.get(f"{API}/patients/{uuid.uuid4()}/alarms").status_code == 404


def test_a_clinician_acknowledges_and_the_trail_says_who(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    patient = make_patient().uuid
    feed(patient, {"spo2": 80})
    alarm_id = the_alarm(app).id
    answer = client_as(clinician).post(f"{API}/alarms/{alarm_id}/acknowledge")
    assert answer.status_code == 200, answer.json
    assert answer.json["state"] == "acknowledged"
    assert answer.json["acknowledged_by"] == str(clinician.id)
    [event] = audit_events(app, AuditAction.ALARM_ACKNOWLEDGED)
    assert (event.user_id, event.role, str(event.patient_uuid)) == (
        clinician.id,
        "clinician",
        patient,
    )
    assert event.detail["alarm"] == str(alarm_id) and event.detail["condition"] == "spo2_low"
    # Again: the first acknowledgement stands.
    again = client_as(clinician).post(f"{API}/alarms/{alarm_id}/acknowledge")
    assert (
        again.status_code == 200 and again.json["acknowledged_at"] == answer.json["acknowledged_at"]
    )


def test_acknowledging_a_recovered_latched_alarm_ends_it(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    patient = make_patient().uuid
    feed(patient, {"spo2": 80}, *[{}] * 4)  # recovered for 20 s, latched
    assert the_alarm(app).state == "active"
    answer = client_as(clinician).post(f"{API}/alarms/{the_alarm(app).id}/acknowledge")
    assert answer.json["state"] == "resolved" and answer.json["ended_at"] is not None
    # The engine forgot the episode: the next crossing is a new alarm.
    feed(patient, {"spo2": 80}, start=T0 + 10 * STEP)
    with db.sessionmaker(app)() as session:
        states = session.scalars(select(Alarm.state).order_by(Alarm.started_at)).all()
    assert states == ["resolved", "active"]


def test_acknowledged_alarm_that_recovers_ends_by_itself(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    patient = make_patient().uuid
    feed(patient, {"spo2": 80})
    client_as(clinician).post(f"{API}/alarms/{the_alarm(app).id}/acknowledge")
    feed(patient, *[{}] * 3, start=T0 + STEP)
    assert the_alarm(app).state == "resolved"


@pytest.mark.parametrize(
    ("role", "status"), [(Role.VIEWER, 403), (Role.INTEGRATION, 403), (None, 401)]
)
def test_only_clinicians_and_admins_acknowledge_or_silence(
    app: Flask,
    client_as: Callable,
    make_account: Callable[..., Account],
    make_patient: Callable,
    feed: Callable,
    role: Role | None,
    status: int,
) -> None:
    feed(make_patient().uuid, {"spo2": 80})
    caller = client_as(None if role is None else make_account(role))
    alarm_id = the_alarm(app).id
    assert caller.post(f"{API}/alarms/{alarm_id}/acknowledge").status_code == status
    assert caller.post(f"{API}/alarms/{alarm_id}/silence", json={}).status_code == status
    alarm = the_alarm(app)
    assert (alarm.state, alarm.acknowledged_by, alarm.silenced_until) == ("active", None, None)


def test_silence_is_bounded_and_does_not_acknowledge(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    feed(make_patient().uuid, {"spo2": 80})
    alarm_id = the_alarm(app).id
    caller = client_as(clinician)
    for body in ({"seconds": 121}, {"seconds": 0}, {"seconds": "60"}, {"seconds": 1.5}):
        refused = caller.post(f"{API}/alarms/{alarm_id}/silence", json=body)
        assert refused.status_code == 422, body
    before = datetime.now(UTC)
    answer = caller.post(f"{API}/alarms/{alarm_id}/silence", json={"seconds": 60})
    assert answer.status_code == 200
    until = datetime.fromisoformat(answer.json["silenced_until"])
    assert before + timedelta(seconds=59) <= until <= datetime.now(UTC) + timedelta(seconds=61)
    assert answer.json["state"] == "active"
    # Left out, the longest: two minutes.
    longest = caller.post(f"{API}/alarms/{alarm_id}/silence", json={})
    assert datetime.fromisoformat(longest.json["silenced_until"]) > until
    [*_, event] = audit_events(app, AuditAction.ALARM_SILENCED)
    assert event.user_id == clinician.id


def test_a_configured_maximum_silence_is_enforced(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    app.config["ALARM_SILENCE_MAX_SECONDS"] = 30
    feed(make_patient().uuid, {"spo2": 80})
    caller = client_as(clinician)
    url = f"{API}/alarms/{the_alarm(app).id}/silence"
    assert caller.post(url, json={"seconds": 31}).status_code == 422
    assert caller.post(url, json={"seconds": 30}).status_code == 200


def test_a_resolved_alarm_cannot_be_answered(
    app: Flask, client_as: Callable, clinician: Account, make_patient: Callable, feed: Callable
) -> None:
    feed(make_patient().uuid, *[{"pulse": 130}] * 3, *[{}] * 3)
    assert the_alarm(app).state == "resolved"
    caller = client_as(clinician)
    for action in ("acknowledge", "silence"):
        answer = caller.post(f"{API}/alarms/{the_alarm(app).id}/{action}", json={})
        assert answer.status_code == 409 and "ended" in answer.json["message"]


@on_sqlite_only
@pytest.mark.parametrize(
    "path",
    [
        "/alarms/6d1e0c52-8f5e-4a43-9a31-2f6f7d0f5b10/acknowledge",
        "/alarms/not-a-uuid/acknowledge",
        "/alarms/1%20OR%201=1/silence",
    ],
)
def test_an_unknown_or_malformed_alarm_id_is_refused(
    client_as: Callable, clinician: Account, path: str
) -> None:
    answer = client_as(clinician).post(f"{API}{path}", json={})
    assert answer.status_code in (404, 422) and "message" in answer.json


@on_sqlite_only
@pytest.mark.parametrize(
    "query",
    ["state=ringing", "priority=urgent", "kind=both", "patient_uuid=x", "page_size=100000"],
)
def test_bad_filters_are_422(client: FlaskClient, query: str) -> None:
    answer = client.get(f"{API}/alarms?{query}")
    assert answer.status_code == 422 and "errors" in answer.json
