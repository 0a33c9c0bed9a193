"""Marshmallow fields shared by the monitor API's query arguments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields


class Instant(fields.AwareDateTime):
    """An ISO-8601 time with its UTC offset, loaded as the same instant in UTC."""

    default_error_messages = {"out_of_range": "Not a time that UTC can express."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00+01:00 is valid ISO-8601, but falls before year 1 in UTC.
            raise self.make_error("out_of_range") from None


def check_window(
    data: Mapping[str, Any],
    start: str,
    end: str,
    *,
    start_key: str | None = None,
    end_key: str | None = None,
) -> None:
    """Refuse a time window that starts after it ends, naming the fields as the client sent
    them (`start_key`, `end_key` where they differ from the attributes)."""
    since, until = data.get(start), data.get(end)
    if since is not None and until is not None and since > until:
        raise ValidationError(
            f"Must not be after `{end_key or end}`.", field_name=start_key or start
        )
