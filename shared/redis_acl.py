"""Vigil's Redis users: who may touch which keys and channels, with which commands.

Redis holds what an attacker would want to forge (live events shown to clinicians, revoked
tokens, queued analyses), so nothing reaches it without a password: the default user is
off, and each role of shared.config.RedisRole has a user of its own that can do only what
that role needs. A stolen cache password cannot publish an event, drain the queue, un-revoke
a token, or run CONFIG, FLUSHALL or a script over keys not its own (Redis checks every
command a script runs, and every key it names, against the same rules).

`acl_file` writes the rules as a Redis ACL file; the passwords are stored in it only as
SHA-256 digests. `python -m shared.redis_acl DIR` writes DIR/users.acl from the passwords in
REDIS_ADMIN_PASSWORD and REDIS_<ROLE>_PASSWORD (docker-compose.yml's `redis-users` service).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.config import (
    REDIS_SETTINGS,
    ConfigError,
    RedisRole,
    Setting,
    load_settings,
    redis_url_setting,
)

ADMIN = "vigil-admin"

# Every user: liveness checks, and a database other than 0 if the URL names one (AUTH and
# HELLO need no permission).
_CONNECTION = ("+ping", "+select")

# Per role: (key patterns, channel patterns, commands). "{ns}" is the namespace.
_RULES: Mapping[RedisRole, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # monitor_app's cached responses (GET, SET with a TTL) and its rate limits: Flask-Limiter
    # counts in Lua scripts (EVALSHA, loaded once with SCRIPT LOAD) that INCRBY and EXPIRE,
    # and reads the window's count and TTL for the X-RateLimit headers.
    RedisRole.CACHE: (
        ("{ns}:cache:*", "{ns}:ratelimit:*"),
        (),
        ("+get", "+set", "+evalsha", "+script|load", "+incrby", "+expire", "+ttl"),
    ),
    # Celery's queue (kombu's Redis transport, every key under its global key prefix): lists
    # of messages; the binding set and its deadlines; the hash, index and lock of unacknowledged
    # ones. kombu's scripts (EVALSHA) refresh and sweep bindings with TIME, SADD, ZADD,
    # ZRANGEBYSCORE, EXISTS, DEL and ZREM; redis-py's lock releases with GET and DEL.
    # One kind of channel: the workers' own events (online, heartbeat), which nothing in
    # Vigil reads. Not the pidbox: the workers run without remote control, and nobody may
    # send them commands.
    RedisRole.QUEUE: (
        ("{ns}:celery:*",),
        ("{ns}:celery:/*.celeryev/*",),
        (
            *("+lpush", "+rpush", "+brpop", "+rpop", "+llen"),
            *("+sadd", "+smembers", "+srem"),
            *("+zadd", "+zrem", "+zrange", "+zrangebyscore", "+zrevrangebyscore"),
            *("+hset", "+hget", "+hdel"),
            *("+set", "+get", "+del", "+exists", "+pexpire"),
            *("+watch", "+unwatch", "+multi", "+exec", "+discard"),
            *("+evalsha", "+script|load", "+time"),
            "+publish",
        ),
    ),
    # The live-events channel, the cache generations every change bumps, and the sets of
    # revoked tokens and disabled accounts (written by monitor_app, read by every app; they
    # have no TTL, so maxmemory's volatile-lru never evicts a revocation).
    RedisRole.EVENTS: (
        ("{ns}:generation:*", "{ns}:auth:*"),
        ("{ns}:events",),
        (
            "+publish",
            "+subscribe",
            "+unsubscribe",
            "+incrby",  # redis-py's INCR
            "+get",
            "+sismember",
            "+sadd",
            "+srem",
            "+del",
            "+multi",
            "+exec",
        ),
    ),
}


def user_name(role: RedisRole) -> str:
    return f"vigil-{role}"


def user_rules(role: RedisRole, namespace: str) -> list[str]:
    """The ACL rules of `role`'s user (without its password); `namespace` may be a glob."""
    keys, channels, commands = _RULES[role]
    return [
        "resetkeys",
        "resetchannels",
        *(f"~{pattern.format(ns=namespace)}" for pattern in keys),
        *(f"&{pattern.format(ns=namespace)}" for pattern in channels),
        "-@all",
        *_CONNECTION,
        *commands,
    ]


@dataclass(frozen=True, slots=True)
class RedisUsers:
    """The passwords of Vigil's Redis users: the admin's and one per role."""

    passwords: Mapping[str, str]

    @classmethod
    def generate(cls) -> RedisUsers:
        names = [ADMIN, *(user_name(role) for role in RedisRole)]
        return cls({name: secrets.token_urlsafe(32) for name in names})

    def acl_file(self, namespace: str) -> str:
        """A Redis ACL file: the default user off, the admin, and one user per role."""
        lines = ["user default reset off", self._line(ADMIN, ["~*", "&*", "+@all"])]
        lines += [self._line(user_name(role), user_rules(role, namespace)) for role in RedisRole]
        return "\n".join(lines) + "\n"

    def _line(self, name: str, rules: list[str]) -> str:
        digest = hashlib.sha256(self.passwords[name].encode()).hexdigest()
        return " ".join(["user", name, "reset", "on", f"#{digest}", *rules])

    def url(self, name: str, redis_url: str) -> str:
        """`redis_url` (the server) with `name`'s credentials."""
        parts = urlsplit(redis_url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(name, safe='')}:{quote(self.passwords[name], safe='')}@{host}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def settings(self, redis_url: str) -> dict[str, str]:
        """REDIS_<ROLE>_URL of every role, each with its own user."""
        return {redis_url_setting(role): self.url(user_name(role), redis_url) for role in RedisRole}


def parse_url_secret(raw: str) -> str:
    """A password that goes into URLs as it is: letters and digits, 16 or more."""
    if not re.fullmatch(r"[A-Za-z0-9]{16,}", raw):
        raise ValueError("letters and digits only, at least 16 (openssl rand -hex 32)")
    return raw


def password_setting(name: str) -> str:
    """REDIS_ADMIN_PASSWORD for `vigil-admin`, REDIS_CACHE_PASSWORD for `vigil-cache`..."""
    return f"REDIS_{name.removeprefix('vigil-').upper()}_PASSWORD"


USER_NAMES = (ADMIN, *(user_name(role) for role in RedisRole))
USERS_SETTINGS: tuple[Setting, ...] = (
    *(Setting(password_setting(name), parse_url_secret) for name in USER_NAMES),
    *(setting for setting in REDIS_SETTINGS if setting.name == "REDIS_NAMESPACE"),
)


def write_acl_file(directory: Path, settings: Mapping[str, str]) -> Path:
    """DIR/users.acl for the passwords in `settings`, replaced whole.

    Readable by all (0644): the Redis server runs as a user of its own, and the file holds
    only digests of random passwords, nothing that signs anyone in.
    """
    users = RedisUsers({name: settings[password_setting(name)] for name in USER_NAMES})
    path = directory / "users.acl"
    partial = directory / ".users.acl.partial"
    partial.write_text(users.acl_file(settings["REDIS_NAMESPACE"]))
    partial.chmod(0o644)
    os.replace(partial, path)
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.redis_acl DIR", file=sys.stderr)
        return 2
    try:
        settings = load_settings(USERS_SETTINGS)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    path = write_acl_file(Path(argv[0]), settings)
    print(f"Redis users written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
