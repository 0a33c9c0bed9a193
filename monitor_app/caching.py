"""Cached GET responses, invalidated by generation rather than by key.

Every cache key includes the current generation of a kind of data ("patients",
"notifications"). Whoever changes that data, in any process, bumps the generation after its
commit (shared/events.py), so every cached read of the kind is bypassed at once: a
notification marked read is never served unread afterwards, whichever worker cached it.
With Redis down, reads fall through to the database.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request
from redis import RedisError

from monitor_app.extensions import cache
from shared.auth.principal import Principal, current_principal
from shared.notifications import events

log = logging.getLogger(__name__)

_WARN_EVERY_SECONDS = 30.0
_last_warning = 0.0


def _warn_cache_down(exc: Exception) -> None:
    # One line per half-minute, not one per request, while Redis is down.
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        log.warning("cache unavailable; reading from the database", extra={"error": str(exc)})


def _cache_key(kind: str, suffix: str) -> str | None:
    """The key of `suffix` in the current generation of `kind`; None when Redis is down."""
    try:
        return f"{kind}:{events().generation(kind)}:{suffix}"
    except RedisError as exc:
        _warn_cache_down(exc)
        return None


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except RedisError as exc:
        _warn_cache_down(exc)
        return None


def _cache_set(key: str, value: Any, timeout: int) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except RedisError as exc:
        _warn_cache_down(exc)


def memoize(kind: str, suffix: str, compute: Callable[[], Any], timeout: int) -> Any:
    """`compute()`, cached under the current generation of `kind`."""
    key = _cache_key(kind, suffix)
    if key is not None:
        value = _cache_get(key)
        if value is not None:
            return value
    value = compute()
    if key is not None:
        _cache_set(key, value, timeout)
    return value


def caller_key(principal: Principal | None) -> str:
    """What a cached answer that depends on the caller is cached under: their id."""
    return "anonymous" if principal is None else f"user:{principal.user_id}"


def cached_response(kind: str, timeout: int | None = None, per_caller: bool = False) -> Callable:
    """Cache a GET view's 200 responses per URL (path and query) and generation of `kind`;
    `per_caller` also per signed-in user, for answers that differ between users.

    Goes outermost on the view (inside the access check), so it stores what the client
    gets: body and headers (X-Pagination included). `X-Cache: hit|miss` tells which it was.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            suffix = request.full_path
            if per_caller:
                suffix = f"{caller_key(current_principal())}:{suffix}"
            key = _cache_key(kind, suffix)
            if key is not None:
                hit = _cache_get(key)
                if hit is not None:
                    return Response(
                        hit["body"],
                        status=200,
                        mimetype=hit["mimetype"],
                        headers=[*hit["headers"], ("X-Cache", "hit")],
                    )
            response = current_app.make_response(view(*args, **kwargs))
            if key is not None and response.status_code == 200:
                headers = [
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in {"content-length", "x-request-id"}
                ]
                _cache_set(
                    key,
                    {
                        "body": response.get_data(),
                        "headers": headers,
                        "mimetype": response.mimetype,
                    },
                    timeout or current_app.config["CACHE_DEFAULT_TIMEOUT"],
                )
            response.headers["X-Cache"] = "miss"
            return response

        return wrapper

    return decorator
