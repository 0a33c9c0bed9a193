"""The live streams' credentials re-checked together: a round of queries answers for all of
them, and each stream is told of its own credential only."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import event, update

from monitor_app.auth import services
from monitor_app.auth.authenticate import Credential, credentials_holding
from monitor_app.live.session_watch import SessionWatch
from shared.auth.roles import Role, Scope
from shared.db import db, utcnow
from shared.identity import User, UserSession
from tests.auth import Account, signer


@pytest.fixture
def in_app(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


def session_of(app: Flask, account: Account) -> Credential:
    with db.sessionmaker(app).begin() as session:
        row, _ = services.start_session(session, session.get(User, account.id), None, None)
        return Credential(session_id=row.id)


def api_token_of(app: Flask, account: Account, **options) -> Credential:
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, account.id)
        _, token = services.create_api_token(
            session, signer(), user, "feed", (Scope.PATIENTS_READ,), **options
        )
    return Credential(claims=signer().verify(token))


def access_token_of(account: Account) -> Credential:
    return Credential(claims=signer().verify(account.token))


def statements_in(app: Flask, block: Callable[[], object]) -> int:
    count = 0

    def record(*_args) -> None:
        nonlocal count
        count += 1

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        block()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return count


def test_a_round_costs_a_query_per_kind_of_credential_however_many_streams(
    in_app: Flask, make_account: Callable[..., Account]
) -> None:
    accounts = [make_account(Role.CLINICIAN) for _ in range(6)]
    credentials = (
        [session_of(in_app, a) for a in accounts]
        + [access_token_of(a) for a in accounts]
        + [api_token_of(in_app, make_account(Role.INTEGRATION)) for _ in range(3)]
    )
    watch = SessionWatch()
    for credential in credentials:
        watch.watch(credential)

    answers: list[bool] = []
    queries = statements_in(
        in_app, lambda: answers.extend(watch.holds(c, every=0) for c in credentials[:1])
    )

    assert answers == [True]
    assert queries == 3  # sessions, access tokens' accounts, API tokens
    # Not due again for a minute: every other stream is answered without a query.
    assert statements_in(in_app, lambda: [watch.holds(c, every=60) for c in credentials]) == 0


def test_each_credential_that_ended_is_told_and_the_others_go_on(
    in_app: Flask, make_account: Callable[..., Account]
) -> None:
    signed_out, idle, disabled, fine = (make_account(Role.CLINICIAN) for _ in range(4))
    integration = make_account(Role.INTEGRATION)
    ended = {
        "signed out": session_of(in_app, signed_out),
        "idle": session_of(in_app, idle),
        "disabled": access_token_of(disabled),
        "revoked": api_token_of(in_app, integration),
        "api token expired": api_token_of(
            in_app, integration, expires_at=utcnow() + timedelta(seconds=30)
        ),
    }
    holding = {
        "session": session_of(in_app, fine),
        "access token": access_token_of(fine),
        "api token": api_token_of(in_app, integration),
    }
    settings = in_app.extensions["vigil.auth_settings"]
    with db.sessionmaker(in_app).begin() as session:
        session.execute(
            update(UserSession)
            .where(UserSession.id == ended["signed out"].session_id)
            .values(ended_at=utcnow())
        )
        session.execute(
            update(UserSession)
            .where(UserSession.id == ended["idle"].session_id)
            .values(last_seen_at=utcnow() - settings.session_idle - timedelta(seconds=1))
        )
        services.set_active(session, disabled.email, False)
        services.revoke_api_token(session, ended["revoked"].claims.token_id)
        session.execute(
            update(services.ApiToken)
            .where(services.ApiToken.id == ended["api token expired"].claims.token_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    watch = SessionWatch()
    for credential in [*ended.values(), *holding.values()]:
        watch.watch(credential)

    assert {name for name, c in ended.items() if watch.holds(c, every=0)} == set()
    assert {name for name, c in holding.items() if watch.holds(c, every=0)} == set(holding)


def test_an_access_token_that_expired_since_the_handshake_no_longer_holds(
    in_app: Flask, admin: Account
) -> None:
    claims = signer().verify(admin.token)
    expired = Credential(claims=replace(claims, expires_at=utcnow() - timedelta(seconds=1)))
    assert credentials_holding([expired]) == set()


def test_claims_pairing_a_token_with_another_account_do_not_hold(
    in_app: Flask, make_account: Callable[..., Account]
) -> None:
    """Claims naming someone's API token for another account (what a forger would try if
    they could sign) match no token of that account."""
    owner, other = make_account(Role.INTEGRATION), make_account(Role.INTEGRATION)
    token = api_token_of(in_app, owner)
    forged = Credential(claims=replace(token.claims, user_id=other.id))
    unknown = Credential(claims=replace(token.claims, token_id=uuid.uuid4()))
    no_session = Credential(session_id=uuid.uuid4())
    assert credentials_holding([token, forged, unknown, no_session]) == {token}


def test_a_stream_that_left_is_no_longer_checked(
    in_app: Flask, make_account: Callable[..., Account]
) -> None:
    credential = session_of(in_app, make_account(Role.CLINICIAN))
    watch = SessionWatch()
    watch.watch(credential)
    watch.watch(credential)  # two tabs on one session
    watch.unwatch(credential)
    assert watch.holds(credential, every=0)
    watch.unwatch(credential)
    assert statements_in(in_app, lambda: watch.holds(credential, every=0)) == 0
