"""Who may call each route of the monitor API: one table, checked with real requests.

A route the table does not name fails the test, so a new route comes with its policy. Every
route is called as each kind of caller: anonymous callers get 401 (pages may send them to log
in), signed-in callers the table leaves out get 403, the others anything but 401 and 403.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import websocket
from flask import Flask
from werkzeug.serving import make_server

from devserver.redis_credentials import RedisAccess
from monitor_app import create_app
from monitor_app.auth import services
from shared.auth.roles import Role, Scope
from shared.db import db, migrate
from shared.identity import User
from tests.access import (
    ADMIN,
    ANONYMOUS,
    EVERYONE,
    NO_COVERAGE_PROBLEMS,
    PEOPLE,
    Allowed,
    allowed,
    coverage_problems,
    integration,
    mismatches,
)
from tests.auth import create_account
from tests.helpers import serving

PATIENTS_READ = allowed(PEOPLE, integration(Scope.PATIENTS_READ))
NOTIFICATIONS_READ = allowed(PEOPLE, integration(Scope.NOTIFICATIONS_READ))
ADMINS = allowed(ADMIN)
FHIR_UNKNOWN_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The policy. Integrations get only what their token's scopes name; a viewer only reads.
POLICY: dict[tuple[str, str], Allowed] = {
    ("health.Health", "GET"): allowed(EVERYONE),
    ("auth.AccessToken", "POST"): allowed(EVERYONE),
    ("swagger_ui.static", "GET"): allowed(EVERYONE),
    ("dashboard.static", "GET"): allowed(EVERYONE),
    ("dashboard.index", "GET"): allowed(PEOPLE, page=True),
    ("api-docs.openapi_swagger_ui", "GET"): allowed(PEOPLE, page=True),
    ("api-docs.openapi_json", "GET"): allowed(PEOPLE),
    ("prometheus_metrics", "GET"): allowed(ADMIN, integration(Scope.METRICS_READ)),
    ("patients.Patients", "GET"): PATIENTS_READ,
    ("patients.PatientById", "GET"): PATIENTS_READ,
    ("metrics.PatientMetrics", "GET"): PATIENTS_READ,
    ("history.PatientHistory", "GET"): PATIENTS_READ,
    ("alarms.PatientAlarmLimits", "GET"): PATIENTS_READ,
    # Changing what alarms is a clinician's decision: no integration may.
    ("alarms.PatientAlarmLimits", "PUT"): allowed(ADMIN, "clinician"),
    ("alarms.PatientAlarms", "GET"): PATIENTS_READ,
    ("alarm-responses.Alarms", "GET"): PATIENTS_READ,
    # A person answers for an alarm: never an integration, nor a viewer.
    ("alarm-responses.AcknowledgeAlarm", "POST"): allowed(ADMIN, "clinician"),
    ("alarm-responses.SilenceAlarm", "POST"): allowed(ADMIN, "clinician"),
    ("live.stream", "GET"): PATIENTS_READ,
    ("notifications.Notifications", "GET"): NOTIFICATIONS_READ,
    ("notifications.NotificationById", "GET"): NOTIFICATIONS_READ,
    ("notifications.NotificationStatus", "GET"): NOTIFICATIONS_READ,
    ("notifications.Notifications", "POST"): allowed(
        ADMIN, "clinician", integration(Scope.NOTIFICATIONS_WRITE)
    ),
    ("notifications.NotificationRead", "POST"): allowed(ADMIN, "clinician"),
    ("auth.WhoAmI", "GET"): allowed(EVERYONE - {ANONYMOUS}),
    ("auth.ApiTokens", "GET"): ADMINS,
    ("auth.ApiTokens", "POST"): ADMINS,
    ("auth.ApiTokenById", "DELETE"): ADMINS,
    ("audit.AuditEvents", "GET"): ADMINS,
    ("audit.AuditExport", "GET"): ADMINS,
    # Signing in and out, with a password or the hospital's provider: anyone may try.
    ("login.page", "GET"): allowed(EVERYONE),
    ("login.sign_in", "POST"): allowed(EVERYONE),
    ("login.logout", "POST"): allowed(EVERYONE),
    ("sso.start", "GET"): allowed(EVERYONE),
    ("sso.callback", "GET"): allowed(EVERYONE),
    # FHIR: what it can do is public, as FHIR servers' usually is; patient data is not, and
    # needs what the JSON API's reads need (metrics:read is the Prometheus scrape's, not this).
    ("fhir.Metadata", "GET"): allowed(EVERYONE),
    ("fhir.Patients", "GET"): PATIENTS_READ,
    ("fhir.PatientById", "GET"): PATIENTS_READ,
    ("fhir.Observations", "GET"): PATIENTS_READ,
    ("fhir.ObservationById", "GET"): PATIENTS_READ,
    # Any other /fhir path or method: an OperationOutcome saying so, whoever asks.
    **{("fhir.Unknown", method): allowed(EVERYONE) for method in FHIR_UNKNOWN_METHODS},
    ("metrics.PatientMetricsCsv", "GET"): PATIENTS_READ,
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_users: RedisAccess) -> Iterator[Flask]:
    """One monitor API for the module: the requests change nothing the policy depends on."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('policy') / 'vigil.db'}",
            "TESTING": True,
            **redis_users.settings(),
            "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}",
            "RATELIMIT_ENABLED": False,
        }
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


@pytest.fixture(scope="module")
def tokens(app: Flask) -> dict[str, str | None]:
    """A token per caller: people's access tokens, and an integration's API tokens."""
    sessions = db.sessionmaker(app)
    found: dict[str, str | None] = {ANONYMOUS: None}
    for role in (Role.ADMIN, Role.CLINICIAN, Role.VIEWER):
        found[role.value] = create_account(sessions, role).token
    machine = create_account(sessions, Role.INTEGRATION)
    signer = app.extensions["vigil.token_signer"]
    with sessions.begin() as session:
        user = session.get(User, machine.id)
        for scope in (None, *Scope):
            scopes = () if scope is None else (scope,)
            _row, token = services.create_api_token(
                session, signer, user, integration(scope), scopes
            )
            found[integration(scope)] = token
    assert set(found) == EVERYONE
    return found


def test_every_route_declares_its_access_and_is_in_the_table(app: Flask) -> None:
    assert coverage_problems(app, POLICY) == NO_COVERAGE_PROBLEMS


@pytest.fixture(scope="module")
def served(app: Flask) -> Iterator[str]:
    """The app behind a real threaded server, for the WebSocket's handshake."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving(server, "policy-server"):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.mark.parametrize("route", sorted(POLICY), ids=lambda route: " ".join(route))
def test_route_answers_only_whom_the_policy_allows(
    app: Flask, tokens: dict[str, str | None], served: str, route: tuple[str, str]
) -> None:
    endpoint, method = route
    assert mismatches(app, tokens, endpoint, method, POLICY[route], served) == []


# -- the WebSocket, beyond its handshake ---------------------------------------------------------


@pytest.mark.parametrize("caller", [ADMIN, "viewer", integration(Scope.PATIENTS_READ)])
def test_the_live_stream_says_hello_to_whom_may_read_patients(
    served: str, tokens: dict[str, str | None], caller: str
) -> None:
    ws = websocket.create_connection(
        f"{served.replace('http', 'ws', 1)}/api/v1/ws",
        timeout=10,
        header=[f"Authorization: Bearer {tokens[caller]}"],
    )
    try:
        assert json.loads(ws.recv())["type"] == "hello"
    finally:
        ws.close()


@pytest.mark.parametrize(
    "header",
    [
        # alg "none", no signature
        "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "Authorization: Basic YWRtaW46YWRtaW4=",
        "Cookie: vigil_session=forged",
    ],
    ids=["unsigned-token", "basic-auth", "forged-cookie"],
)
def test_the_live_stream_refuses_forged_credentials(served: str, header: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"{served.replace('http', 'ws', 1)}/api/v1/ws", timeout=10, header=[header]
        )
    assert refused.value.status_code == 401
