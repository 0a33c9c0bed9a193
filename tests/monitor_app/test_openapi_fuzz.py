"""The monitor API against its own OpenAPI document, with requests schemathesis generates.

Every documented operation is called in-process (WSGI) with valid and invalid input, signed in
as an admin (who may call every route, so the requests reach the views); no answer may be a
server error, and each must have a status code the operation lists, with the documented
content type, headers and body. An operation that answers an admin must refuse the same
request without credentials, or with invalid ones (schemathesis's ignored_auth check).

The WebSocket `/api/v1/ws` is left out: it is not in the document, because OpenAPI describes
request/response exchanges, not a message stream (test_live_hub.py covers it).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.identity import ApiToken, User
from shared.models import Alarm, Notification, NotificationRead, Patient, PatientMetric
from shared.news2 import score_news2
from tests.auth import TEST_TOKEN_LIFETIME, bearer, signer
from tests.openapi_fuzz import CHECKS, fuzz_settings

# Fixed ids, so the derandomized requests are the same on every run.
PATIENTS = {
    uuid.UUID("00000000-0000-4000-8000-000000000100"): ("Ada Lovelace", 40),
    uuid.UUID("00000000-0000-4000-8000-000000000101"): ("Alan Turing", 3),
    uuid.UUID("00000000-0000-4000-8000-000000000102"): ("Grace Hopper", 0),
}
NOTIFICATIONS = [uuid.UUID(f"00000000-0000-4000-8000-00000000020{i}") for i in range(4)]
# One alarm in each state: active, acknowledged, resolved.
ALARMS = [uuid.UUID(f"00000000-0000-4000-8000-00000000030{i}") for i in range(3)]
# The clinician the seeded notifications are addressed to (a recipient must exist).
USER = uuid.UUID("00000000-0000-4000-8000-000000000301")
# The admin every seeded app holds, and a token for it: one for the whole module.
ADMIN = uuid.UUID("00000000-0000-4000-8000-000000000401")
ADMIN_TOKEN, _ = signer().access_token(ADMIN, Role.ADMIN.value, TEST_TOKEN_LIFETIME)
# An API token of the admin's on record, for the token routes' found paths.
API_TOKEN = uuid.UUID("00000000-0000-4000-8000-000000000501")
NEW_NOTIFICATION = {"user_id": str(USER), "title": "Rounds", "text": "At ten."}

# Values the generator seldom produces on its own: ids of seeded rows, so requests reach the
# views' found paths and not only their 404s, and the edges of what UTC and 64-bit integers
# can hold.
EDGE_INSTANTS = ["0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00Z", "9999-12-31T23:59:59-01:00"]
EDGE_INTEGERS = [2**63 - 1, 2**63, 2**64]
INTERESTING: dict[str, list[Any]] = {
    "patient_uuid": [str(u) for u in PATIENTS],
    "notification_id": [str(u) for u in NOTIFICATIONS],
    "alarm_id": [str(u) for u in ALARMS],
    "user_id": [str(USER)],
    "token_id": [str(API_TOKEN)],
    **dict.fromkeys(("from", "to", "created_from", "created_to"), EDGE_INSTANTS),
    **dict.fromkeys(("page", "snapshot"), EDGE_INTEGERS),
}

# Every app's checks, and: an operation that answers an admin refuses anyone unsigned.
MONITOR_CHECKS = [*CHECKS, ignored_auth]


def _document() -> dict[str, Any]:
    """The API's OpenAPI document, without its `default` responses.

    flask-smorest adds `default` (the error body) to every operation, which would make any
    status code a documented one; without it, each code an operation answers with must be
    listed.
    """
    # The document is for signed-in callers: the admin is looked up in a database.
    with tempfile.TemporaryDirectory(prefix="vigil-openapi-") as directory:
        app = create_app({"DATABASE_URL": f"sqlite:///{directory}/vigil.db", "TESTING": True})
        try:
            migrate(db.engine(app))
            _seed_admin(app)
            response = app.test_client().get("/openapi.json", headers=bearer(ADMIN_TOKEN))
        finally:
            db.engine(app).dispose()
    assert response.status_code == 200, response.status_code
    document = response.json
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return document


def _seed_admin(app: Flask) -> None:
    with db.sessionmaker(app).begin() as session:
        session.add(
            User(id=ADMIN, email="admin@vigil.test", role=Role.ADMIN.value, failed_logins=0)
        )
        session.flush()
        session.add(
            ApiToken(id=API_TOKEN, user_id=ADMIN, name="gateway", token_hash="0" * 64, scopes=[])
        )


schema = schemathesis.openapi.from_dict(_document())


@schema.auth()
class AdminToken:
    """Every generated request carries the admin's token (ADMIN is in every seeded app)."""

    def get(self, _case: schemathesis.Case, _context: schemathesis.AuthContext) -> str:
        return ADMIN_TOKEN

    def set(self, case: schemathesis.Case, data: str, _context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), **bearer(data)}


def _with_interesting_values(values: Any) -> Any:
    """A strategy keeping each generated value, or swapping in an interesting one."""
    if not isinstance(values, dict) or not values:
        return st.just(values)
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), st.sampled_from(INTERESTING[name]))
            if name in INTERESTING
            else st.just(value)
            for name, value in values.items()
        }
    )


@schema.hook
def flatmap_path_parameters(_context: schemathesis.HookContext, path_parameters: Any) -> Any:
    return _with_interesting_values(path_parameters)


@schema.hook
def flatmap_query(_context: schemathesis.HookContext, query: Any) -> Any:
    return _with_interesting_values(query)


@schema.hook
def flatmap_body(_context: schemathesis.HookContext, body: Any) -> Any:
    return _with_interesting_values(body)


@pytest.fixture
def make_app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build the monitor API over a migrated SQLite file holding a few patients and
    notifications; rate limiting is off unless `settings` turn it on. Once per test."""
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = create_app(
            {
                "DATABASE_URL": sqlite_url,
                "TESTING": True,
                **redis_settings,
                "RATELIMIT_ENABLED": False,
                **settings,
            }
        )
        apps.append(app)
        migrate(db.engine(app))
        _seed(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


@pytest.fixture
def seeded_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


def _seed(app: Flask) -> None:
    _seed_admin(app)
    # Samples up to now, so that the default windows of metrics and history find some.
    now = datetime.now(UTC).replace(microsecond=0)
    with db.sessionmaker(app).begin() as session:
        session.add(
            User(id=USER, email="user@vigil.test", role=Role.CLINICIAN.value, failed_logins=0)
        )
        patients = []
        for patient_uuid, (name, samples) in PATIENTS.items():
            patient = Patient(uuid=patient_uuid, name=name)
            session.add(patient)
            session.flush()
            patients.append(patient)
            for i in range(samples):
                vitals = {
                    "pulse": 60 + i,
                    "resp_rate": 14 + i % 10,
                    "systolic": 120,
                    "spo2": 97 - i % 6,
                    "temperature": 36.6,
                }
                news2 = score_news2(**vitals)
                session.add(
                    PatientMetric(
                        patient_id=patient.id,
                        timestamp=now - timedelta(minutes=i),
                        diastolic=80,
                        news2_score=news2.score,
                        news2_band=news2.band,
                        **vitals,
                    )
                )
        # At most one open alarm a condition: the acknowledged one is of another.
        states = zip(
            ALARMS,
            ("active", "acknowledged", "resolved"),
            ("spo2_low", "pulse_high", "spo2_low"),
            strict=True,
        )
        for alarm_id, state, condition in states:
            session.add(
                Alarm(
                    id=alarm_id,
                    patient_id=patients[0].id,
                    kind="physiological",
                    condition=condition,
                    priority="high",
                    value=80,
                    limit_value=85,
                    started_at=now - timedelta(minutes=5),
                    state=state,
                    acknowledged_by=ADMIN if state != "active" else None,
                    acknowledged_at=now if state != "active" else None,
                    ended_at=now if state == "resolved" else None,
                    escalation_level=0,
                )
            )
        # One notification per analysis status, one of them read (by the admin, the caller)
        # and one about no patient.
        for i, (notification_id, status) in enumerate(
            zip(NOTIFICATIONS, ("completed", "failed", "pending", "processing"), strict=True)
        ):
            completed, failed = status == "completed", status == "failed"
            notification = Notification(
                id=notification_id,
                user_id=USER,
                patient_id=patients[i].id if i < len(patients) else None,
                title=f"Alert {i}",
                text="SpO2 92% on room air.",
                processing_status=status,
                attempts=1,
                category="warning" if completed else None,
                confidence=0.9 if completed else None,
                keywords=["spo2"] if completed else None,
                analysed_at=now if completed else None,
                failure_reason="The AI API timed out." if failed else None,
            )
            session.add(notification)
            if completed:
                session.flush()
                session.add(
                    NotificationRead(notification_seq=notification.seq, user_id=ADMIN, read_at=now)
                )


# 50 examples an operation: about a minute for the whole module on two busy cores (100 took
# nearly three, 40 s of them signing in, where each example verifies an Argon2 hash).
@schema.parametrize()
@fuzz_settings(50)
def test_operation_answers_as_documented(case: schemathesis.Case, seeded_app: Flask) -> None:
    # The schema's app, not only the call's: ignored_auth sends its probes (without
    # credentials, with invalid ones) to the schema's app.
    case.operation.schema.app = seeded_app
    case.call_and_validate(app=seeded_app, checks=MONITOR_CHECKS)


# Load-balancer probes are exempt from the rate limit (monitor_app.register_api).
UNLIMITED = {"GET /health"}


def test_rate_limited_answers_are_documented(make_app: Callable[..., Flask]) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATE_LIMIT="1 per minute")
    operations = [result.ok() for result in schema.get_all_operations()]
    limited = [operation for operation in operations if operation.label not in UNLIMITED]
    assert len(limited) == len(operations) - len(UNLIMITED) > 0

    for operation in limited:
        case = operation.Case(
            path_parameters={
                param.name: INTERESTING[param.name][0] for param in operation.path_parameters
            },
            **({"body": NEW_NOTIFICATION} if len(operation.body) else {}),
        )
        # One request a minute per route: whichever method of the route came first, the
        # second call is over the limit.
        case.call(app=app, headers=bearer(ADMIN_TOKEN))
        response = case.call(app=app, headers=bearer(ADMIN_TOKEN))

        assert response.status_code == 429, (operation.label, response.status_code)
        case.validate_response(
            response,
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        )


def test_a_csv_export_answers_as_documented(seeded_app: Flask) -> None:
    # Generated windows seldom fall within the export's 31 days: one that does, by hand, so
    # the CSV answer itself (status, content type, headers) is held to the document.
    operation = schema["/api/v1/patient/{patient_uuid}/metrics.csv"]["GET"]
    ada = next(iter(PATIENTS))
    now = datetime.now(UTC)
    case = operation.Case(
        path_parameters={"patient_uuid": str(ada)},
        query={"from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()},
    )
    case.operation.schema.app = seeded_app

    response = case.call_and_validate(
        app=seeded_app, headers=bearer(ADMIN_TOKEN), checks=MONITOR_CHECKS
    )

    assert response.status_code == 200
    assert len(response.text.splitlines()) == 1 + PATIENTS[ada][1]
