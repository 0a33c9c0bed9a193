"""JSON bodies written by msgspec, byte for byte as Flask's JSON provider would write them.

msgspec encodes several times faster than the provider's json.dumps, and a Struct is made
without a marshmallow dump first. The provider sorts keys, and msgspec writes a Struct's
fields in their order, so the Structs given here list their fields in the order of the names
they are shown under; each endpoint's test holds its bytes to the provider's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from flask import Response, current_app

_ENCODER = msgspec.json.Encoder()


def utc_text(moment: datetime) -> str:
    """A UTC time as fields.DateTime(format="iso") writes it, e.g. 2025-01-31T08:00:00+00:00;
    a time without a zone is taken as UTC (as shared.db.UTCDateTime stores it)."""
    return moment.isoformat() if moment.tzinfo is not None else f"{moment.isoformat()}+00:00"


def json_body(value: Any) -> bytes:
    """The body `current_app.json.response` would write for `value`, its trailing newline
    included."""
    return _ENCODER.encode(value) + b"\n"


def json_response(value: Any) -> Response:
    """A response of `json_body(value)`: passed through @blp.response unserialised, so the
    view's schema documents it without dumping it."""
    return Response(json_body(value), mimetype=current_app.json.mimetype)
