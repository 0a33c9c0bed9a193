"""/health tells anyone the status, and only admins what each component is doing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

import data_app
import monitor_app
import patient_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.lifecycle import stop_background
from tests.auth import client_for, create_account, token_for

STATUS_ONLY = {"status"}


@dataclass(frozen=True)
class Served:
    """An app, a token per kind of caller, and the keys only its admins are told."""

    app: Flask
    tokens: dict[str, str | None]
    details: set[str]


@pytest.fixture(params=["monitor_app", "data_app", "patient_app"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, redis_settings: dict[str, str]
) -> Iterator[Served]:
    settings = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "RATELIMIT_ENABLED": False,
        **redis_settings,
    }
    callers = {"anonymous": None, "forged": "not-a-token"}
    if request.param == "monitor_app":
        app = monitor_app.create_app(settings)
        migrate(db.engine(app))
        for role in (Role.ADMIN, Role.CLINICIAN):
            callers[role.value] = create_account(db.sessionmaker(app), role).token
        details = {"database", "redis", "live"}
    else:
        # These check tokens by their signature (and Redis's revocations) alone.
        factory = data_app if request.param == "data_app" else patient_app
        app = factory.create_app(settings)
        callers |= {role.value: token_for(role) for role in (Role.ADMIN, Role.CLINICIAN)}
        details = {"consumer"} if request.param == "data_app" else {"kafka", "monitoring"}
    if request.param == "patient_app":
        # Its /health waits a second for the absent broker: the other callers are the
        # other apps' business.
        callers = {"anonymous": None, "admin": callers["admin"]}
    yield Served(app, callers, details)
    stop_background(app)
    if request.param != "patient_app":
        db.engine(app).dispose()


def test_only_admins_are_told_the_details(served: Served) -> None:
    answers = {
        caller: client_for(served.app, token).get("/health")
        for caller, token in served.tokens.items()
    }

    admin = answers.pop("admin")
    assert served.details <= set(admin.json), admin.json
    for caller, answer in answers.items():
        # The same status code and status as the admin's: a probe loses nothing.
        assert (answer.status_code, answer.json) == (
            admin.status_code,
            {"status": admin.json["status"]},
        ), caller
