"""The notifications API: create, list, show, mark as read, analysis status."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters

from monitor_app.audit.recorder import audited
from monitor_app.caching import cached_response, caller_key, memoize
from monitor_app.config import NOTIFICATIONS_MAX_PAGE_SIZE, NOTIFICATIONS_PAGE_SIZE
from monitor_app.notifications import services
from monitor_app.notifications.schemas import (
    NotificationCreateSchema,
    NotificationQueryArgsSchema,
    NotificationSchema,
    NotificationStatusSchema,
)
from monitor_app.pagination import PaginatedBlueprint, past_last_page
from monitor_app.rate_limits import quota
from shared.audit import AuditAction
from shared.auth.policy import allow, signed_in
from shared.auth.principal import require_principal
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.errors import UNPROCESSABLE
from shared.events import NOTIFICATIONS
from shared.models import Notification
from shared.notifications import announce

blp = PaginatedBlueprint(
    "notifications",
    __name__,
    description="Notifications to clinicians, analysed asynchronously by the AI analysis: "
    "pending → processing → completed (or failed).",
)

SNAPSHOT_HEADER = "X-Snapshot"


@blp.route("")
class Notifications(MethodView):
    @allow(Role.ADMIN, Role.CLINICIAN, scope=Scope.NOTIFICATIONS_WRITE)
    @quota("NOTIFICATION_QUOTA", "notifications")
    @audited(AuditAction.NOTIFICATION_CREATED)
    @blp.arguments(NotificationCreateSchema())
    @blp.response(
        201,
        NotificationSchema,
        headers={
            "Location": {
                "description": "URL of the new notification.",
                "schema": {"type": "string"},
            }
        },
    )
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data: dict[str, Any]) -> tuple[Notification, int, dict[str, str]]:
        """Create a notification; its analysis is queued at once (status `pending`)."""
        try:
            notification = services.create_notification(db.session, data, require_principal())
        except services.UnknownPatientError:
            abort(
                422,
                message="Unknown patient.",
                errors={"json": {"patient_uuid": ["No patient with this UUID."]}},
            )
        except services.UnknownRecipientError:
            abort(
                422,
                message="Unknown recipient.",
                errors={"json": {"user_id": ["No user or ward with this id."]}},
            )
        db.session.commit()
        announce(current_app, "notification.created", [notification])
        location = url_for(".NotificationById", notification_id=notification.id)
        return notification, 201, {"Location": location}

    @signed_in(scope=Scope.NOTIFICATIONS_READ)
    @audited(AuditAction.NOTIFICATIONS_LISTED)
    @cached_response(NOTIFICATIONS, per_caller=True)
    @blp.arguments(NotificationQueryArgsSchema(), location="query")
    @blp.response(
        200,
        NotificationSchema(many=True),
        headers={
            SNAPSHOT_HEADER: {
                "description": "Pass it as `snapshot` to page on stably.",
                "schema": {"type": "integer"},
            }
        },
    )
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.paginate(page_size=NOTIFICATIONS_PAGE_SIZE, max_page_size=NOTIFICATIONS_MAX_PAGE_SIZE)
    def get(
        self, args: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> tuple[list[Notification], dict[str, str]]:
        """List notifications, newest first, filtered and paginated."""
        viewer = require_principal()
        snapshot = args.pop("snapshot", None)
        if snapshot is None:
            snapshot = services.latest_seq(db.session)
        # The count is the same for every page of one query: computed once, then cached.
        filters = sorted((k, str(v)) for k, v in args.items())
        count_key = f"count:{caller_key(viewer)}:{snapshot}:{filters}"
        pagination_parameters.item_count = memoize(
            NOTIFICATIONS,
            count_key,
            lambda: services.count_notifications(db.session, args, snapshot, viewer),
        )
        if past_last_page(pagination_parameters):
            return [], {SNAPSHOT_HEADER: str(snapshot)}
        items = services.list_notifications(
            db.session,
            args,
            snapshot,
            viewer,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        return items, {SNAPSHOT_HEADER: str(snapshot)}


@blp.route("/<uuid:notification_id>")
class NotificationById(MethodView):
    @signed_in(scope=Scope.NOTIFICATIONS_READ)
    @audited(AuditAction.NOTIFICATION_READ)
    @cached_response(NOTIFICATIONS, per_caller=True)
    @blp.response(200, NotificationSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, notification_id: uuid.UUID) -> Notification:
        """Show one notification with its analysis."""
        notification = services.get_notification(db.session, notification_id, require_principal())
        return _found(notification, notification_id)


@blp.route("/<uuid:notification_id>/read")
class NotificationRead(MethodView):
    @allow(Role.ADMIN, Role.CLINICIAN)
    @audited(AuditAction.NOTIFICATION_MARKED_READ)
    @blp.response(200, NotificationSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, notification_id: uuid.UUID) -> Notification:
        """Mark as read by the caller. Idempotent: `read_at` keeps when they first read it."""
        notification, changed = services.mark_read(db.session, notification_id, require_principal())
        db.session.commit()
        notification = _found(notification, notification_id)
        if changed:
            announce(current_app, "notification.read", [notification])
        return notification


@blp.route("/<uuid:notification_id>/status")
class NotificationStatus(MethodView):
    @signed_in(scope=Scope.NOTIFICATIONS_READ)
    @audited(AuditAction.NOTIFICATION_READ)
    @cached_response(NOTIFICATIONS, per_caller=True)
    @blp.response(200, NotificationStatusSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, notification_id: uuid.UUID) -> Notification:
        """The analysis status, and the analysis once completed (or why it failed)."""
        notification = services.get_notification(db.session, notification_id, require_principal())
        return _found(notification, notification_id)


def _found(notification: Notification | None, notification_id: uuid.UUID) -> Notification:
    if notification is None:
        abort(404, message=f"No notification with id {notification_id}.")
    return notification
