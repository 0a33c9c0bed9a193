"""Turn raw Kafka message bytes into a validated sample, or say exactly why not.

The usual message takes msgspec's quick path (shared.sample); the rest go through the
marshmallow schema, which loads the odd valid one and words the dead-letter reasons.

Whatever the bytes, the answer is a sample or an InvalidSample: a message that raised anything
else would fail its whole batch, which is then read again, and fail again, forever.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError

from shared.sample import VitalsSample, decode_vitals
from shared.schemas import MAX_MESSAGE_BYTES, vitals_schema

# How far ahead of this server's clock a sample may be stamped (MAX_CLOCK_SKEW_SECONDS).
DEFAULT_CLOCK_SKEW = timedelta(seconds=5)

# Text the databases cannot store (NUL in PostgreSQL, lone surrogates in either: neither
# encodes to UTF-8) or that no name holds: control characters. Stored as given, such a name
# failed the insert of its batch, which was then retried for ever.
_UNSTORABLE_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class InvalidSample(ValueError):  # noqa: N818  (a reason, not a crash)
    """The message can never be stored; the message is the dead-letter reason."""


def decode_sample(
    value: bytes | None,
    max_clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    max_age: timedelta | None = None,
) -> VitalsSample:
    """Parse and validate one message value against the shared vitals schema; a sample more
    than `max_clock_skew` ahead of the clock, or older than `max_age`, is refused."""
    if not value:
        raise InvalidSample("empty message")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidSample(f"too large: message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        sample = decode_vitals(value)
    except OverflowError as exc:
        raise InvalidSample(f"invalid sample: {type(exc).__name__}: {exc}") from None
    if sample is None:
        sample = _decode_by_schema(value)
    _check_text("patient_name", sample.patient_name)
    if identifier := sample.patient_identifier:
        _check_text("patient_identifier.system", identifier.system)
        _check_text("patient_identifier.value", identifier.value)
    _check_not_ahead(sample.timestamp, max_clock_skew)
    if max_age is not None:
        _check_not_expired(sample.timestamp, max_age)
    return sample


def _decode_by_schema(value: bytes) -> VitalsSample:
    """The sample the quick path did not take, if the schema does; else InvalidSample saying
    why, in the schema's words."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSample(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    document = _parse_json(text)
    if not isinstance(document, dict):
        raise InvalidSample(f"expected a JSON object, got {type(document).__name__}")
    try:
        return VitalsSample.from_loaded(vitals_schema.load(document))
    except ValidationError as exc:
        raise InvalidSample(f"invalid sample: {json.dumps(exc.messages, sort_keys=True)}") from None
    except (ArithmeticError, ValueError, TypeError) as exc:
        # As the quick path's OverflowError: a timestamp such as 0001-01-01T00:00:00+01:00 is
        # valid ISO 8601, but in UTC it falls outside the years datetime can hold.
        raise InvalidSample(f"invalid sample: {type(exc).__name__}: {exc}") from None


def _parse_json(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise InvalidSample("not JSON: nested too deeply") from None
    except ValueError as exc:
        # JSONDecodeError, InvalidSample from `_reject_constant`, and the ValueError of an
        # integer longer than Python converts (4300 digits).
        raise InvalidSample(f"not JSON: {exc}") from None


def _check_text(field: str, text: str | None) -> None:
    if text is not None and (bad := _UNSTORABLE_TEXT.search(text)):
        raise InvalidSample(
            f"invalid sample: {field} holds character U+{ord(bad.group()):04X} "
            f"at position {bad.start()}"
        )


def _check_not_ahead(timestamp: datetime, max_clock_skew: timedelta) -> None:
    # A sample from the future would stay the patient's newest, hiding the real ones, until
    # the clock caught up with it; its alert state would ignore every sample until then too.
    ahead = timestamp - datetime.now(UTC)
    if ahead > max_clock_skew:
        raise InvalidSample(
            f"timestamp in the future: {ahead.total_seconds():.1f} s ahead of the clock, "
            f"more than the {max_clock_skew.total_seconds():g} s allowed"
        )


def _check_not_expired(timestamp: datetime, max_age: timedelta) -> None:
    # Older than the raw retention, it would be deleted at the next pass, and counted in the
    # rollups meanwhile; its alerts would be about a patient as they were weeks ago.
    age = datetime.now(UTC) - timestamp
    if age > max_age:
        raise InvalidSample(
            f"timestamp too old: {age.total_seconds() / 86400:.1f} days before the clock, "
            f"more than the {max_age.total_seconds() / 86400:g} days samples are kept "
            "(RAW_RETENTION_DAYS)"
        )


def _reject_constant(name: str) -> None:
    raise InvalidSample(f"{name} is not a valid JSON number")


# NaN and Infinity are not JSON, whatever Python's json module allows by default. One decoder
# for every message: json.loads with an option builds a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def claimed_patient(value: bytes | None) -> uuid.UUID | None:
    """The patient a refused message names, if it names one at all: a monitor that keeps
    sending what cannot be stored is a technical alarm for its patient. Never raises."""
    if not value or len(value) > MAX_MESSAGE_BYTES:
        return None
    try:
        claimed = json.loads(value).get("patient_uuid")
        return uuid.UUID(claimed) if isinstance(claimed, str) else None
    except (ValueError, AttributeError, RecursionError, UnicodeDecodeError):
        return None
