"""Turn raw Kafka message bytes into a validated sample, or say exactly why not."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import ValidationError

from shared.schemas import MAX_MESSAGE_BYTES, load_vitals


class InvalidSample(ValueError):  # noqa: N818  (a reason, not a crash)
    """The message can never be stored; the message is the dead-letter reason."""


def decode_sample(value: bytes | None) -> dict[str, Any]:
    """Parse and validate one message value against the shared vitals schema."""
    if not value:
        raise InvalidSample("empty message")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidSample(f"message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSample(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        document = _DECODER.decode(text)
    except (json.JSONDecodeError, InvalidSample) as exc:
        raise InvalidSample(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidSample(f"expected a JSON object, got {type(document).__name__}")
    try:
        return load_vitals(document)
    except ValidationError as exc:
        raise InvalidSample(f"invalid sample: {json.dumps(exc.messages, sort_keys=True)}") from None


def _reject_constant(name: str) -> None:
    raise InvalidSample(f"{name} is not a valid JSON number")


# NaN and Infinity are not JSON, whatever Python's json module allows by default. One decoder
# for every message: json.loads with an option builds a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
