"""Cached GET responses, invalidated by generation rather than by key.

Every cache key includes the current generation of a kind of data ("patients",
"notifications"). Whoever changes that data, in any process, bumps the generation after its
commit (shared/events.py), so every cached read of the kind is bypassed at once: a
notification marked read is never served unread afterwards, whichever worker cached it.
With Redis down, reads fall through to the database.

A response is cached under what the view reads, never under the raw URL: its endpoint, its
path arguments and its query arguments as the view's own schemas parse them, canonicalised
and hashed. Parameters the view does not declare are dropped before the key is made, so a
flood of junk query strings makes no new entries (each would otherwise be a Redis key).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, current_app, request
from marshmallow import EXCLUDE, ValidationError
from redis import RedisError
from webargs.flaskparser import FlaskParser

from monitor_app.json_cache import JsonCache
from shared.auth.principal import Principal, current_principal
from shared.notifications import events

log = logging.getLogger(__name__)

T = TypeVar("T")

_WARN_EVERY_SECONDS = 30.0
_last_warning = 0.0
# Headers not replayed from the cache: recomputed for each response (and a cookie is one
# caller's, never to be handed to the next).
_PER_RESPONSE_HEADERS = frozenset({"content-length", "x-request-id", "set-cookie"})


def _warn_cache_down(exc: Exception) -> None:
    # One line per half-minute, not one per request, while Redis is down.
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        log.warning("cache unavailable; reading from the database", extra={"error": str(exc)})


def response_cache() -> JsonCache:
    return current_app.extensions["vigil.cache"]


def _cache_key(kind: str, suffix: str) -> str | None:
    """The key of `suffix` in the current generation of `kind`; None when Redis is down."""
    try:
        return f"{kind}:{events().generation(kind)}:{suffix}"
    except RedisError as exc:
        _warn_cache_down(exc)
        return None


def _cache_get(key: str) -> Any:
    try:
        return response_cache().get(key)
    except RedisError as exc:
        _warn_cache_down(exc)
        return None


def _cache_set(key: str, value: Any, timeout: int | None) -> None:
    try:
        response_cache().set(key, value, timeout)
    except RedisError as exc:
        _warn_cache_down(exc)


def cached_value(
    kind: str,
    suffix: str,
    compute: Callable[[], T],
    dump: Callable[[T], Any],
    load: Callable[[Any], T | None],
    timeout: int | None = None,
) -> tuple[T, bool]:
    """`compute()` cached under the current generation of `kind`, and whether it was a hit.

    `dump` makes the JSON stored; `load` reads it back, None for anything it does not hold
    (a value planted or left by another version is recomputed, never trusted).
    """
    key = _cache_key(kind, suffix)
    if key is not None:
        value = load(_cache_get(key))
        if value is not None:
            return value, True
    value = compute()
    if key is not None:
        _cache_set(key, dump(value), timeout)
    return value, False


def memoize(
    kind: str, suffix: str, compute: Callable[[], Any], timeout: int | None = None, of: type = int
) -> Any:
    """`compute()`, cached under the current generation of `kind`; a cached value that is
    not an `of` is recomputed."""
    value, _ = cached_value(
        kind,
        suffix,
        compute,
        dump=lambda value: value,
        load=lambda value: value if isinstance(value, of) else None,
        timeout=timeout,
    )
    return value


def caller_key(principal: Principal | None) -> str:
    """What a cached answer that depends on the caller is cached under: their id."""
    return "anonymous" if principal is None else f"user:{principal.user_id}"


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A 200 response as stored: its body as text (JSON holds no bytes), type and headers."""

    body: str
    mimetype: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, response: Response) -> CachedResponse | None:
        """The response to store; None if its body is not text."""
        try:
            body = response.get_data().decode("utf-8")
        except UnicodeDecodeError:
            return None
        headers = tuple(
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in _PER_RESPONSE_HEADERS
        )
        return cls(body, response.mimetype or "application/json", headers)

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "mimetype": self.mimetype, "headers": self.headers}

    @classmethod
    def from_json(cls, value: Any) -> CachedResponse | None:
        """The stored response; None for anything else found under its key."""
        try:
            headers = tuple((str(name), str(text)) for name, text in value["headers"])
            body, mimetype = value["body"], value["mimetype"]
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(body, str) or not isinstance(mimetype, str):
            return None
        return cls(body, mimetype, headers)

    def response(self) -> Response:
        return Response(
            self.body,
            status=200,
            mimetype=self.mimetype,
            headers=[*self.headers, ("X-Cache", "hit")],
        )


class _QueryParser(FlaskParser):
    """Parses the query as the view will; an invalid one is left to the view to refuse."""

    def handle_error(self, error: ValidationError, *args: Any, **kwargs: Any) -> None:
        raise error


_parser = _QueryParser(unknown=EXCLUDE)


def query_schemas(view: Callable) -> list[Any]:
    """The schemas of the query arguments `view` declares (flask-smorest's `arguments` and
    `paginate`); TypeError if it reads arguments from anywhere else, which a key of path and
    query alone would not tell apart."""
    doc = getattr(view, "_apidoc", {})
    schemas = []
    for parameter in doc.get("arguments", {}).get("parameters", []):
        if parameter.get("in") != "query":
            raise TypeError(f"cannot cache {view.__name__}: it reads {parameter.get('in')}")
        schemas.append(parameter["schema"])
    if "pagination" in doc:
        schemas.append(doc["pagination"]["parameters"]["schema"])
    return schemas


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "__dict__"):  # flask-smorest's PaginationParameters
        return _canonical(vars(value))
    return str(value)  # UUIDs, datetimes: their one canonical text


def request_key(schemas: list[Any]) -> str | None:
    """A digest of the endpoint, its path arguments and its parsed query arguments; None if
    the query does not parse (the view answers 422)."""
    try:
        query = [_parser.parse(schema, request, location="query") for schema in schemas]
    except ValidationError:
        return None
    what = [request.endpoint, _canonical(request.view_args or {}), _canonical(query)]
    text = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cached_response(kind: str, timeout: int | None = None, per_caller: bool = False) -> Callable:
    """Cache a GET view's 200 responses per request key (endpoint, path and validated query
    arguments) and generation of `kind`; `per_caller` also per signed-in user, for answers
    that differ between users.

    Goes outermost on the view (inside the access check), so it stores what the client
    gets: body and headers (X-Pagination included). `X-Cache: hit|miss` tells which it was.
    """

    def decorator(view: Callable) -> Callable:
        schemas = query_schemas(view)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            suffix = request_key(schemas)
            key = None
            if suffix is not None:
                if per_caller:
                    suffix = f"{caller_key(current_principal())}:{suffix}"
                key = _cache_key(kind, suffix)
            if key is not None:
                hit = CachedResponse.from_json(_cache_get(key))
                if hit is not None:
                    return hit.response()
            response = current_app.make_response(view(*args, **kwargs))
            if key is not None and response.status_code == 200:
                stored = CachedResponse.of(response)
                if stored is not None:
                    _cache_set(key, stored.to_json(), timeout)
            response.headers["X-Cache"] = "miss"
            return response

        return wrapper

    return decorator
