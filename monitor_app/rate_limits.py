"""Rate limits of the monitor API: per signed-in user, else per client address.

Checked after the access check, so the key is the caller it proved. The client address is
the connection's unless PROXY_FIX_X_FOR says how many proxies' X-Forwarded-For to believe
(shared.web_security): a client cannot reset its limit by sending one of its own.

Without Redis the limits cannot be counted. Reads go on, unlimited (a ward must keep seeing
its patients); changes are refused with 503 until Redis is back, so nobody can write
unlimited by waiting for an outage.

Quotas (`quota`) are limits of their own on one kind of change, such as creating
notifications, counted per signed-in user beside the general limit: every token of an account
and every address it calls from share one count.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from flask import Blueprint, Flask, current_app, request
from flask.typing import RouteCallable
from flask.wrappers import Response
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse
from limits.errors import StorageError
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from monitor_app.auth.authenticate import SAFE_METHODS
from shared.auth.principal import current_principal

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# How long a refused change waits before retrying while the limits cannot be counted.
STORAGE_RETRY_SECONDS = 10


def uncountable() -> ServiceUnavailable:
    """The refusal of a change whose limits cannot be counted (their storage is down)."""
    return ServiceUnavailable(
        "Rate limits cannot be checked right now; retry shortly.",
        retry_after=STORAGE_RETRY_SECONDS,
    )


def rate_limit_key() -> str:
    """Whose limit a request counts against: the signed-in user's, else the address's."""
    principal = current_principal()
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"address:{request.remote_addr}"


class FailClosedLimiter(Limiter):
    """Flask-Limiter, except that while its storage fails, unsafe requests are refused."""

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        try:
            super()._check_request_limit(callable_name, in_middleware)
        except RateLimitExceeded:
            raise
        except StorageError:
            if request.method in SAFE_METHODS:
                log.warning("rate limits unavailable: serving a read unlimited", exc_info=True)
                return
            log.warning("rate limits unavailable: refusing a change", exc_info=True)
            raise uncountable() from None


def init_rate_limits(
    app: Flask, exempt: Iterable[Blueprint | RouteCallable] = ()
) -> FailClosedLimiter:
    """The app's limiter (one per app: Flask-Limiter keeps the first app's settings), its
    exemptions, and the headers that tell a client where it stands."""
    limiter = FailClosedLimiter(rate_limit_key)
    for blueprint_or_view in exempt:
        limiter.exempt(blueprint_or_view)
    limiter.init_app(app)
    app.extensions["vigil.limiter"] = limiter

    @app.after_request
    def limit_headers(response: Response) -> Response:
        return _add_limit_headers(limiter, response)

    return limiter


def _add_limit_headers(limiter: Limiter, response: Response) -> Response:
    """X-RateLimit-* on every limited answer; Retry-After only on 429, where it is true.

    (Flask-Limiter's own headers put Retry-After on every answer, telling clients that were
    served to wait.) A storage failure here costs the headers, never the answer.
    """
    limit = limiter.current_limit
    if limit is None:
        return response
    try:
        reset_at, remaining = limit.reset_at, limit.remaining
    except StorageError:
        return response
    response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
    return response


def quota(setting: str, name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count each call of the view against the signed-in caller's quota `name`, whose limit
    is the setting `setting`; beyond it, 429 with Retry-After. Put it under the access check:
    the count is the user's it proved (an account's tokens and addresses share it)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            _spend_quota(current_app.config[setting], name)
            return view(*args, **kwargs)

        return counted

    return decorate


def _spend_quota(limit_value: str, name: str) -> None:
    limiter: FailClosedLimiter = current_app.extensions["vigil.limiter"]
    if not limiter.enabled:
        return
    principal = current_principal()
    if principal is None:  # the access check refuses such callers first
        raise RuntimeError("a quota needs a signed-in caller")
    limit, who = parse(limit_value), str(principal.user_id)
    try:
        if limiter.limiter.hit(limit, "quota", name, who):
            return
        reset_at = limiter.limiter.get_window_stats(limit, "quota", name, who).reset_time
    except StorageError:
        # Like the general limits: a change is refused while it cannot be counted.
        log.warning("quota unavailable: refusing a change", exc_info=True)
        raise uncountable() from None
    raise TooManyRequests(
        f"Quota exceeded: {limit_value} ({name}).",
        retry_after=max(1, int(reset_at - time.time())),
    )
