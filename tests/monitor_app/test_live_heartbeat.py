"""Heartbeats on `/api/v1/ws`: the server pings every WS_PING_SECONDS and drops a client
that has not answered its last ping by the next; a client that answers streams on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from monitor_app import create_app
from monitor_app.live.routes import POLICY_VIOLATION
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.lifecycle import background_service
from shared.notifications import events
from tests.auth import Account
from tests.monitor_app.live_streams import Served, closed_with, connect, receive_event, serving

PING_SECONDS = 0.2


@pytest.fixture
def app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """The monitor API, its streams pinged every PING_SECONDS (set as any setting is)."""
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": False,
            "WS_PING_SECONDS": PING_SECONDS,
        }
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


@pytest.fixture
def served(app: Flask, own_contexts: None, wait_for: Callable[..., object]) -> Iterator[Served]:
    with serving(app, wait_for) as served:
        yield served


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


def test_the_setting_reaches_the_websocket_server(app: Flask) -> None:
    assert app.config["SOCK_SERVER_OPTIONS"]["ping_interval"] == PING_SECONDS


def test_a_client_that_answers_pings_streams_on(served: Served, clinician: Account) -> None:
    ws = connect(served, header=[f"Authorization: Bearer {clinician.token}"])
    try:
        # Reading answers the server's pings (websocket-client pongs as it reads).
        many_pings_later = time.monotonic() + 10 * PING_SECONDS
        while time.monotonic() < many_pings_later:
            assert events(served.app).publish("vitals", {"samples": [], "marker": "on"})
            assert receive_event(ws, "vitals")["marker"] == "on"
        assert background_service(served.app, "event_hub").client_count == 1
    finally:
        ws.close()


def test_a_client_that_does_not_answer_is_dropped(
    served: Served, clinician: Account, wait_for: Callable[..., object]
) -> None:
    """A client gone without a word (a laptop closed, a cable pulled): its seat comes back."""
    ws = connect(served, header=[f"Authorization: Bearer {clinician.token}"])
    hub = background_service(served.app, "event_hub")
    assert hub.client_count == 1

    # Not reading, the client answers no ping.
    wait_for(lambda: hub.client_count == 0, timeout=10, message="the silent client dropped")

    assert closed_with(ws, answer_pings=False) == (POLICY_VIOLATION, "Ping/Pong timeout")
