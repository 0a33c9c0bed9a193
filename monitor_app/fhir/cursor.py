"""The opaque `_cursor` of a search's next page.

An Observation search's names where the previous page stopped: the time of its last sample and
how far into that sample's Observations it got, with the patient and the order of the search.
A Patient search's (a few patients at most: by _id or identifier) is how many were served.
Neither is signed: each is read strictly, and an Observation search checks that its patient and
order are the search's own, so a forged one can only start a page somewhere within what the
caller may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor_app.fhir.outcomes import Refused
from monitor_app.fhir.vitals import KIND_ORDER

_VERSION = "1"
_PATIENTS = "p"
MAX_CURSOR_LENGTH = 200
_FORGED = "Not a _cursor this server gave: follow the next link as given."


@dataclass(frozen=True, slots=True)
class Cursor:
    patient: uuid.UUID
    newest_first: bool
    timestamp: datetime  # the last sample served
    position: int  # the index in KIND_ORDER of the last of its Observations served


def write_cursor(cursor: Cursor) -> str:
    return _encode(
        str(cursor.patient),
        "d" if cursor.newest_first else "a",
        cursor.timestamp.astimezone(UTC).isoformat(),
        str(cursor.position),
    )


def read_cursor(text: str) -> Cursor:
    """The cursor a next link carried; 400 for anything this server did not write."""
    try:
        patient, order, moment, position = _decode(text, 4)
        timestamp = datetime.fromisoformat(moment)
        if (
            order not in ("a", "d")
            or timestamp.utcoffset() is None
            or not position.isdigit()
            or int(position) >= len(KIND_ORDER)
        ):
            raise ValueError
        return Cursor(uuid.UUID(patient), order == "d", timestamp.astimezone(UTC), int(position))
    except ValueError:
        raise Refused(_FORGED) from None


def write_patients_cursor(served: int) -> str:
    return _encode(_PATIENTS, str(served))


def read_patients_cursor(text: str, limit: int) -> int:
    """How many patients the pages before served; at most `limit` (what a search can match)."""
    try:
        kind, served = _decode(text, 2)
        if kind != _PATIENTS or not served.isdigit() or int(served) > limit:
            raise ValueError
        return int(served)
    except ValueError:
        raise Refused(_FORGED) from None


def _encode(*parts: str) -> str:
    text = "~".join((_VERSION, *parts))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(text: str, count: int) -> list[str]:
    """The `count` parts after the version; ValueError for anything this server did not write."""
    if len(text) > MAX_CURSOR_LENGTH or not text.isascii():
        raise ValueError
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError from None
    version, *parts = decoded.split("~")
    if version != _VERSION or len(parts) != count:
        raise ValueError
    return parts
