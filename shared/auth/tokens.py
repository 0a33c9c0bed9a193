"""Signed bearer tokens (JWT, Ed25519): short-lived access tokens and long-lived API tokens.

Only monitor_app holds the private key. A token names its user, role and scopes, so any app
can decide access from the token alone; monitor_app additionally looks the token up.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.config import ConfigError

ISSUER = "vigil"
AUDIENCE = "vigil"
ALGORITHM = "EdDSA"
# Tokens longer than this are refused before any parsing.
MAX_TOKEN_LENGTH = 4096
# Tokens whose signature was checked, kept by their exact text (at most 4 MiB of them): most
# requests bring a token verified moments before, and the Ed25519 check with the JWT's
# parsing was a tenth of a read's CPU time.
VERIFIED_TOKENS = 1024
PRIVATE_KEY_NAME = "signing-key.pem"
PUBLIC_KEY_NAME = "verify-key.pem"


class TokenKind(StrEnum):
    ACCESS = "access"  # minutes; from POST /auth/token
    API = "api"  # until revoked (or its expiry); for integrations, stored as a hash


class InvalidTokenError(ValueError):
    """The token is malformed, expired, tampered with or not Vigil's."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    token_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    kind: TokenKind
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None


class TokenVerifier:
    """Checks a token's signature, issuer, audience and expiry with the public key.

    The claims of a token that passed are remembered by its text, which alone proves them:
    another text, a forgery however close, is checked afresh, and a refused one is never
    kept. The expiry is checked at every use. Whether the token was revoked since, or its
    account disabled, is not the signature's to say: callers check that on every request.
    """

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self._key = public_key
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._decode)

    def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("token missing or too long")
        claims = self._verified(token)
        # As PyJWT decides it: expired from the second `exp` names.
        if claims.expires_at is not None and claims.expires_at <= datetime.now(UTC):
            raise InvalidTokenError("Signature has expired")
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "jti", "iat", "role", "kind"]},
            )
            expires = payload.get("exp")
            return TokenClaims(
                token_id=uuid.UUID(str(payload["jti"])),
                user_id=uuid.UUID(str(payload["sub"])),
                role=str(payload["role"]),
                kind=TokenKind(payload["kind"]),
                scopes=frozenset(str(payload.get("scope", "")).split()),
                expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidTokenError(str(exc)) from None


class TokenSigner(TokenVerifier):
    """Signs tokens with the private key (monitor_app only), and verifies them."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        super().__init__(private_key.public_key())
        self._private_key = private_key

    def sign(self, claims: TokenClaims, issued_at: datetime | None = None) -> str:
        issued_at = issued_at or datetime.now(UTC)
        payload: dict[str, object] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(claims.user_id),
            "jti": str(claims.token_id),
            "iat": int(issued_at.timestamp()),
            "role": claims.role,
            "kind": claims.kind.value,
        }
        if claims.scopes:
            payload["scope"] = " ".join(sorted(claims.scopes))
        if claims.expires_at is not None:
            payload["exp"] = int(claims.expires_at.timestamp())
        return jwt.encode(payload, self._private_key, algorithm=ALGORITHM)

    def access_token(
        self, user_id: uuid.UUID, role: str, lifetime: timedelta
    ) -> tuple[str, TokenClaims]:
        """A short-lived token for a user who just signed in with their password."""
        claims = TokenClaims(
            token_id=uuid.uuid4(),
            user_id=user_id,
            role=role,
            kind=TokenKind.ACCESS,
            expires_at=datetime.now(UTC) + lifetime,
        )
        return self.sign(claims), claims


def load_key_setting(config: dict, name: str, load: Callable[[Path], Any]) -> Any:
    """The key the setting `name` points at; a ConfigError naming the setting if it is missing
    or not a key, so the app stops with one line at start-up."""
    try:
        return load(config[name])
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_read_key(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_read_key(path))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"no key at {path}; `python -m shared.auth.keys {path.parent}` creates a pair"
        ) from None


def write_key_pair(directory: Path) -> bool:
    """Create the signing key (mode 0600) and its public half, unless they exist. True if new."""
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    if private_path.exists():
        if not public_path.exists():
            _write(public_path, _public_pem(load_private_key(private_path)), 0o644)
        return False
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(private_path, private_pem, 0o600)
    _write(public_path, _public_pem(key), 0o644)
    return True


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode: the private key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
