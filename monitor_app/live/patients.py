"""Which patients a stream shows: named in `?patients=` at the handshake, or later in a
subscribe message, `{"subscribe": {"patients": [<uuid>, …]}}` (`null`: the whole ward again).

A list is refused whole (the stream closes with 1008 and says why) when it is malformed,
empty, longer than WS_MAX_PATIENTS, or names a patient Vigil does not know. Every signed-in
caller with `patients:read` sees every patient of the one ward there is, so a known patient
is one the caller may see.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from monitor_app.patients.services import unknown_patients
from shared.db import db


class SubscriptionError(ValueError):
    """A list of patients the stream refuses; the message is the close reason (a close frame
    holds at most 123 bytes of it)."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A client's subscribe message: the patients it now shows, None for the whole ward."""

    patients: frozenset[uuid.UUID] | None


def patients_from_query(raw: str | None, limit: int) -> frozenset[uuid.UUID] | None:
    """The patients `?patients=` names, comma-separated; None without the parameter."""
    if raw is None:
        return None
    return _patients([part.strip() for part in raw.split(",")], limit)


def subscribe_message(text: Any, limit: int) -> Subscribe | None:
    """The subscribe message in `text`; None if it is none (the stream discards those)."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or "subscribe" not in message:
        return None
    body = message["subscribe"]
    if not isinstance(body, dict) or set(body) != {"patients"}:
        raise SubscriptionError('expected {"subscribe": {"patients": [<uuid>, ...] or null}}')
    listed = body["patients"]
    if listed is None:
        return Subscribe(None)
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise SubscriptionError("patients: expected a list of patient UUIDs, or null")
    return Subscribe(_patients(listed, limit))


def _patients(listed: list[str], limit: int) -> frozenset[uuid.UUID]:
    if len(listed) > limit:
        raise SubscriptionError(f"too many patients; at most {limit} per stream")
    malformed = SubscriptionError(f"patients: expected 1 to {limit} comma-separated UUIDs")
    patients = set()
    for item in listed:
        try:
            patient = uuid.UUID(item)
        except ValueError:
            raise malformed from None
        # Only the canonical form, as the API names patients (uuid.UUID also takes braces,
        # URNs and misplaced hyphens).
        if str(patient) != item.lower():
            raise malformed
        patients.add(patient)
    if not patients:
        raise malformed
    return frozenset(patients)


def check_known(patients: frozenset[uuid.UUID]) -> None:
    """Refuse `patients` if one of them is no patient of Vigil's."""
    # A session of its own, closed at once: the stream's would hold a connection for as long
    # as the stream lasts.
    with db.sessionmaker().begin() as session:
        unknown = unknown_patients(session, patients)
    if unknown:
        raise SubscriptionError(f"unknown patient {min(unknown)}")
