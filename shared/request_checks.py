"""What a request may carry, checked before any view reads it: how big its body is, how deep
its JSON nests, and text that no database can store.

Every app parses JSON twice over: Flask's `request.get_json()` and webargs (flask-smorest's
`@blp.arguments`), which calls `json.loads` itself. Both recurse once per level of nesting,
so `[[[[…]]]]` 100,000 deep ends in a RecursionError, a 500. Checking here, once, covers both
and every route to come.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from flask import Flask, request
from flask_smorest import abort

from shared.config import Setting, parse_int

# Far deeper than any Vigil document (three levels at most), far shallower than the
# interpreter's recursion limit.
MAX_JSON_DEPTH = 32

# Werkzeug's form parsing, bounded: the login form has four fields of a few hundred bytes,
# and no Vigil form needs more (Flask's defaults are 1,000 parts and 500 kB).
FORM_LIMITS: dict[str, int] = {"MAX_FORM_PARTS": 16, "MAX_FORM_MEMORY_SIZE": 16 * 1024}

# NUL: PostgreSQL's text cannot hold it (psycopg: "PostgreSQL text fields cannot contain NUL
# (0x00) bytes"), SQLite can, so the two backends would answer differently. A lone surrogate
# (JSON's "\ud800") is not a character: it cannot be encoded as UTF-8 for either database, a
# hash or a log line.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Must not contain NUL characters or unpaired surrogates."

# A JSON string, escapes included; the bytes `"` and `\` never occur inside a multi-byte UTF-8
# sequence, so this finds strings in the raw body without decoding it. An unterminated one runs
# to the end: a match that could fail would be retried from every later quote, and a body of
# escaped quotes would then take quadratic time (40 kB, half a minute).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# Opening brackets step one level in, closing ones out (0xff is -1 as a signed byte); every
# other byte stays where it is.
_DEPTH_STEPS = bytes(1 if byte in b"[{" else 0xFF if byte in b"]}" else 0 for byte in range(256))


def storable(text: str) -> str:
    """`text` with each NUL and lone surrogate replaced by U+FFFD, for what must be recorded
    even when the request is refused (the audit trail's User-Agent)."""
    return _UNSTORABLE.sub("\ufffd", text)


def max_content_length(default: int) -> Setting:
    """The `MAX_CONTENT_LENGTH` setting: the largest request body, in bytes, an app accepts
    (a larger one is refused with 413, chunked or not)."""
    return Setting(
        "MAX_CONTENT_LENGTH",
        parse_int(1024, 64 * 1024 * 1024),
        default,
        "Largest request body in bytes; a larger one is answered 413.",
    )


def register_request_checks(app: Flask) -> None:
    """Refuse, before the view (and before authentication: it needs nothing but the request),
    an oversized body (413), JSON nested too deep or that is not plain JSON (400), and
    unstorable text in headers, the query string, JSON or a form (422)."""
    app.before_request(check_request)


def check_request() -> None:
    """The checks `register_request_checks` installs, on the current request."""
    # An unknown URL or method stays a 404 or 405, whatever it carries.
    if request.routing_exception is not None:
        return
    limit = request.max_content_length
    if request.mimetype == "application/x-www-form-urlencoded":
        # Werkzeug reads such a form whole, and bounds only multipart ones by
        # MAX_FORM_MEMORY_SIZE: the same bound for both.
        limit = min(limit or math.inf, request.max_form_memory_size or math.inf)
    if limit is not None and (request.content_length or 0) > limit:
        # Werkzeug would refuse it only once something reads the body; refuse it always.
        _too_large(limit)
    if limit is not None and request.content_length is None:
        # A chunked body: Werkzeug stops reading it at MAX_CONTENT_LENGTH without a word, and
        # the truncated body would be parsed. One that fills the limit may have been cut.
        if len(request.get_data(cache=True)) >= limit:
            _too_large(limit)
    if request.is_json:
        document = load_json(request.get_data(cache=True))
        _refuse_unstorable("json", _json_strings(document))
    # Headers too: the audit trail and the sessions store the User-Agent.
    _refuse_unstorable("headers", (((name,), value) for name, value in request.headers.items()))
    _refuse_unstorable("query", _multidict_strings(request.args))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _refuse_unstorable("form", _multidict_strings(request.form))


def _too_large(limit: float) -> None:
    abort(413, message=f"The request body is larger than {limit:.0f} bytes.")


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of the JSON text `body` nest, counted without recursion
    (strings, whose brackets do not count, are skipped)."""
    steps = _JSON_STRING.sub(b"", body).translate(_DEPTH_STEPS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def load_json(body: bytes) -> Any:
    """`body` parsed as strict JSON, or 400: UTF-8, nested at most MAX_JSON_DEPTH deep, each
    key once per object, finite numbers only (no NaN, Infinity or 1e999), integers of at most
    Python's 4300 digits. An empty body is None: webargs reports the missing fields."""
    if not body.strip():
        return None
    if json_depth(body) > MAX_JSON_DEPTH:
        _invalid_json(f"nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_integer,
        )
    except UnicodeDecodeError:
        _invalid_json("not UTF-8.")
    except ValueError as exc:  # JSONDecodeError, and what the hooks below raise
        _invalid_json(f"{exc}.")


def _invalid_json(reason: str) -> None:
    # webargs' own errors for JSON it cannot parse, which clients already read; the reason
    # goes in the message.
    abort(400, message=f"Invalid JSON body: {reason}", errors={"json": ["Invalid JSON body."]})


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        # Which one wins differs between parsers: a proxy and Vigil could read different keys.
        raise ValueError("a key appears twice in one object")
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Past sys.get_int_max_str_digits() (4300): converting it would take quadratic time.
        raise ValueError(f"an integer of {len(text)} digits is too long") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


Located = tuple[tuple[str | int, ...], str]


def _json_strings(document: Any) -> Iterator[Located]:
    """Every string of a parsed JSON document, keys included, with where it is."""
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield (*path, key), key
                pending.append(((*path, key), item))
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))


def _multidict_strings(values: Any) -> Iterator[Located]:
    for key, value in values.items(multi=True):
        yield (key,), key
        if isinstance(value, str):
            yield (key,), value


def _refuse_unstorable(location: str, strings: Iterator[Located]) -> None:
    """422 naming each place where a string holds NUL or a lone surrogate, as webargs names
    the fields it refuses: `{"json": {"title": [...]}}`."""
    errors: dict[str | int, Any] = {}
    for path, value in strings:
        if not _UNSTORABLE.search(value):
            continue
        node: Any = errors
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break  # a key that is itself refused: what lies under it goes unsaid
        else:
            node.setdefault(path[-1] if path else "_schema", [UNSTORABLE_MESSAGE])
    if errors:
        abort(
            422, message="The request holds text that cannot be stored.", errors={location: errors}
        )
