"""Worker settings: where the AI API is, and how hard to try."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.config import (
    AUTH_KEY_DIR,
    COMMON_SETTINGS,
    DATABASE_SETTING,
    REDIS_SETTINGS,
    WARD_SETTING,
    ConfigError,
    Setting,
    parse_float,
    parse_https_url,
    parse_int,
    parse_nonempty,
    parse_optional,
    parse_path,
)

# Where `make run` writes the worker's API token (`python -m monitor_app tokens worker FILE`).
DEFAULT_AI_API_TOKEN_FILE = AUTH_KEY_DIR / "ai-api-token"

WORKER_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    DATABASE_SETTING,
    *REDIS_SETTINGS,
    # The reference analyser that `make run` starts; point it at another provider here.
    # Notification texts describe patients: https, unless the analyser is on this machine.
    Setting("AI_API_URL", parse_https_url, "http://127.0.0.1:8090/api/v1/analyse"),
    # The bearer token the worker sends: for the reference analyser, an integration's API token
    # holding analysis:write. A file (mode 0600), so it stays out of the environment (`ps e`);
    # AI_API_TOKEN, if set, wins: an external provider's key, say.
    Setting("AI_API_TOKEN_FILE", parse_path, DEFAULT_AI_API_TOKEN_FILE),
    Setting("AI_API_TOKEN", parse_optional(str.strip), None),
    Setting("AI_API_TIMEOUT", parse_float(exclusive_minimum=0, maximum=300), 10.0),
    # Retries after a timeout, a connection failure or a 5xx, with doubling back-off.
    Setting("AI_API_MAX_RETRIES", parse_int(0, 20), 3),
    Setting("AI_API_RETRY_BACKOFF", parse_float(minimum=0, maximum=300), 2.0),
    # A notification pending or processing this long is re-queued: its worker died, or
    # Redis lost the queue. Longer than a whole run of retries.
    Setting("ANALYSIS_STALE_SECONDS", parse_float(exclusive_minimum=0, maximum=86400), 120.0),
    Setting("SWEEP_INTERVAL_SECONDS", parse_float(exclusive_minimum=0, maximum=3600), 30.0),
    # Claimed this many times without finishing (it kills its worker?): give up on it.
    Setting("ANALYSIS_MAX_ATTEMPTS", parse_int(1, 100), 8),
    # A high alarm nobody acknowledged is escalated after this long, and again after each
    # further period, up to ALARM_ESCALATION_MAX_LEVEL; acknowledging it stops that.
    Setting("ALARM_ESCALATION_SECONDS", parse_float(exclusive_minimum=0, maximum=3600), 60.0),
    Setting("ALARM_ESCALATION_MAX_LEVEL", parse_int(1, 100), 3),
    # How often each worker looks for alarms to escalate and monitors gone silent.
    Setting("ALARM_CHECK_SECONDS", parse_float(exclusive_minimum=0, maximum=300), 5.0),
    # A monitor sends every METRICS_INTERVAL s; STALE_AFTER_INTERVALS without a sample raise a
    # technical "no data" alarm (the dashboard greys the tile after as many).
    Setting("METRICS_INTERVAL", parse_float(exclusive_minimum=0, maximum=3600), 5.0),
    Setting("STALE_AFTER_INTERVALS", parse_int(1, 1000), 3),
    # A monitor silent for longer was disconnected on purpose (the patient left): no alarm.
    Setting("NO_DATA_ALARM_WINDOW_SECONDS", parse_float(exclusive_minimum=0), 3600.0),
    WARD_SETTING,
    # Prometheus scrapes the worker here (it has no web app); 0 turns the endpoint off.
    Setting("METRICS_HOST", parse_nonempty, "127.0.0.1"),
    Setting("METRICS_PORT", parse_int(0, 65535), 8091),
)


def check_stale_after_timeout(config: Mapping[str, Any]) -> None:
    """A notification still being analysed must not look stale, or it is analysed twice."""
    if config["ANALYSIS_STALE_SECONDS"] <= config["AI_API_TIMEOUT"]:
        raise ConfigError(
            f"ANALYSIS_STALE_SECONDS: must exceed AI_API_TIMEOUT "
            f"({config['AI_API_TIMEOUT']:g}), got "
            f"{config['ANALYSIS_STALE_SECONDS']:g}"
        )


def ai_api_token(config: Mapping[str, Any]) -> str:
    """The AI API's bearer token: AI_API_TOKEN, else the first line of AI_API_TOKEN_FILE.

    Read when the worker starts: without one, every analysis would be refused, so it does not
    start. The messages name the file, never what is in it.
    """
    if config["AI_API_TOKEN"]:
        return config["AI_API_TOKEN"]
    path: Path = config["AI_API_TOKEN_FILE"]
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"AI_API_TOKEN_FILE: no token at {path}; `python -m monitor_app tokens worker "
            f"{path}` makes one (`make run` does), or set AI_API_TOKEN"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"AI_API_TOKEN_FILE: cannot read {path}: {exc}") from None
    if not token or len(token.splitlines()) != 1:
        raise ConfigError(f"AI_API_TOKEN_FILE: {path} must hold one token on one line")
    return token
