"""A revoked token or a disabled account stops working in every app at once: monitor_app
shares them on Redis, and patient_app refuses them (or answers 503 if it cannot tell)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from monitor_app import create_app as create_monitor_app
from monitor_app.auth import services
from monitor_app.auth.revocation_sync import RevocationSync
from patient_app import create_app as create_patient_app
from shared.auth.revocation import Revocations
from shared.auth.roles import Role, Scope
from shared.db import db, migrate
from shared.lifecycle import background_service, stop_background
from tests.auth import bearer, create_account

SCENARIO = "/api/v1/patients/{uuid}/scenario"


@pytest.fixture
def monitor(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    app = create_monitor_app(
        {"DATABASE_URL": sqlite_url, "TESTING": True, "RATELIMIT_ENABLED": False, **redis_settings}
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


def patient_app(redis_settings: dict[str, str]) -> Flask:
    return create_patient_app(
        {
            "TESTING": True,
            "PATIENT_NAME": "Ivan Petrov",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            **redis_settings,
        }
    )


@pytest.fixture
def simulator(redis_settings: dict[str, str]) -> Iterator[Flask]:
    app = patient_app(redis_settings)
    yield app
    stop_background(app)


def switch(simulator: Flask, token: str) -> int:
    """The status of a scenario switch made with `token`."""
    patient_uuid = next(iter(background_service(simulator, "monitoring").patients))
    url = SCENARIO.format(uuid=patient_uuid)
    answer = simulator.test_client().put(url, json={"scenario": "sepsis"}, headers=bearer(token))
    return answer.status_code


def integration_token(monitor: Flask) -> tuple[uuid.UUID, str]:
    gateway = create_account(db.sessionmaker(monitor), Role.INTEGRATION)
    with db.sessionmaker(monitor).begin() as session:
        user = session.get(services.User, gateway.id)
        row, token = services.create_api_token(
            session, monitor.extensions["vigil.token_signer"], user, "gw", [Scope.SCENARIO_WRITE]
        )
        return row.id, token


def test_a_token_revoked_in_the_monitor_is_refused_by_the_simulator(
    monitor: Flask, simulator: Flask
) -> None:
    token_id, token = integration_token(monitor)
    read_token = create_account(db.sessionmaker(monitor), Role.ADMIN).token
    assert switch(simulator, read_token) == 200
    assert simulator.test_client().get("/api/v1/patients", headers=bearer(token)).status_code == 403
    runner = monitor.test_cli_runner()
    assert runner.invoke(args=["tokens", "revoke", str(token_id)]).exit_code == 0
    answer = simulator.test_client().get("/api/v1/patients", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json["message"] == "The token was revoked, or its account is disabled."


def test_a_disabled_accounts_tokens_are_refused_by_the_simulator(
    monitor: Flask, simulator: Flask
) -> None:
    admin = create_account(db.sessionmaker(monitor), Role.ADMIN)
    assert switch(simulator, admin.token) == 200
    runner = monitor.test_cli_runner()
    assert runner.invoke(args=["users", "disable", admin.email]).exit_code == 0
    assert switch(simulator, admin.token) == 401
    assert runner.invoke(args=["users", "enable", admin.email]).exit_code == 0
    assert switch(simulator, admin.token) == 200


def test_the_sync_rewrites_the_shared_sets_from_the_database(
    monitor: Flask, redis_settings: dict[str, str]
) -> None:
    shared = Revocations(redis_settings["REDIS_EVENTS_URL"], redis_settings["REDIS_NAMESPACE"])
    stale = uuid.uuid4()
    shared.revoke_token(stale)
    token_id, _token = integration_token(monitor)
    nurse = create_account(db.sessionmaker(monitor), Role.CLINICIAN)
    with db.sessionmaker(monitor).begin() as session:
        services.revoke_api_token(session, token_id)
        services.set_active(session, nurse.email, False)
    RevocationSync(monitor)._work()
    assert shared.holds(stale, uuid.uuid4())  # no longer revoked: the database says so
    assert not shared.holds(token_id, uuid.uuid4())
    assert not shared.holds(uuid.uuid4(), nurse.id)


def test_without_redis_the_simulator_refuses_tokens_but_stays_healthy(
    monitor: Flask, redis_settings: dict[str, str], unreachable_redis: dict[str, str]
) -> None:
    unreachable = {**redis_settings, **unreachable_redis}
    app = patient_app(unreachable)
    try:
        admin = create_account(db.sessionmaker(monitor), Role.ADMIN)
        answer = app.test_client().get("/api/v1/patients", headers=bearer(admin.token))
        assert answer.status_code == 503
        assert set(answer.json) == {"code", "status", "message", "errors"}
        assert app.test_client().get("/health").status_code in (200, 503)
        assert app.test_client().get("/api/v1/patients").status_code == 401
    finally:
        stop_background(app)
