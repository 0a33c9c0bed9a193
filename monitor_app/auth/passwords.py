"""argon2id password hashes, with argon2-cffi's parameters and its rehash check."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

_hasher = PasswordHasher()
# Verified against when the account does not exist, so an unknown address takes as long to
# refuse as a wrong password and timing does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash("vigil-no-such-account")

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def _off_the_loop(work: Callable[..., T], *args: str) -> T:
    """`work(*args)` in gevent's thread pool when gevent serves this process: an argon2 hash
    takes tenths of a second of C (which releases the GIL), and on the event loop every other
    request and stream of the worker would wait for it."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent import get_hub

        return get_hub().threadpool.apply(work, args)
    return work(*args)


def hash_password(password: str) -> str:
    return _off_the_loop(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; always spends one argon2 verification."""
    matches = _off_the_loop(_verify, password_hash or _DUMMY_HASH, password)
    return matches and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True once argon2-cffi's default parameters are stronger than the hash's."""
    return _hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str) -> None:
    """Raise ValueError for a password too short (or absurdly long) to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
