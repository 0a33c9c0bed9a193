"""The audit trail: one record per event with who, what, when, from where and the outcome;
the admins' view and CSV export; and rows nobody can change."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError

from monitor_app.audit import recorder
from shared.audit import AuditAction, AuditEvent
from shared.auth.roles import Role
from shared.db import db
from tests.auth import Account
from tests.helpers import on_sqlite_only

API = "/api/v1"
AGENT = "pytest-audit/1.0"


def events(app: Flask, **filters: object) -> list[AuditEvent]:
    """The audit rows matching `filters` (column=value), oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.seq)
    for name, value in filters.items():
        query = query.where(getattr(AuditEvent, name) == value)
    with db.sessionmaker(app)() as session:
        return list(session.scalars(query))


def only_event(app: Flask, action: AuditAction) -> AuditEvent:
    found = events(app, action=action.value)
    assert len(found) == 1, [(e.action, e.resource) for e in found]
    return found[0]


def test_each_read_of_patient_data_writes_one_record(
    app: Flask, client: FlaskClient, admin: Account, make_patient: Callable
) -> None:
    patient = make_patient(samples=3)
    reads = {
        AuditAction.PATIENTS_LISTED: f"{API}/patients",
        AuditAction.PATIENT_READ: f"{API}/patients/{patient.uuid}",
        AuditAction.SAMPLES_READ: f"{API}/patient/{patient.uuid}/metrics",
        AuditAction.HISTORY_READ: f"{API}/patient/{patient.uuid}/history",
    }
    for path in reads.values():
        assert client.get(path, headers={"User-Agent": AGENT}).status_code == 200
    for action, path in reads.items():
        event = only_event(app, action)
        assert event.user_id == admin.id and event.email == admin.email
        assert event.role == "admin" and event.outcome == "allowed"
        assert event.resource == path and event.address == "127.0.0.1"
        assert event.user_agent == AGENT
        assert event.detail == {"method": "GET", "status": 200}
        assert event.at > datetime.now(UTC) - timedelta(minutes=1)
        if action is not AuditAction.PATIENTS_LISTED:
            assert str(event.patient_uuid) == patient.uuid


def test_notification_reads_and_changes_are_recorded(
    app: Flask, client: FlaskClient, admin: Account
) -> None:
    body = {"user_id": str(admin.id), "title": "Check bed 4", "text": "Pulse rising."}
    created = client.post(f"{API}/notifications", json=body)
    assert created.status_code == 201
    notification_id = created.json["id"]
    client.get(f"{API}/notifications")
    client.get(f"{API}/notifications/{notification_id}")
    client.post(f"{API}/notifications/{notification_id}/read")
    assert only_event(app, AuditAction.NOTIFICATION_CREATED).detail["status"] == 201
    assert only_event(app, AuditAction.NOTIFICATIONS_LISTED).outcome == "allowed"
    assert only_event(app, AuditAction.NOTIFICATION_READ).resource.endswith(notification_id)
    marked = only_event(app, AuditAction.NOTIFICATION_MARKED_READ)
    assert marked.detail == {"method": "POST", "status": 200}


def test_an_anonymous_request_is_recorded_as_denied(app: Flask, anonymous: FlaskClient) -> None:
    assert anonymous.get(f"{API}/patients").status_code == 401
    event = only_event(app, AuditAction.PATIENTS_LISTED)
    assert event.outcome == "denied" and event.user_id is None
    assert event.detail == {"method": "GET", "status": 401}


def test_a_forbidden_request_is_recorded_as_denied_with_who_asked(
    app: Flask, client_as: Callable, make_account: Callable
) -> None:
    viewer = make_account(Role.VIEWER)
    assert client_as(viewer).get(f"{API}/audit").status_code == 403
    event = only_event(app, AuditAction.AUDIT_READ)
    assert (event.outcome, event.user_id, event.role) == ("denied", viewer.id, "viewer")


def test_a_denied_request_to_a_route_without_an_action_is_recorded(
    app: Flask, anonymous: FlaskClient
) -> None:
    assert anonymous.get(f"{API}/auth/me").status_code == 401
    event = only_event(app, AuditAction.REQUEST)
    assert event.outcome == "denied" and event.resource == f"{API}/auth/me"


def test_public_and_unaudited_routes_write_nothing(app: Flask, client: FlaskClient) -> None:
    client.get("/health")
    client.get(f"{API}/auth/me")
    assert events(app) == []


def test_sign_in_success_failure_and_lockout(
    app: Flask, anonymous: FlaskClient, make_account: Callable
) -> None:
    nurse = make_account(Role.CLINICIAN)
    token_url = f"{API}/auth/token"
    assert anonymous.post(token_url, json={"username": nurse.email, "password": nurse.password})
    signed_in = only_event(app, AuditAction.SIGN_IN)
    assert (signed_in.user_id, signed_in.outcome) == (nurse.id, "allowed")
    assert signed_in.detail == {"via": "token"}
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        wrong = anonymous.post(token_url, json={"username": nurse.email, "password": "nope" * 4})
        assert wrong.status_code == 401
    failures = events(app, action=AuditAction.SIGN_IN_FAILED.value)
    assert len(failures) == app.config["LOGIN_MAX_FAILURES"] - 1
    assert {(e.user_id, e.outcome) for e in failures} == {(nurse.id, "denied")}
    assert failures[0].detail == {"reason": "wrong_password", "via": "token"}
    assert only_event(app, AuditAction.LOCKOUT).user_id == nurse.id


def test_a_failed_sign_in_for_an_unknown_name_keeps_no_name(
    app: Flask, anonymous: FlaskClient
) -> None:
    typed = "hunter2-typed-in-the-wrong-field"
    anonymous.post(f"{API}/auth/token", json={"username": typed, "password": "x" * 12})
    event = only_event(app, AuditAction.SIGN_IN_FAILED)
    assert event.user_id is None and event.email is None
    assert typed not in json.dumps(event.detail)


def test_token_creation_and_revocation_are_recorded(
    app: Flask, client: FlaskClient, admin: Account, make_account: Callable
) -> None:
    gateway = make_account(Role.INTEGRATION)
    created = client.post(
        f"{API}/auth/tokens", json={"email": gateway.email, "name": "bed gateway"}
    )
    assert created.status_code == 201
    token_id = created.json["id"]
    assert client.delete(f"{API}/auth/tokens/{token_id}").status_code == 204
    for action in (AuditAction.TOKEN_CREATED, AuditAction.TOKEN_REVOKED):
        event = only_event(app, action)
        assert event.user_id == admin.id
        assert event.detail["token_id"] == token_id
        assert event.detail["owner_id"] == str(gateway.id)
        assert created.json["token"] not in json.dumps(event.detail)


def test_the_command_line_records_its_changes(app: Flask) -> None:
    runner = app.test_cli_runner()
    email = "night.nurse@vigil.test"
    result = runner.invoke(
        args=["users", "create", email, "--role", "clinician", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["users", "disable", email]).exit_code == 0
    created = only_event(app, AuditAction.USER_CREATED)
    assert created.detail["via"] == "cli" and created.detail["role"] == "clinician"
    assert created.detail["os_user"]
    disabled = only_event(app, AuditAction.USER_DISABLED)
    assert disabled.resource == created.resource


def test_admins_list_the_trail_with_filters_and_pages(
    app: Flask, client: FlaskClient, client_as: Callable, make_account: Callable, make_patient
) -> None:
    nurse = make_account(Role.CLINICIAN)
    first, second = make_patient("Ann"), make_patient("Bea")
    nurse_client = client_as(nurse)
    for patient in (first, second, first):
        nurse_client.get(f"{API}/patients/{patient.uuid}")
    by_patient = client.get(f"{API}/audit", query_string={"patient_uuid": first.uuid})
    assert by_patient.status_code == 200
    assert [e["patient_uuid"] for e in by_patient.json] == [first.uuid, first.uuid]
    assert {e["email"] for e in by_patient.json} == {nurse.email}
    by_user = client.get(f"{API}/audit", query_string={"user_id": str(nurse.id), "page_size": 2})
    assert len(by_user.json) == 2
    assert json.loads(by_user.headers["X-Pagination"])["total"] == 3
    assert by_user.json[0]["seq"] > by_user.json[1]["seq"]  # newest first
    by_action = client.get(f"{API}/audit", query_string={"action": "patient.read"})
    assert len(by_action.json) == 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get(f"{API}/audit", query_string={"since": future}).json == []


@pytest.mark.parametrize(
    "query",
    [
        {"action": "patient.delete"},
        {"outcome": "maybe"},
        {"user_id": "not-a-uuid"},
        {"since": "2026-01-02T00:00:00+00:00", "until": "2026-01-01T00:00:00+00:00"},
        {"since": "yesterday"},
        {"page_size": 100000},
    ],
)
@on_sqlite_only
def test_bad_audit_filters_are_refused(client: FlaskClient, query: dict) -> None:
    answer = client.get(f"{API}/audit", query_string=query)
    assert answer.status_code == 422
    assert set(answer.json) == {"code", "status", "message", "errors"}


def test_the_export_is_csv_with_formulas_defused(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    patient = make_patient()
    client.get(f"{API}/patients/{patient.uuid}", headers={"User-Agent": "=HYPERLINK(1)"})
    answer = client.get(f"{API}/audit/export", query_string={"action": "patient.read"})
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert len(rows) == 1
    assert rows[0]["patient_uuid"] == patient.uuid
    assert rows[0]["user_agent"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.VIEWER, Role.INTEGRATION])
def test_only_admins_read_or_export_the_trail(
    client_as: Callable, make_account: Callable, role: Role
) -> None:
    caller = client_as(make_account(role))
    assert caller.get(f"{API}/audit").status_code == 403
    assert caller.get(f"{API}/audit/export").status_code == 403


def test_the_application_cannot_change_or_delete_audit_rows(
    app: Flask, client: FlaskClient
) -> None:
    client.get(f"{API}/patients")
    assert len(events(app)) == 1
    engine = db.engine(app)
    statements = [
        update(AuditEvent).values(email="someone@else"),
        delete(AuditEvent),
    ]
    if engine.dialect.name == "postgresql":
        statements.append(text("TRUNCATE audit_events"))
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(statement)
    assert [e.email for e in events(app)] != ["someone@else"]
    assert len(events(app)) == 1


def test_a_request_holds_one_pooled_connection_when_its_read_is_recorded(
    app: Flask, client: FlaskClient, make_patient: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Holding the view's connection while taking the audit row's, as many threads as the pool
    # has connections would each wait for a second one that none of them gives back.
    patient = make_patient(samples=2)
    held: list[int] = []

    def counting(connection: object, rows: list) -> None:
        held.append(db.engine(app).pool.checkedout())
        real_insert(connection, rows)

    real_insert = recorder.insert_events
    monkeypatch.setattr(recorder, "insert_events", counting)
    for url in (f"{API}/patients/{patient.uuid}", f"{API}/patient/{patient.uuid}/metrics"):
        assert client.get(url).status_code == 200, url
    assert held == [1, 1]


def test_a_read_that_cannot_be_recorded_returns_no_data(
    app: Flask, client: FlaskClient, make_patient: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = make_patient("Secret Name")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit_events", {}, Exception("disk full"))

    monkeypatch.setattr(recorder, "insert_events", refuse)
    answer = client.get(f"{API}/patients/{patient.uuid}")
    assert answer.status_code == 500
    assert "Secret Name" not in answer.get_data(as_text=True)
    assert answer.json["code"] == 500


def test_a_read_is_withheld_when_the_database_refuses_its_record(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    patient = make_patient("Secret Name", samples=2)
    assert client.get(f"{API}/patient/{patient.uuid}/metrics").status_code == 200
    # The records' table is gone (renamed away): the insert itself fails, in the database.
    with db.engine(app).begin() as connection:
        connection.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))

    for url in (f"{API}/patients/{patient.uuid}", f"{API}/patient/{patient.uuid}/metrics"):
        answer = client.get(url)
        assert answer.status_code == 500, url
        assert answer.json["code"] == 500
        body = answer.get_data(as_text=True)
        assert "Secret Name" not in body and "pulse" not in body


def test_demo_accounts_are_made_once_with_private_credentials(app: Flask, tmp_path) -> None:
    credentials = tmp_path / "demo-credentials.txt"
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "demo", str(credentials)]).exit_code == 0
    assert credentials.stat().st_mode & 0o777 == 0o600
    lines = [line.split(" ") for line in credentials.read_text().splitlines()]
    assert [(role, email) for role, email, _password in lines] == [
        ("admin", "admin@demo.vigil"),
        ("clinician", "nina@demo.vigil"),
        ("clinician", "omar@demo.vigil"),
    ]
    client = app.test_client()
    for _role, email, password in lines:
        signed_in = client.post(f"{API}/auth/token", json={"username": email, "password": password})
        assert signed_in.status_code == 200
    nina = client.post(f"{API}/auth/token", json={"username": lines[1][1], "password": lines[1][2]})
    me = client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {nina.json['access_token']}"}
    )
    assert [ward["name"] for ward in me.json["wards"]] == ["ICU"]
    # A later start keeps them as they are.
    before = credentials.read_text()
    assert runner.invoke(args=["users", "demo", str(credentials)]).exit_code == 0
    assert credentials.read_text() == before
    assert len(events(app, action=AuditAction.USER_CREATED.value)) == 3
    # Turned off, and the file gone: they stay off and are not written again.
    assert runner.invoke(args=["users", "disable", "admin@demo.vigil"]).exit_code == 0
    credentials.unlink()
    assert runner.invoke(args=["users", "demo", str(credentials)]).exit_code == 0
    emails = [line.split(" ")[1] for line in credentials.read_text().splitlines()]
    assert emails == ["nina@demo.vigil", "omar@demo.vigil"]
    old_password = lines[1][2]
    refused = client.post(
        f"{API}/auth/token", json={"username": emails[0], "password": old_password}
    )
    assert refused.status_code == 401
