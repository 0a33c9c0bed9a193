"""The OpenAPI document says what each route's declared access says: who must sign in, and
the 401 and 403 that follow; public routes need no credentials (`security: []`)."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask

from shared.auth.policy import ADMIN_ONLY, Access, access_for
from shared.auth.roles import Role

# The bearer token every app accepts: an access token or an integration's API token.
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": (
        "An access token from `POST /api/v1/auth/token`, or an integration's API token: "
        "`Authorization: Bearer <token>`."
    ),
}


class AccessDocs(BasePlugin):
    """Documents each operation's access from the access its view declares.

    Pass one per app to flask-smorest (`spec_kwargs={"extra_plugins": [AccessDocs(app)]}`):
    operations are documented as their blueprints are registered, from the views' decorators.
    What a view documents itself is kept.
    """

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        for method, operation in operations.items():
            access = access_for(self.app, rule.endpoint, method.upper()) or ADMIN_ONLY
            document_access(operation, access)


def document_access(operation: dict[str, Any], access: Access) -> None:
    """Add `access`'s security and refusals to one operation of the document."""
    if access.public:
        operation.setdefault("security", [])
        return
    responses = operation.setdefault("responses", {})
    codes = {str(code) for code in responses}
    if "401" not in codes:
        responses[401] = "UNAUTHORIZED"
    # A signed-in caller whose role (or integration's scope) does not fit is refused.
    if access.roles != frozenset(Role) and "403" not in codes:
        responses[403] = "FORBIDDEN"
