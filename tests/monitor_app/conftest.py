"""Fixtures for the monitor API: an app per database backend and a patient factory."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.globals import request_ctx
from flask.testing import FlaskClient

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.models import Patient
from shared.news2 import score_news2
from tests.auth import Account, client_for, create_account
from tests.helpers import insert_samples

T0 = datetime(2025, 1, 31, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class MadePatient:
    """What a test needs to know about an inserted patient: plain values, no ORM objects."""

    uuid: str
    name: str
    sample_times: tuple[datetime, ...]


@pytest.fixture
def app(database_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """The monitor API over a freshly migrated SQLite file or PostgreSQL database.

    Its Redis namespace is the test's own; rate limiting is off except where a test turns
    it on.
    """
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": False,
        }
    )
    # The server migrates from a background service; tests do it up front instead.
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


@pytest.fixture
def own_contexts(app: Flask) -> Iterator[None]:
    """Give each test-client request a context (and `g`) of its own, as a server does.

    pytest-flask pushes one request context for the whole test, and a request made inside
    it reuses its app context: `g` (the CSRF token cached there, the caller) would carry
    over from one request to the next. Its context is set aside for the test.
    """
    context = request_ctx._get_current_object()
    context.pop()
    try:
        yield
    finally:
        context.push()


@pytest.fixture
def make_account(app: Flask) -> Callable[..., Account]:
    """Add an account to the app's database: `make_account(Role.CLINICIAN, wards=["ICU"])`."""

    def make(role: Role = Role.ADMIN, **options) -> Account:
        return create_account(db.sessionmaker(app), role, **options)

    return make


@pytest.fixture
def admin(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.ADMIN)


@pytest.fixture
def client_as(app: Flask) -> Callable[[Account | None], FlaskClient]:
    """A test client that sends `account`'s token with every request (None: anonymous)."""

    def make(account: Account | None) -> FlaskClient:
        return client_for(app, None if account is None else account.token)

    return make


@pytest.fixture
def client(client_as: Callable[[Account | None], FlaskClient], admin: Account) -> FlaskClient:
    """The test client, signed in as an admin (who may see everything)."""
    return client_as(admin)


@pytest.fixture
def anonymous(client_as: Callable[[Account | None], FlaskClient]) -> FlaskClient:
    return client_as(None)


@pytest.fixture
def make_patient(app: Flask) -> Callable[..., MadePatient]:
    """Insert a patient with `samples` vitals samples, one a minute from 2025-01-31 08:00Z.

    Sample `i` (0 is the oldest) has pulse 60+i and blood pressure (120+i)/80.
    """

    def make(name: str = "Ada Lovelace", samples: int = 0) -> MadePatient:
        patient_uuid = uuid.uuid4()
        times = tuple(T0 + i * STEP for i in range(samples))
        with db.sessionmaker(app).begin() as session:
            patient = Patient(uuid=patient_uuid, name=name)
            session.add(patient)
            session.flush()
            rows = []
            for i, moment in enumerate(times):
                vitals = {
                    "pulse": 60 + i,
                    "resp_rate": 14,
                    "systolic": 120 + i,
                    "spo2": 97,
                    "temperature": 36.6,
                }
                news2 = score_news2(**vitals)
                rows.append(
                    {
                        "patient_id": patient.id,
                        "timestamp": moment,
                        "diastolic": 80,
                        **vitals,
                        "news2_score": news2.score,
                        "news2_band": news2.band,
                    }
                )
            insert_samples(session, rows)
        return MadePatient(str(patient_uuid), name, times)

    return make
