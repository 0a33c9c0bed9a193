"""Bearer tokens for the apps that check them by signature only (patient_app, data_app):
test clients that send one, and the tokens an attacker would try."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from shared.auth.roles import Role
from shared.auth.tokens import TokenClaims, TokenKind, TokenSigner
from tests.auth import signer


def client_with(app: Flask, token: str | None) -> FlaskClient:
    """A test client that sends `token` as its bearer token with every request (None: none)."""
    client = app.test_client()
    if token is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _claims(role: str, expires_at: datetime | None = None) -> TokenClaims:
    return TokenClaims(
        token_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        role=role,
        kind=TokenKind.ACCESS,
        expires_at=expires_at,
    )


def expired_token(role: Role = Role.ADMIN) -> str:
    """Signed with the session's key, but its expiry has passed."""
    moment = datetime.now(UTC) - timedelta(hours=1)
    return signer().sign(_claims(role, moment + timedelta(minutes=15)), issued_at=moment)


def foreign_key_token(role: Role = Role.ADMIN) -> str:
    """Well formed, but signed by a key that is not Vigil's."""
    return TokenSigner(Ed25519PrivateKey.generate()).sign(_claims(role))


def unknown_role_token() -> str:
    """Signed with the session's key, naming a role Vigil does not have."""
    return signer().sign(_claims("superuser"))


def tampered_token(token: str, **changes: object) -> str:
    """`token` with its claims changed (a viewer made admin, say) and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def unsigned_token(role: Role = Role.ADMIN) -> str:
    """The right claims with `alg: none` and no signature at all."""
    claims = {
        "iss": "vigil",
        "aud": "vigil",
        "sub": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "iat": int(datetime.now(UTC).timestamp()),
        "role": role.value,
        "kind": TokenKind.ACCESS.value,
    }
    return jwt.encode(claims, key=None, algorithm="none")
