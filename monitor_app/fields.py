"""Marshmallow fields shared by the monitor API's query arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields


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
