"""The opaque `_cursor` of an Observation search's next page.

It names where the previous page stopped: the time of its last sample and how far into that
sample's Observations it got, with the patient and the order of the search. It is not signed:
it is read strictly, and the search checks that its patient and order are the search's own, so
a forged one can only start a page somewhere within a history the caller may read anyway.
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
MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Cursor:
    patient: uuid.UUID
    newest_first: bool
    timestamp: datetime  # the last sample served
    position: int  # the index in KIND_ORDER of the last of its Observations served


def write_cursor(cursor: Cursor) -> str:
    text = "~".join(
        (
            _VERSION,
            str(cursor.patient),
            "d" if cursor.newest_first else "a",
            cursor.timestamp.astimezone(UTC).isoformat(),
            str(cursor.position),
        )
    )
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_cursor(text: str) -> Cursor:
    """The cursor a next link carried; 400 for anything this server did not write."""
    try:
        if len(text) > MAX_CURSOR_LENGTH or not text.isascii():
            raise ValueError
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        version, patient, order, moment, position = decoded.split("~")
        timestamp = datetime.fromisoformat(moment)
        if (
            version != _VERSION
            or order not in ("a", "d")
            or timestamp.utcoffset() is None
            or not position.isdigit()
            or int(position) >= len(KIND_ORDER)
        ):
            raise ValueError
        return Cursor(uuid.UUID(patient), order == "d", timestamp.astimezone(UTC), int(position))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Refused("Not a _cursor this server gave: follow the next link as given.") from None
