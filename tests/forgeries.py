"""Tokens an attacker would send instead of a genuine one; every app must refuse them all.

Each takes the genuine account (its id, role and token) and returns a forgery of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth.tokens import AUDIENCE, ISSUER, TokenKind, load_private_key
from tests.auth import Account


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _flip(text: str, index: int) -> str:
    """`text` with the character at `index` changed (and still base64url)."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def claims_of(account: Account, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(account.id),
        "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=10)).timestamp()),
        "role": account.role.value,
        "kind": TokenKind.ACCESS.value,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(claims: dict[str, Any], key: Ed25519PrivateKey | None = None) -> str:
    key = key or load_private_key(Path(os.environ["AUTH_PRIVATE_KEY_FILE"]))
    return jwt.encode(claims, key, algorithm="EdDSA")


def signed_claims(account: Account, **changes: Any) -> str:
    """A token signed with the real key, its claims those of `account` with `changes`
    (None removes a claim)."""
    return _signed(claims_of(account, **changes))


def _tampered_signature(account: Account) -> str:
    header, payload, signature = account.token.split(".")
    # The middle: the last character's low bits may be only padding.
    return ".".join((header, payload, _flip(signature, len(signature) // 2)))


def _tampered_payload_character(account: Account) -> str:
    header, payload, signature = account.token.split(".")
    return ".".join((header, _flip(payload, len(payload) // 2), signature))


def _promoted_payload(account: Account) -> str:
    header, payload, signature = account.token.split(".")
    claims = json.loads(_unb64(payload))
    claims["role"] = "admin"
    return ".".join((header, _b64(json.dumps(claims).encode()), signature))


def _unsigned(account: Account) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims_of(account, role="admin")).encode())
    return f"{header}.{payload}."


def _hmac_with_the_public_key(account: Account) -> str:
    # The classic confusion: HS256 keyed with the (public) verification key.
    public = Path(os.environ["AUTH_PUBLIC_KEY_FILE"]).read_bytes()
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims_of(account, role="admin")).encode())
    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


FORGERIES: dict[str, Callable[[Account], str]] = {
    "signature-changed": _tampered_signature,
    "payload-changed": _tampered_payload_character,
    "role-raised-in-payload": _promoted_payload,
    "alg-none": _unsigned,
    "hs256-with-public-key": _hmac_with_the_public_key,
    "another-key": lambda account: _signed(claims_of(account), Ed25519PrivateKey.generate()),
    "expired": lambda account: signed_claims(
        account, exp=int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    ),
    "wrong-audience": lambda account: signed_claims(account, aud="another-service"),
    "wrong-issuer": lambda account: signed_claims(account, iss="someone-else"),
    "no-audience": lambda account: signed_claims(account, aud=None),
    "no-subject": lambda account: signed_claims(account, sub=None),
    "subject-not-a-uuid": lambda account: signed_claims(account, sub="admin"),
    "unknown-kind": lambda account: signed_claims(account, kind="forever"),
    "oversized": lambda account: account.token + "A" * 5000,
    "garbage": lambda _account: "not-a-token",
    "three-empty-parts": lambda _account: "..",
    "non-ascii": lambda _account: "\u00e9t\u00e9.\u00e9t\u00e9.\u00e9t\u00e9",
}
