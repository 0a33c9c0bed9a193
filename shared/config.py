"""Settings read from the environment (and a `.env` file), validated when an app is created.

Each app declares the variables it reads as a tuple of `Setting`s; `load_settings` parses them
all and fails on the first bad one with a `ConfigError` whose message names the variable, so a
typo stops the app with one clear line instead of a traceback deep inside a library.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"

_REQUIRED = object()


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, how to parse it, and its default."""

    name: str
    parse: Callable[[str], Any] = str
    default: Any = _REQUIRED
    help: str = ""


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        _check_range(value, minimum, maximum)
        return value

    return parse


def parse_float(
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {raw!r}")
        if exclusive_minimum is not None and value <= exclusive_minimum:
            raise ValueError(f"must be greater than {exclusive_minimum}, got {raw!r}")
        _check_range(value, minimum, maximum)
        return value

    return parse


def parse_port(raw: str) -> int:
    return parse_int(1, 65535)(raw)


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def parse_uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise ValueError(f"expected a UUID, got {raw!r}") from None


def parse_optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An empty value means 'not set'."""

    def optional(raw: str) -> Any:
        return parse(raw) if raw.strip() else None

    return optional


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def parse_nonempty(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def parse_api_prefix(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and not value.startswith("/"):
        raise ValueError(f"must start with '/', got {raw!r}")
    return value


LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES


def parse_https_url(raw: str) -> str:
    """An https:// URL; http:// only to a loopback host, where nothing can read it on the way."""
    value = parse_http_url(raw)
    parts = urlsplit(value)
    if not parts.hostname:
        raise ValueError(f"expected a URL with a host, got {raw!r}")
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        # The host only: a URL may carry a password.
        raise ValueError(
            "must be https:// unless its host is loopback (127.0.0.0/8, ::1, localhost); "
            f"got http:// to {parts.hostname!r}"
        )
    return value


def parse_log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return value


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}, got {value}")


def default_database_url() -> str:
    return f"sqlite:///{VAR_DIR / 'vigil.db'}"


def paired(config: Mapping[str, Any], first: str, second: str) -> tuple[Any, Any] | None:
    """Two settings that only go together (a certificate and its key): both values, or None
    when neither is set; only one is a ConfigError naming both."""
    values = config[first], config[second]
    if (values[0] is None) != (values[1] is None):
        raise ConfigError(f"{first} and {second}: set both or neither")
    return None if values[0] is None else values


def parse_path(raw: str) -> Path:
    value = raw.strip()
    if not value:
        raise ValueError("expected a file path")
    return Path(value)


def parse_existing_file(raw: str) -> Path:
    path = parse_path(raw)
    if not path.is_file():
        raise ValueError(f"no such file: {str(path)!r}")
    return path


def parse_redis_url(raw: str) -> str:
    """A redis:// or rediss:// URL; rediss:// never with its certificate checks turned off."""
    value = parse_nonempty(raw)
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss"}:
        # The scheme only: a URL carries a password.
        raise ValueError(f"expected a redis:// or rediss:// URL, got {parts.scheme}://")
    reqs = dict(parse_qsl(parts.query)).get("ssl_cert_reqs", "required")
    if reqs.lower() != "required":
        raise ValueError(f"ssl_cert_reqs must be 'required' (the default), got {reqs!r}")
    return value


def parse_upper_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


# How Vigil's Kafka clients prove who they are, beside the address they all read.
# shared.kafka.KafkaConnection checks that they make sense together (SASL needs a username...).
# PLAINTEXT suits the embedded broker on loopback only (README: "Securing Kafka").
KAFKA_CLIENT_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "KAFKA_SECURITY_PROTOCOL",
        parse_upper_choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "PLAINTEXT",
    ),
    Setting(
        "KAFKA_SASL_MECHANISM",
        parse_upper_choice("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"),
        "SCRAM-SHA-512",
    ),
    Setting("KAFKA_SASL_USERNAME", parse_optional(str.strip), None),
    Setting("KAFKA_SASL_PASSWORD", parse_optional(str), None),
    # A mounted secret, so the password stays out of the environment (and `ps e`).
    Setting("KAFKA_SASL_PASSWORD_FILE", parse_optional(parse_path), None),
    # PEM files; without a CA file the system's trusted CAs check the broker.
    Setting("KAFKA_SSL_CA_FILE", parse_optional(parse_path), None),
    # A client certificate and its key, for brokers that ask for one (ssl.client.auth).
    Setting("KAFKA_SSL_CERT_FILE", parse_optional(parse_path), None),
    Setting("KAFKA_SSL_KEY_FILE", parse_optional(parse_path), None),
)


# Variables every app reads.
COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting("DEBUG", parse_bool, False),
    Setting("LOG_LEVEL", parse_log_level, "INFO"),
    Setting("KAFKA_BOOTSTRAP_SERVERS", parse_nonempty, "127.0.0.1:19092"),
    *KAFKA_CLIENT_SETTINGS,
    Setting("KAFKA_TOPIC", parse_nonempty, "vitals"),
)


class RedisRole(StrEnum):
    """What a Redis connection is for; each may have a Redis user of its own (its ACL allows
    only its keys, channels and commands: shared/redis_acl.py)."""

    CACHE = "cache"  # monitor_app's cached reads and its rate limits
    QUEUE = "queue"  # Celery's queue of analyses
    EVENTS = "events"  # live events, cache generations, revoked tokens and disabled accounts


def redis_url_setting(role: RedisRole) -> str:
    return f"REDIS_{role.upper()}_URL"


# Variables of the apps that use Redis: Celery's broker, the cache, rate limits and events.
REDIS_SETTINGS: tuple[Setting, ...] = (
    # `make run` starts a redis-server here (devserver/redis_server.py).
    Setting(
        "REDIS_URL",
        parse_redis_url,
        "redis://127.0.0.1:16379/0",
        "Redis for whatever has no REDIS_<ROLE>_URL of its own: one URL, with one user's "
        "credentials (redis://user:password@host:port/0), for a deployment with one Redis user.",
    ),
    *(
        Setting(
            redis_url_setting(role),
            parse_optional(parse_redis_url),
            None,
            f"Redis, as its {role} user, for the {role}; REDIS_URL when unset.",
        )
        for role in RedisRole
    ),
    # Prefix of every key, channel and queue name, so several Vigils can share one Redis.
    Setting("REDIS_NAMESPACE", parse_nonempty, "vigil"),
    Setting(
        "REDIS_TLS_CA_FILE",
        parse_optional(parse_existing_file),
        None,
        "PEM file of the CA that signed Redis's certificate, for rediss:// URLs; the system's "
        "CAs when unset.",
    ),
)


def redis_url(config: Mapping[str, Any], role: RedisRole) -> str:
    """The URL of Redis for `role`, as every client (redis-py, Celery, Flask-Limiter) takes it.

    Resolved when a client is made, not when the settings are read, so a test (or an
    operator) that changes only REDIS_URL moves every role. A rediss:// URL comes back with
    the certificate checks in its query, where all three libraries read them: kombu would
    otherwise connect over TLS without verifying anything.
    """
    url = config.get(redis_url_setting(role)) or config["REDIS_URL"]
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return url
    query = dict(parse_qsl(parts.query))
    query["ssl_cert_reqs"] = "required"
    if config.get("REDIS_TLS_CA_FILE") is not None:
        query.setdefault("ssl_ca_certs", str(config["REDIS_TLS_CA_FILE"]))
    return urlunsplit(parts._replace(query=urlencode(query)))


def plaintext_redis_hosts(config: Mapping[str, Any]) -> list[str]:
    """The hosts other than loopback that some role reaches by redis://, in plain text."""
    urls = [redis_url(config, role) for role in RedisRole]
    hosts = {urlsplit(url).hostname or "" for url in urls if urlsplit(url).scheme == "redis"}
    return sorted(host for host in hosts if host and not is_loopback(host))


# How Vigil creates its topics and how its producers write them (README: "Running on Apache
# Kafka" says what each protects against). The defaults suit one broker; a cluster wants 3 / 2.
KAFKA_TOPIC_SETTINGS: tuple[Setting, ...] = (
    # Upper bound of data_app instances that share the ingest: one partition feeds one consumer.
    Setting("KAFKA_TOPIC_PARTITIONS", parse_int(1, 1000), 6),
    Setting("KAFKA_REPLICATION_FACTOR", parse_int(1, 32), 1),
    Setting("KAFKA_MIN_INSYNC_REPLICAS", parse_int(1, 32), 1),
    # How long the broker keeps samples that nobody has read (data_app stores them in seconds).
    Setting("KAFKA_RETENTION_HOURS", parse_int(1, 24 * 365), 168),
    Setting("KAFKA_COMPRESSION", parse_choice("none", "gzip", "snappy", "lz4", "zstd"), "lz4"),
)


# Every app that reads or writes the Vigil database.
DATABASE_SETTING = Setting(
    "DATABASE_URL",
    parse_nonempty,
    default_database_url,
    "SQLAlchemy URL of the Vigil database (SQLite file or PostgreSQL).",
)

# The ward the migration creates ("ICU"); the simulated patients lie in it.
DEFAULT_WARD_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")

# Who vitals alerts are addressed to: every clinician of the ward.
WARD_SETTING = Setting(
    "WARD_ID",
    parse_uuid,
    DEFAULT_WARD_ID,
    "Id of the ward whose clinicians receive the vitals alerts (`wards list` shows them).",
)


# How far ahead of a server's clock a sample may be stamped: data_app dead-letters a sample
# further ahead, and monitor_app never shows one as a patient's newest.
CLOCK_SKEW_SETTING = Setting(
    "MAX_CLOCK_SKEW_SECONDS",
    parse_float(minimum=0, maximum=300),
    5.0,
    "Seconds a sample's timestamp may be ahead of the server's clock.",
)


def parse_http_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return value


# Where `make run` keeps the token signing key pair (python -m shared.auth.keys var/auth).
AUTH_KEY_DIR = VAR_DIR / "auth"

# Every app verifies bearer tokens with monitor_app's public key; only monitor_app signs.
AUTH_PUBLIC_KEY_SETTING = Setting(
    "AUTH_PUBLIC_KEY_FILE",
    parse_path,
    AUTH_KEY_DIR / "verify-key.pem",
    "PEM file of the Ed25519 public key that verifies Vigil's bearer tokens.",
)


def load_settings(
    settings: Iterable[Setting], environ: Mapping[str, str] | None = None, dotenv: bool = True
) -> dict[str, Any]:
    """Parse `settings` from `environ` (default: os.environ after loading `.env`).

    Returns a mapping of variable name to parsed value, ready for `app.config.from_mapping`.
    """
    if environ is None:
        if dotenv:
            # Real environment variables win over the file.
            load_dotenv(PROJECT_ROOT / ".env", override=False)
        environ = os.environ
    values: dict[str, Any] = {}
    for setting in settings:
        raw = environ.get(setting.name)
        if raw is None:
            if setting.default is _REQUIRED:
                raise ConfigError(f"{setting.name}: required but not set")
            values[setting.name] = (
                setting.default() if callable(setting.default) else setting.default
            )
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.name}: {exc}") from None
    return values
