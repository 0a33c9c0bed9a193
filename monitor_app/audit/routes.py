"""`/api/v1/audit`: the audit trail, for admins; paged as JSON or exported as CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy.orm import Session, sessionmaker

from monitor_app.audit import services
from monitor_app.audit.recorder import audited
from monitor_app.audit.schemas import CSV_COLUMNS, AuditEventSchema, AuditQueryArgsSchema
from monitor_app.pagination import PaginatedBlueprint, past_last_page
from shared.audit import AuditAction, AuditEvent
from shared.auth.policy import allow
from shared.auth.roles import Role
from shared.db import db

blp = PaginatedBlueprint(
    "audit",
    __name__,
    description="Who read or changed what, when, from where, allowed or denied. Append-only.",
)

AUDIT_PAGE_SIZE = 100
AUDIT_MAX_PAGE_SIZE = 1000


@blp.route("")
class AuditEvents(MethodView):
    @allow(Role.ADMIN)
    @audited(AuditAction.AUDIT_READ)
    @blp.arguments(AuditQueryArgsSchema(), location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.paginate(page_size=AUDIT_PAGE_SIZE, max_page_size=AUDIT_MAX_PAGE_SIZE)
    def get(
        self, args: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> list[AuditEvent]:
        """List audit events, newest first, filtered and paginated."""
        pagination_parameters.item_count = services.count_events(db.session, args)
        if past_last_page(pagination_parameters):
            return []
        return services.list_events(
            db.session,
            args,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )


@blp.route("/export")
class AuditExport(MethodView):
    @allow(Role.ADMIN)
    @audited(AuditAction.AUDIT_READ)
    @blp.arguments(AuditQueryArgsSchema(), location="query")
    @blp.response(200, description="The matching events as CSV, oldest first.")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict[str, Any]) -> Response:
        """Export the matching audit events as CSV (at most 100,000 rows, oldest first)."""
        return Response(
            _export_rows(db.sessionmaker(), args),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="vigil-audit.csv"'},
        )


def _export_rows(make_session: sessionmaker[Session], args: dict[str, Any]) -> Iterator[str]:
    """The CSV, read in a session of the stream's own: opened when the client starts reading
    and closed when the stream ends or the server closes it, so a client that never reads,
    or stops halfway, holds no database connection (the request's session closed already)."""
    with make_session() as session:
        yield from services.export_csv(session, args, CSV_COLUMNS)
