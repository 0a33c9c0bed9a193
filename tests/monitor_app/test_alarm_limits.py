"""Per-patient alarm limits: defaults, partial changes, who may change them, the audit trail,
and the bodies that are refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from monitor_app.auth import services
from shared.alarm_limits import DEFAULT_LIMITS, Limits, Parameter
from shared.audit import AuditAction, AuditEvent
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.identity import User
from shared.models import AlarmLimits
from tests.auth import Account, client_for, signer
from tests.helpers import on_sqlite_only

API = "/api/v1"
REASON = "chronic AF, rate-controlled"
LIMIT_KEYS = {"low", "high", "extreme_low", "extreme_high"}


def url(patient_uuid: str) -> str:
    return f"{API}/patients/{patient_uuid}/alarm-limits"


def as_json(limits: Limits) -> dict[str, float | None]:
    return {key: getattr(limits, key) for key in LIMIT_KEYS}


DEFAULTS_JSON = {parameter.value: as_json(DEFAULT_LIMITS[parameter]) for parameter in Parameter}


def audit_events(app: Flask, action: AuditAction) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
    with db.sessionmaker(app)() as session:
        return list(session.scalars(query))


@pytest.fixture
def patient(make_patient: Callable) -> str:
    return make_patient().uuid


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


def test_a_new_patient_has_the_adult_icu_defaults(client: FlaskClient, patient: str) -> None:
    response = client.get(url(patient))
    assert response.status_code == 200
    body = response.json
    assert {key: body[key] for key in DEFAULTS_JSON} == DEFAULTS_JSON
    assert body["pulse"] == {"low": 50, "high": 120, "extreme_low": 40, "extreme_high": 150}
    assert body["spo2"]["high"] is None
    assert body["patient_uuid"] == patient
    assert body["updated_by"] is None and body["updated_at"] is None and body["reason"] is None


def test_a_partial_change_changes_only_what_it_names(
    client: FlaskClient, patient: str, admin: Account
) -> None:
    response = client.put(url(patient), json={"pulse": {"low": 40, "high": 130}, "reason": REASON})
    assert response.status_code == 200
    body = response.json
    assert body["pulse"] == {"low": 40, "high": 130, "extreme_low": 40, "extreme_high": 150}
    for parameter in ("resp_rate", "spo2", "systolic", "temperature"):
        assert body[parameter] == DEFAULTS_JSON[parameter]
    assert body["updated_by"] == str(admin.id) and body["reason"] == REASON
    assert body["updated_at"] is not None
    assert client.get(url(patient)).json == body


def test_a_second_change_keeps_the_first(client: FlaskClient, patient: str) -> None:
    client.put(url(patient), json={"pulse": {"low": 45}, "reason": "first"})
    response = client.put(url(patient), json={"spo2": {"low": 88}, "reason": "second"})
    assert response.status_code == 200
    assert response.json["pulse"]["low"] == 45
    assert response.json["spo2"]["low"] == 88
    assert response.json["reason"] == "second"


def test_only_changed_bounds_are_stored(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    patient = make_patient()
    client.put(url(patient.uuid), json={"temperature": {"high": 39.0}, "reason": REASON})
    with db.sessionmaker(app)() as session:
        row = session.scalars(select(AlarmLimits)).one()
        assert row.temperature_high == 39.0
        assert row.temperature_low is None and row.pulse_low is None


def test_limits_are_per_patient(client: FlaskClient, make_patient: Callable) -> None:
    changed, other = make_patient().uuid, make_patient("Alan Turing").uuid
    client.put(url(changed), json={"systolic": {"low": 80}, "reason": REASON})
    assert client.get(url(other)).json["systolic"] == DEFAULTS_JSON["systolic"]


# -- who may ----------------------------------------------------------------------------------


def test_anonymous_callers_are_refused(anonymous: FlaskClient, patient: str) -> None:
    assert anonymous.get(url(patient)).status_code == 401
    assert (
        anonymous.put(url(patient), json={"pulse": {"low": 45}, "reason": "x"}).status_code == 401
    )


@pytest.mark.parametrize(
    ("role", "get_status", "put_status"),
    [(Role.ADMIN, 200, 200), (Role.CLINICIAN, 200, 200), (Role.VIEWER, 200, 403)],
)
def test_people_read_and_only_clinicians_and_admins_change(
    client_as: Callable,
    make_account: Callable[..., Account],
    patient: str,
    role: Role,
    get_status: int,
    put_status: int,
) -> None:
    caller = client_as(make_account(role))
    assert caller.get(url(patient)).status_code == get_status
    changed = caller.put(url(patient), json={"pulse": {"low": 45}, "reason": REASON})
    assert changed.status_code == put_status
    assert caller.get(url(patient)).json["pulse"]["low"] == (45 if put_status == 200 else 50)


def api_token(app: Flask, account: Account, scopes: list[Scope]) -> str:
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, account.id)
        _row, token = services.create_api_token(session, signer(), user, "feed", scopes)
        return token


def test_integrations_read_with_the_scope_and_never_change(
    app: Flask, make_account: Callable[..., Account], patient: str
) -> None:
    machine = make_account(Role.INTEGRATION)
    reader = client_for(app, api_token(app, machine, [Scope.PATIENTS_READ]))
    every_scope = client_for(app, api_token(app, machine, list(Scope)))
    assert reader.get(url(patient)).status_code == 200
    body = {"pulse": {"low": 45}, "reason": REASON}
    assert reader.put(url(patient), json=body).status_code == 403
    assert every_scope.put(url(patient), json=body).status_code == 403


# -- the audit trail --------------------------------------------------------------------------


def test_each_read_and_change_writes_one_record_with_the_reason(
    app: Flask, client_as: Callable, clinician: Account, patient: str
) -> None:
    caller = client_as(clinician)
    assert caller.get(url(patient)).status_code == 200
    body = {"pulse": {"low": 40, "high": 130}, "reason": REASON}
    assert caller.put(url(patient), json=body).status_code == 200
    [read] = audit_events(app, AuditAction.ALARM_LIMITS_READ)
    [change] = audit_events(app, AuditAction.ALARM_LIMITS_CHANGED)
    for event in (read, change):
        assert event.user_id == clinician.id and event.role == "clinician"
        assert str(event.patient_uuid) == patient and event.outcome == "allowed"
    assert read.detail == {"method": "GET", "status": 200}
    assert change.detail == {
        "method": "PUT",
        "status": 200,
        "reason": REASON,
        "changes": {"pulse": {"low": 40.0, "high": 130.0}},
    }


def test_a_refused_change_is_recorded_without_changes(
    app: Flask, client: FlaskClient, patient: str
) -> None:
    assert client.put(url(patient), json={"pulse": {"low": 45}}).status_code == 422
    [event] = audit_events(app, AuditAction.ALARM_LIMITS_CHANGED)
    assert event.detail == {"method": "PUT", "status": 422}


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_path", "body"),
    [
        pytest.param(("bogus",), {"bogus": {"low": 1}, "reason": "x"}, id="unknown parameter"),
        pytest.param(
            ("pulse", "lowest"), {"pulse": {"lowest": 1}, "reason": "x"}, id="unknown bound"
        ),
        pytest.param(("pulse", "low"), {"pulse": {"low": 130}, "reason": "x"}, id="low above high"),
        pytest.param(
            ("pulse", "low"), {"pulse": {"low": 90, "high": 90}, "reason": "x"}, id="low = high"
        ),
        pytest.param(
            ("pulse", "extreme_low"),
            {"pulse": {"extreme_low": 55}, "reason": "x"},
            id="extreme low inside",
        ),
        pytest.param(
            ("systolic", "extreme_high"),
            {"systolic": {"extreme_high": 170}, "reason": "x"},
            id="extreme high inside",
        ),
        pytest.param(("spo2", "low"), {"spo2": {"low": 101}, "reason": "x"}, id="spo2 over 100"),
        pytest.param(("pulse", "high"), {"pulse": {"high": 301}, "reason": "x"}, id="pulse 301"),
        pytest.param(
            ("temperature", "low"), {"temperature": {"low": 20}, "reason": "x"}, id="cold"
        ),
        pytest.param(("resp_rate", "low"), {"resp_rate": {"low": -1}, "reason": "x"}, id="neg"),
        pytest.param(("pulse", "low"), {"pulse": {"low": True}, "reason": "x"}, id="boolean"),
        pytest.param(("pulse", "low"), {"pulse": {"low": "45"}, "reason": "x"}, id="string"),
        pytest.param(("pulse", "low"), {"pulse": {"low": None}, "reason": "x"}, id="null"),
        pytest.param(("pulse",), {"pulse": [45], "reason": "x"}, id="not an object"),
        pytest.param(("reason",), {"pulse": {"low": 45}}, id="no reason"),
        pytest.param(("reason",), {"pulse": {"low": 45}, "reason": ""}, id="empty reason"),
        pytest.param(("reason",), {"pulse": {"low": 45}, "reason": "  "}, id="blank reason"),
        pytest.param(("reason",), {"pulse": {"low": 45}, "reason": "x" * 501}, id="long reason"),
        pytest.param(("reason",), {"pulse": {"low": 45}, "reason": 7}, id="number reason"),
        pytest.param(("_schema",), {"reason": "nothing"}, id="no change"),
        pytest.param(("_schema",), {"pulse": {}, "reason": "nothing"}, id="empty change"),
    ],
)
@on_sqlite_only
def test_invalid_changes_are_refused_naming_the_field(
    client: FlaskClient, patient: str, field_path: tuple[str, ...], body: dict[str, Any]
) -> None:
    response = client.put(url(patient), json=body)
    assert response.status_code == 422, response.json
    assert set(response.json) == {"code", "status", "message", "errors"}
    errors = response.json["errors"]["json"]
    for key in field_path:
        errors = errors[key]
    assert errors
    assert client.get(url(patient)).json["updated_at"] is None


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@on_sqlite_only
def test_non_finite_numbers_are_refused(client: FlaskClient, patient: str, number: str) -> None:
    # Not JSON at all: every app refuses such a body before any view reads it.
    body = f'{{"pulse": {{"low": {number}}}, "reason": "x"}}'
    response = client.put(url(patient), data=body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert client.get(url(patient)).json["pulse"]["low"] == 50


def test_a_consistent_change_to_both_sides_at_once_is_taken(
    client: FlaskClient, patient: str
) -> None:
    # Each alone would contradict the defaults; together they hold.
    body = {"pulse": {"low": 130, "high": 160, "extreme_high": 200}, "reason": "x"}
    response = client.put(url(patient), json=body)
    assert response.status_code == 200
    assert response.json["pulse"] == {
        "low": 130,
        "high": 160,
        "extreme_low": 40,
        "extreme_high": 200,
    }


@on_sqlite_only
def test_a_huge_body_is_refused(client: FlaskClient, patient: str) -> None:
    body = {"pulse": {"low": 45}, "reason": "x" * (2 * 1024 * 1024)}
    assert client.put(url(patient), json=body).status_code == 413


def test_an_unknown_patient_is_404(client: FlaskClient) -> None:
    missing = uuid.uuid4()
    for response in (
        client.get(url(str(missing))),
        client.put(url(str(missing)), json={"pulse": {"low": 45}, "reason": "x"}),
    ):
        assert response.status_code == 404
        assert response.json["message"] == f"No patient with UUID {missing}."


def test_sql_in_a_reason_is_only_text(app: Flask, client: FlaskClient, patient: str) -> None:
    reason = "'); DROP TABLE alarm_limits; -- \" OR 1=1"
    response = client.put(url(patient), json={"pulse": {"low": 45}, "reason": reason})
    assert response.status_code == 200
    assert client.get(url(patient)).json["reason"] == reason
    [event] = audit_events(app, AuditAction.ALARM_LIMITS_CHANGED)
    assert event.detail["reason"] == reason
