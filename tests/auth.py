"""Signing in, for the tests: the session's token keys, accounts and their tokens."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from devserver.processes import get_json
from monitor_app.auth import services
from monitor_app.auth.passwords import hash_password
from shared.auth.roles import Role, Scope
from shared.auth.tokens import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    TokenClaims,
    TokenKind,
    TokenSigner,
    load_private_key,
    write_key_pair,
)
from shared.db import make_engine, migrate

# Long enough for any test; the expiry tests make their own.
TEST_TOKEN_LIFETIME = timedelta(hours=2)
TEST_PASSWORD = "correct horse battery staple"  # noqa: S105 (the tests' accounts only)


@functools.cache
def password_hash(password: str) -> str:
    """argon2 takes a tenth of a second by design: once per password for the whole session,
    not once per account (most tests make several)."""
    return hash_password(password)


def use_test_keys(directory: Path) -> None:
    """Make a key pair and point every app of this session, and its children, at it."""
    write_key_pair(directory)
    os.environ["AUTH_PRIVATE_KEY_FILE"] = str(directory / PRIVATE_KEY_NAME)
    os.environ["AUTH_PUBLIC_KEY_FILE"] = str(directory / PUBLIC_KEY_NAME)


def signer() -> TokenSigner:
    return TokenSigner(load_private_key(Path(os.environ["AUTH_PRIVATE_KEY_FILE"])))


def token_for(role: Role = Role.ADMIN, scopes: Iterable[Scope] = ()) -> str:
    """A valid token for a user no database knows: enough for patient_app and data_app,
    which check tokens by signature only."""
    claims = TokenClaims(
        token_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        role=role.value,
        kind=TokenKind.ACCESS if not scopes else TokenKind.API,
        scopes=frozenset(scope.value for scope in scopes),
    )
    return signer().sign(claims)


def write_worker_token(path: Path) -> str:
    """The worker's kind of token (an integration's, holding analysis:write), written to
    `path` with mode 0600 as `tokens worker` writes it; for AI_API_TOKEN_FILE."""
    token = token_for(Role.INTEGRATION, [Scope.ANALYSIS_WRITE])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"{token}\n")
    return token


def get_json_as_admin(url: str) -> tuple[int | None, Any]:
    """(status, JSON body) of a GET with an admin's token that patient_app and data_app
    accept by its signature: their /health tells the details to admins only."""
    return get_json(url, token=token_for(Role.ADMIN))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_for(app: Flask, token: str | None) -> FlaskClient:
    """A test client of `app` that sends `token` with every request (None: anonymous)."""
    client = app.test_client()
    if token is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@dataclass(frozen=True)
class Account:
    """An account a test made: plain values, and an access token for it."""

    id: uuid.UUID
    email: str
    role: Role
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def create_account(
    sessions: sessionmaker[Session],
    role: Role = Role.ADMIN,
    email: str | None = None,
    wards: Iterable[str] = (),
    password: str = TEST_PASSWORD,
) -> Account:
    """Add an account (committed) and sign an access token for it."""
    email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@vigil.test"
    with sessions.begin() as session:
        user = services.create_user(session, email, role, None, wards)
        user.password_hash = password_hash(password)
        user_id = user.id
    token, _claims = signer().access_token(user_id, role.value, TEST_TOKEN_LIFETIME)
    return Account(user_id, email, role, password, token)


def account_in(database_url: str, role: Role = Role.ADMIN, **options) -> Account:
    """An account in the database at `database_url` (migrated first), for served apps."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        return create_account(sessionmaker(engine, expire_on_commit=False), role, **options)
    finally:
        engine.dispose()
