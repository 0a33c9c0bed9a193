"""A UUID path converter that answers 422, not 404, for a malformed value."""

from __future__ import annotations

import uuid

from flask_smorest import abort
from werkzeug.routing import BaseConverter


class UUIDConverter(BaseConverter):
    """Matches any path segment and parses it as a UUID.

    Werkzeug's own `uuid` converter does not match a malformed value, so the client would be
    told the URL does not exist when it merely carries a bad identifier.
    """

    def to_python(self, value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            # Raised while the URL is matched: Flask keeps it as the routing error and raises
            # it at dispatch, where the app's JSON error handlers answer.
            abort(
                422,
                message=f"Malformed UUID in the URL: {value!r}.",
                errors={"path": ["Not a valid UUID."]},
            )

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value)


def uuid_param_schema(_converter: BaseConverter) -> dict[str, str]:
    """How the OpenAPI document describes a path parameter using this converter."""
    return {"type": "string", "format": "uuid"}
