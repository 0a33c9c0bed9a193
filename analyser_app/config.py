"""analyser_app settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.config import (
    AUTH_PUBLIC_KEY_SETTING,
    COMMON_SETTINGS,
    REDIS_SETTINGS,
    ConfigError,
    Setting,
    parse_api_prefix,
    parse_float,
)

# Longer than any client should wait; a bigger value is a typo, not a simulation.
MAX_LATENCY = 60.0

ANALYSER_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    # Notification texts describe patients: only a bearer token with analysis:write sends one.
    AUTH_PUBLIC_KEY_SETTING,
    # Revoked tokens and disabled accounts are looked up there (shared/auth/revocation.py).
    *REDIS_SETTINGS,
    Setting("API_PREFIX", parse_api_prefix, "/api/v1"),
    # Seconds each analysis takes, drawn uniformly: the reference API answers in 1 to 3 s.
    Setting("ANALYSER_MIN_LATENCY", parse_float(minimum=0, maximum=MAX_LATENCY), 1.0),
    Setting("ANALYSER_MAX_LATENCY", parse_float(minimum=0, maximum=MAX_LATENCY), 3.0),
    # The fraction of requests answered 503, to exercise clients' retries.
    Setting("ANALYSER_FAILURE_RATE", parse_float(minimum=0, maximum=1), 0.0),
)


def check_latency(config: Mapping[str, Any]) -> None:
    """The two latency bounds must make a range; each parses fine on its own."""
    low, high = config["ANALYSER_MIN_LATENCY"], config["ANALYSER_MAX_LATENCY"]
    if low > high:
        raise ConfigError(
            f"ANALYSER_MIN_LATENCY: must be at most ANALYSER_MAX_LATENCY ({high}), got {low}"
        )
