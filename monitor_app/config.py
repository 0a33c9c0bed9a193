"""Settings of the monitor API: the shared ones, its database and its URL prefix."""

from __future__ import annotations

from typing import Any

from shared.app import OPENAPI_DEFAULTS
from shared.auth.openapi import BEARER_SCHEME
from shared.config import (
    AUTH_KEY_DIR,
    CLOCK_SKEW_SETTING,
    COMMON_SETTINGS,
    DATABASE_SETTING,
    REDIS_SETTINGS,
    RedisRole,
    Setting,
    parse_api_prefix,
    parse_bool,
    parse_float,
    parse_http_url,
    parse_int,
    parse_nonempty,
    parse_optional,
    parse_path,
    redis_url,
)


def parse_rate_limit(raw: str) -> str:
    """A Flask-Limiter limit string such as '600 per minute' or '10/second;1000/hour'."""
    from limits import parse_many

    value = raw.strip()
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"expected a limit like '600 per minute', got {raw!r}") from None
    return value


def parse_role_map(raw: str) -> dict[str, str]:
    """'group=role,group2=role2' as a mapping; each role one of Vigil's people roles."""
    from shared.auth.roles import PEOPLE

    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        name, _, role = pair.partition("=")
        if not name.strip() or role.strip() not in {r.value for r in PEOPLE}:
            raise ValueError(f"expected 'claim-value=admin|clinician|viewer', got {pair!r}")
        mapping[name.strip()] = role.strip()
    return mapping


# The API's own bound on a silence, whatever ALARM_SILENCE_MAX_SECONDS says.
SILENCE_LIMIT_SECONDS = 120

MONITOR_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    DATABASE_SETTING,
    CLOCK_SKEW_SETTING,
    Setting(
        "API_PREFIX",
        parse_api_prefix,
        "/api/v1",
        "Path under which the patient and metric endpoints are served.",
    ),
    *REDIS_SETTINGS,
    Setting(
        "RATE_LIMIT",
        parse_rate_limit,
        "1200 per minute",
        "Requests one signed-in user (or, signed out, one client address) may make to the API.",
    ),
    Setting("RATE_LIMIT_ENABLED", parse_bool, True),
    Setting(
        "NOTIFICATION_QUOTA",
        parse_rate_limit,
        "60 per minute",
        "Notifications one user may create through the API (whatever their tokens or "
        "addresses), beside RATE_LIMIT: each is queued for analysis.",
    ),
    Setting(
        "ALARM_SILENCE_MAX_SECONDS",
        parse_int(1, SILENCE_LIMIT_SECONDS),
        SILENCE_LIMIT_SECONDS,
        "The longest an alarm may be silenced at once; 2 minutes at most, as for a bedside "
        "monitor's audio pause, so a silenced alarm is heard again while it lasts.",
    ),
    Setting(
        "CACHE_SECONDS",
        parse_int(1, 86400),
        60,
        "Longest a cached read lives; changes invalidate it sooner.",
    ),
    Setting(
        "WS_MAX_CLIENTS",
        parse_int(1, 10000),
        1000,
        "WebSocket clients per gunicorn worker. On gevent's worker (the Procfile's) a stream "
        "is a greenlet; on a threaded worker it holds one of the threads, so there a worker "
        "takes at most half its threads' worth whatever this says.",
    ),
    Setting(
        "WS_MAX_CLIENTS_PER_USER",
        parse_int(1, 10000),
        4,
        "WebSocket clients one user (or integration token's user) may have per worker.",
    ),
    Setting(
        "WS_CLINICIAN_SEATS",
        parse_int(0, 10000),
        4,
        "Of a worker's WebSocket seats, how many only clinicians and admins may take: "
        "viewers and integrations cannot lock the station out.",
    ),
    Setting(
        "WS_SESSION_CHECK_SECONDS",
        parse_float(exclusive_minimum=0, maximum=300),
        5.0,
        "How often a WebSocket stream re-checks its session or token; one that no longer "
        "holds (signed out, idle, account disabled, token revoked) is closed.",
    ),
    Setting(
        "WS_PING_SECONDS",
        parse_float(exclusive_minimum=0, maximum=300),
        25.0,
        "How often the server pings each WebSocket client; one that has not answered the "
        "last ping by the next is dropped (1008 'Ping/Pong timeout').",
    ),
    Setting(
        "WS_VITALS_COALESCE_SECONDS",
        parse_float(minimum=0, maximum=5),
        0.25,
        "How long the live hub gathers `vitals` events into one message per stream; a "
        "thousand dashboards are then sent a few messages a second each, not one per batch "
        "the consumers store. 0 sends each event as it comes.",
    ),
    Setting(
        "WS_MAX_PATIENTS",
        parse_int(1, 1000),
        100,
        "Patients one WebSocket stream may subscribe to (`?patients=` or a subscribe "
        "message); without a subscription it streams the whole ward.",
    ),
    Setting(
        "METRICS_INTERVAL",
        parse_float(exclusive_minimum=0, maximum=3600),
        5.0,
        "Seconds between a patient's samples; the dashboard marks a patient stale after "
        "STALE_AFTER_INTERVALS of them without one.",
    ),
    Setting("STALE_AFTER_INTERVALS", parse_int(1, 1000), 3),
    Setting(
        "AUTH_PRIVATE_KEY_FILE",
        parse_path,
        AUTH_KEY_DIR / "signing-key.pem",
        "PEM file of the Ed25519 key that signs tokens (and, derived, the session cookie).",
    ),
    Setting(
        "ACCESS_TOKEN_SECONDS",
        parse_int(60, 86400),
        900,
        "Lifetime of the access tokens POST /api/v1/auth/token returns.",
    ),
    Setting(
        "SESSION_IDLE_SECONDS",
        parse_int(10, 86400),
        900,
        "A dashboard session unused this long ends; the browser is sent to /login.",
    ),
    Setting(
        "LOGIN_MAX_FAILURES",
        parse_int(1, 100),
        5,
        "Failed sign-ins in a row after which an account refuses passwords for a while.",
    ),
    Setting("LOGIN_LOCKOUT_SECONDS", parse_int(1, 86400), 900, "How long that lockout lasts."),
    Setting(
        "PUBLIC_URL",
        parse_optional(parse_http_url),
        None,
        "Where browsers reach Vigil, e.g. https://vigil.hospital.example: single sign-on's "
        "callback is built from it (never from a request's Host), and pages served there may "
        "make changes even if a proxy passes on another Host.",
    ),
    # Single sign-on with the hospital's OpenID Connect provider; off without OIDC_ISSUER.
    Setting(
        "OIDC_ISSUER",
        parse_optional(parse_http_url),
        None,
        "The identity provider's issuer URL (its /.well-known/openid-configuration is read).",
    ),
    Setting("OIDC_CLIENT_ID", parse_nonempty, "vigil"),
    Setting("OIDC_CLIENT_SECRET", parse_optional(parse_nonempty), None),
    Setting(
        "OIDC_ROLE_CLAIM",
        parse_nonempty,
        "vigil_role",
        "The ID-token claim (a string or a list) that says the user's role.",
    ),
    Setting(
        "OIDC_ROLE_MAP",
        parse_role_map,
        {},
        "Claim values to roles, e.g. 'icu-nurses=clinician,it-admins=admin'; without it the "
        "claim must name the role.",
    ),
    Setting(
        "SESSION_COOKIE_SECURE",
        parse_bool,
        False,
        "Send the session cookie over HTTPS only: set it wherever Vigil is served over TLS.",
    ),
)

# Page sizes are part of the documented API contract, fixed when the views are declared.
PATIENTS_PAGE_SIZE = 50
PATIENTS_MAX_PAGE_SIZE = 200
METRICS_LIMIT = 100
METRICS_MAX_LIMIT = 1000
# The longest window one CSV export covers: a month of one patient's samples is enough for a
# quality review, and an API holding health data hands out nothing unbounded in one request.
EXPORT_MAX_SPAN_DAYS = 31
NOTIFICATIONS_PAGE_SIZE = 50
NOTIFICATIONS_MAX_PAGE_SIZE = 200
ALARMS_PAGE_SIZE = 50
ALARMS_MAX_PAGE_SIZE = 200

# The live stream is the server's to send: a client message longer than this, beside the room
# a subscribe message needs for its uuids, closes it with 1009 (simple-websocket would
# otherwise buffer any size, and the memory stays taken).
WS_CLIENT_MESSAGE_BYTES = 1024
# One uuid in a subscribe message's list: 36 characters, its quotes, a comma and a space.
WS_BYTES_PER_PATIENT = 40


def ws_client_message_bytes(max_patients: int) -> int:
    """The longest message a stream takes: a subscribe message naming `max_patients`."""
    return WS_CLIENT_MESSAGE_BYTES + WS_BYTES_PER_PATIENT * max_patients


# Where the app serves Swagger UI's own files, so /docs needs no CDN.
SWAGGER_UI_ASSETS_URL = "/docs/assets"

# flask-smorest reads these from app.config.
API_DOCS: dict[str, Any] = {
    **OPENAPI_DEFAULTS,
    "API_TITLE": "Vigil monitor API",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": f"{SWAGGER_UI_ASSETS_URL}/",
    # Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "ICU patients, their vital signs and NEWS2 scores, and the notifications to "
                "clinicians with their AI analysis. Live updates stream on the WebSocket "
                "`/api/v1/ws`. Timestamps are "
                "ISO-8601 in UTC. Every error answers with the JSON body "
                "`{code, status, message, errors}`; too many requests answer 429 with "
                "`Retry-After`. Every route but `/health` and `POST /api/v1/auth/token` needs "
                "a bearer token (or the dashboard's session cookie): without one it answers "
                "401, and 403 to a caller whose role may not."
            ),
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": BEARER_SCHEME,
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "vigil_session",
                    "description": "The dashboard's signed session cookie.",
                },
            },
        },
        # Either credential; the operations that need none say `security: []`.
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
    },
}


def extension_config(config: dict[str, Any]) -> dict[str, Any]:
    """Flask-Limiter's and Flask-Sock's settings, derived from Vigil's."""
    namespace = config["REDIS_NAMESPACE"]
    return {
        "RATELIMIT_ENABLED": config["RATE_LIMIT_ENABLED"],
        "RATELIMIT_DEFAULT": config["RATE_LIMIT"],
        # The cache's user: monitor_app alone counts, the windows expire as cached reads do
        # (so volatile-lru may evict one: its count starts again), and the events user, which
        # every app holds, cannot be made to rewrite them.
        "RATELIMIT_STORAGE_URI": redis_url(config, RedisRole.CACHE),
        # Redis's errors as limits' StorageError: monitor_app.rate_limits tells them apart
        # from the app's own, serving reads and refusing changes while Redis is down.
        "RATELIMIT_STORAGE_OPTIONS": {
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
            "wrap_exceptions": True,
            # Every window's key, under the prefix the cache user's ACL allows.
            "key_prefix": f"{namespace}:ratelimit",
        },
        # monitor_app.rate_limits sends them: Flask-Limiter's put Retry-After on every answer.
        "RATELIMIT_HEADERS_ENABLED": False,
        # (The in-memory fallback would start a timer thread in the factory, before gunicorn
        # forks, and count each worker apart.)
        "RATELIMIT_SWALLOW_ERRORS": False,
        "SOCK_SERVER_OPTIONS": {
            # simple-websocket closes a stream whose client has not answered its last ping.
            "ping_interval": config["WS_PING_SECONDS"],
            "max_message_size": ws_client_message_bytes(config["WS_MAX_PATIENTS"]),
        },
    }
