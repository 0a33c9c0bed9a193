"""The live stream's sign-in: who may open `/api/v1/ws`, from which pages, and for how long.

The app runs behind a real threaded server (a WebSocket needs a socket) with its event hub
started; the stream re-checks its session or token every 0.1 s here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import websocket
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from monitor_app.auth import services
from monitor_app.config import ws_client_message_bytes
from monitor_app.live.routes import (
    CLIENT_FLOOD,
    CLIENT_MESSAGES_PER_WAKE,
    POLICY_VIOLATION,
    SESSION_ENDED,
)
from shared.auth.roles import Role, Scope
from shared.db import db, utcnow
from shared.identity import User, UserSession
from shared.notifications import events
from shared.web_security import same_origin
from tests.auth import Account, signer
from tests.helpers import open_stream
from tests.monitor_app.live_streams import (
    CHECK_SECONDS,
    CLOSE_DEADLINE,
    Served,
    closed_with,
    connect,
    receive_event,
    serving,
)

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what this module checks does not depend on the database (test_audit and
    test_scoping, which write what the backends store differently, run on both)."""
    return sqlite_url


@pytest.fixture
def served(app: Flask, own_contexts: None, wait_for: Callable[..., object]) -> Iterator[Served]:
    """`app` behind a real server, its event hub relaying this test's Redis channel."""
    with serving(app, wait_for) as served:
        yield served


def signed_in_browser(app: Flask, account: Account) -> FlaskClient:
    """A test client signed in through the login form."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": CSRF_FIELD.search(page).group(1),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def cookie_header(client: FlaskClient) -> str:
    cookie = client.get_cookie("vigil_session")
    assert cookie is not None
    return f"vigil_session={cookie.value}"


def refused(served: Served, **options) -> int:
    """The HTTP status a handshake is refused with (fails if it is accepted)."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refusal:
        websocket.create_connection(served.ws_url, timeout=CLOSE_DEADLINE, **options).close()
    return refusal.value.status_code


def publish_vitals(app: Flask, marker: str) -> None:
    assert events(app).publish("vitals", {"samples": [], "marker": marker})


def api_token(app: Flask, account: Account, scopes=(Scope.PATIENTS_READ,)) -> tuple[str, str]:
    """(id, token) of a new API token for `account`."""
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, account.id)
        row, token = services.create_api_token(session, signer(), user, "feed", scopes)
        return str(row.id), token


def disable(app: Flask, account: Account) -> None:
    with db.sessionmaker(app).begin() as session:
        services.set_active(session, account.email, False)


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


# -- streaming ------------------------------------------------------------------------------
def test_a_signed_in_browser_receives_events(served: Served, clinician: Account) -> None:
    browser = signed_in_browser(served.app, clinician)
    ws = connect(served, cookie=cookie_header(browser))
    try:
        publish_vitals(served.app, "first")
        assert receive_event(ws, "vitals")["marker"] == "first"
        # Many checks later (every 0.1 s), the stream still holds.
        time_after_checks = time.monotonic() + 10 * CHECK_SECONDS
        while time.monotonic() < time_after_checks:
            publish_vitals(served.app, "again")
            assert receive_event(ws, "vitals")["marker"] == "again"
    finally:
        ws.close()


def test_an_api_token_with_the_scope_receives_events(
    served: Served, make_account: Callable[..., Account]
) -> None:
    _token_id, token = api_token(served.app, make_account(Role.INTEGRATION))
    ws = connect(served, header=[f"Authorization: Bearer {token}"], suppress_origin=True)
    try:
        publish_vitals(served.app, "feed")
        assert receive_event(ws, "vitals")["marker"] == "feed"
    finally:
        ws.close()


def test_the_stream_does_not_keep_a_session_from_going_idle(
    served: Served, clinician: Account
) -> None:
    """Watching is not using: only requests count, so an unattended screen signs out."""
    ws = connect(served, cookie=cookie_header(signed_in_browser(served.app, clinician)))
    a_minute_ago = utcnow() - timedelta(seconds=60)
    try:
        # Old enough that a request now would record itself (requests do every 30 s).
        with db.sessionmaker(served.app).begin() as session:
            session.execute(
                update(UserSession)
                .where(UserSession.user_id == clinician.id)
                .values(last_seen_at=a_minute_ago)
            )
        checks_done = time.monotonic() + 10 * CHECK_SECONDS
        while time.monotonic() < checks_done:
            publish_vitals(served.app, "watching")
            assert receive_event(ws, "vitals")["marker"] == "watching"
    finally:
        ws.close()
    with db.sessionmaker(served.app)() as session:
        (last_seen,) = session.scalars(
            select(UserSession.last_seen_at).where(UserSession.user_id == clinician.id)
        )
    assert abs(last_seen - a_minute_ago) < timedelta(seconds=1)


# -- ending ---------------------------------------------------------------------------------
def test_logout_closes_the_stream(served: Served, clinician: Account) -> None:
    browser = signed_in_browser(served.app, clinician)
    ws = connect(served, cookie=cookie_header(browser))
    token = CSRF_META.search(browser.get("/").get_data(as_text=True)).group(1)

    assert browser.post("/logout", data={"csrf_token": token}).status_code == 303

    assert closed_with(ws) == (POLICY_VIOLATION, SESSION_ENDED)


def test_disabling_the_account_closes_its_stream(served: Served, clinician: Account) -> None:
    ws = connect(served, cookie=cookie_header(signed_in_browser(served.app, clinician)))

    disable(served.app, clinician)

    assert closed_with(ws) == (POLICY_VIOLATION, SESSION_ENDED)


def test_an_idle_session_closes_its_stream(served: Served, clinician: Account) -> None:
    ws = connect(served, cookie=cookie_header(signed_in_browser(served.app, clinician)))
    idle = timedelta(seconds=served.app.config["SESSION_IDLE_SECONDS"])

    with db.sessionmaker(served.app).begin() as session:
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == clinician.id)
            .values(last_seen_at=utcnow() - idle - timedelta(seconds=1))
        )

    assert closed_with(ws) == (POLICY_VIOLATION, SESSION_ENDED)


def test_revoking_the_api_token_closes_its_stream(
    served: Served, make_account: Callable[..., Account]
) -> None:
    token_id, token = api_token(served.app, make_account(Role.INTEGRATION))
    ws = connect(served, header=[f"Authorization: Bearer {token}"])

    with db.sessionmaker(served.app).begin() as session:
        services.revoke_api_token(session, services.uuid.UUID(token_id))

    assert closed_with(ws) == (POLICY_VIOLATION, SESSION_ENDED)


def test_an_access_tokens_stream_closes_when_its_account_is_disabled(
    served: Served, clinician: Account
) -> None:
    ws = connect(served, header=[f"Authorization: Bearer {clinician.token}"])

    disable(served.app, clinician)

    assert closed_with(ws) == (POLICY_VIOLATION, SESSION_ENDED)


def test_another_users_streams_go_on(served: Served, make_account) -> None:
    """Ending one session closes its stream only."""
    one, other = make_account(Role.CLINICIAN), make_account(Role.VIEWER)
    ws_one = connect(served, cookie=cookie_header(signed_in_browser(served.app, one)))
    ws_other = connect(served, cookie=cookie_header(signed_in_browser(served.app, other)))
    try:
        disable(served.app, one)
        assert closed_with(ws_one) == (POLICY_VIOLATION, SESSION_ENDED)
        publish_vitals(served.app, "still here")
        assert receive_event(ws_other, "vitals")["marker"] == "still here"
    finally:
        ws_other.close()


# -- refusing -------------------------------------------------------------------------------
def test_an_anonymous_handshake_is_refused(served: Served) -> None:
    assert refused(served) == 401


def test_a_revoked_or_forged_token_is_refused(
    served: Served, make_account: Callable[..., Account]
) -> None:
    token_id, token = api_token(served.app, make_account(Role.INTEGRATION))
    with db.sessionmaker(served.app).begin() as session:
        services.revoke_api_token(session, services.uuid.UUID(token_id))

    assert refused(served, header=[f"Authorization: Bearer {token}"]) == 401
    assert refused(served, header=[f"Authorization: Bearer {token[:-4]}AAAA"]) == 401


def test_an_integration_without_the_scope_is_refused(
    served: Served, make_account: Callable[..., Account]
) -> None:
    _id, token = api_token(served.app, make_account(Role.INTEGRATION), [Scope.METRICS_READ])

    assert refused(served, header=[f"Authorization: Bearer {token}"]) == 403


# More in test_same_origin.
FOREIGN_ORIGINS = ["https://evil.example", "null", "http://127.0.0.1.evil.example"]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_a_handshake_from_another_sites_page_gets_no_data(
    served: Served, clinician: Account, origin: str
) -> None:
    """Cross-site WebSocket hijacking: another site's page opens the stream, and the
    browser sends the dashboard's cookie with it."""
    cookie = cookie_header(signed_in_browser(served.app, clinician))

    assert refused(served, cookie=cookie, origin=origin) == 403


def test_a_handshake_from_another_port_of_this_host_is_refused(
    served: Served, clinician: Account
) -> None:
    cookie = cookie_header(signed_in_browser(served.app, clinician))
    other_port = served.port + 1 if served.port < 65535 else served.port - 1

    assert refused(served, cookie=cookie, origin=f"http://127.0.0.1:{other_port}") == 403


def test_a_handshake_from_this_sites_page_is_accepted(served: Served, clinician: Account) -> None:
    cookie = cookie_header(signed_in_browser(served.app, clinician))

    connect(served, cookie=cookie, origin=served.origin).close()


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:5000", "127.0.0.1:5000", True),
        ("https://vigil.example", "vigil.example", True),
        ("https://vigil.example", "vigil.example:443", True),
        ("http://VIGIL.example", "vigil.example", True),
        ("https://vigil.example:8443", "vigil.example:8443", True),
        ("https://vigil.example", "vigil.example:8443", False),
        ("https://vigil.example.evil", "vigil.example", False),
        ("https://evil.example", "vigil.example", False),
        ("null", "vigil.example", False),
        ("ftp://vigil.example", "vigil.example", False),
        ("https://vigil.example/path", "vigil.example", False),
        ("https://vigil.example:notaport", "vigil.example", False),
        ("https://user@vigil.example", "vigil.example", False),
        ("", "vigil.example", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_a_token_does_not_let_another_sites_page_in(
    served: Served, clinician: Account, origin: str
) -> None:
    """A page can send a bearer token too (one it was given or stole): its Origin still
    says it is not Vigil's."""
    assert (
        refused(served, header=[f"Authorization: Bearer {clinician.token}"], origin=origin) == 403
    )


# -- seats ----------------------------------------------------------------------------------
def opened(served: Served, account: Account) -> websocket.WebSocket | tuple[int, str]:
    """A stream of `account`'s past its hello, or how it was refused."""
    return open_stream(served.ws_url, account.token, CLOSE_DEADLINE)


def test_viewers_cannot_take_the_seats_kept_for_clinicians(
    served: Served,
    make_account: Callable[..., Account],
    clinician: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One viewer account (or one leaked integration token) opening stream after stream:
    it gets its share, and a clinician still gets in."""
    # Eight seats, four kept for clinicians (the default WS_CLINICIAN_SEATS).
    monkeypatch.setitem(served.app.config, "WS_MAX_CLIENTS", 8)
    assert served.app.config["WS_CLINICIAN_SEATS"] == 4
    greedy, other_viewer = make_account(Role.VIEWER), make_account(Role.VIEWER)
    streams = []
    try:
        for _ in range(6):
            streams.append(opened(served, greedy))
        refusals = [s for s in streams if isinstance(s, tuple)]
        assert len(streams) - len(refusals) == 4
        assert refusals == [(503, "at most 4 streams per user on this worker; close one")] * 2
        # The other four seats are for clinicians and admins.
        refused_viewer = opened(served, other_viewer)
        assert refused_viewer == (
            503,
            "the remaining seats are kept for clinicians; retry shortly",
        )
        for _ in range(4):
            streams.append(opened(served, clinician))
            assert not isinstance(streams[-1], tuple), streams[-1]
    finally:
        for stream in streams:
            if not isinstance(stream, tuple):
                stream.close()


# -- what clients send ----------------------------------------------------------------------
MESSAGE_TOO_BIG = 1009


def test_client_messages_are_discarded_and_a_long_one_closes_the_stream(
    served: Served, clinician: Account
) -> None:
    ws = connect(served, header=[f"Authorization: Bearer {clinician.token}"])
    for number in range(CLIENT_MESSAGES_PER_WAKE // 2):
        ws.send(f"ping {number}")
    publish_vitals(served.app, "still streaming")
    assert receive_event(ws, "vitals")["marker"] == "still streaming"

    # Room for a subscribe message naming as many patients as a stream may have, no more.
    longest = ws_client_message_bytes(served.app.config["WS_MAX_PATIENTS"])
    assert served.app.config["SOCK_SERVER_OPTIONS"]["max_message_size"] == longest
    ws.send("x" * (longest + 1))

    assert closed_with(ws) == (MESSAGE_TOO_BIG, "Message is too big")


def test_a_flood_of_client_messages_closes_the_stream(served: Served, clinician: Account) -> None:
    """Small messages, each discarded, but sent as fast as a client can: they would pile up
    between two wakes of the stream, and again after."""
    ws = connect(served, header=[f"Authorization: Bearer {clinician.token}"])
    try:
        for _ in range(50 * CLIENT_MESSAGES_PER_WAKE):
            ws.send("x" * 100)
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        pass  # closed meanwhile: what the server should do

    assert closed_with(ws) == (POLICY_VIOLATION, CLIENT_FLOOD)
