"""Queries and changes over notifications, as one caller may see them. Functions take the
caller's session; only the route commits.

A caller sees the notifications addressed to them, to a ward they belong to, and those they
sent; an admin sees all. Anything else does not exist for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, insert, or_, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from monitor_app.patients.services import find_patient
from shared.auth.principal import Principal
from shared.db import utcnow
from shared.identity import User, Ward
from shared.models import Notification, NotificationRead, Patient
from shared.notifications import add_notification


class UnknownPatientError(LookupError):
    """The notification names a patient Vigil does not know."""


class UnknownRecipientError(LookupError):
    """The notification is addressed to neither a user nor a ward."""


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The notifications `principal` may see."""
    if principal.is_admin:
        return true()
    recipients = {principal.user_id, *principal.ward_ids}
    return or_(Notification.user_id.in_(recipients), Notification.sender_id == principal.user_id)


def may_see(principal: Principal, recipient_id: uuid.UUID, sender_id: uuid.UUID | None) -> bool:
    """`visible_to` for one notification already in hand (a live event)."""
    return (
        principal.is_admin
        or recipient_id == principal.user_id
        or recipient_id in principal.ward_ids
        or (sender_id is not None and sender_id == principal.user_id)
    )


def create_notification(
    session: Session, data: Mapping[str, Any], sender: Principal
) -> Notification:
    """Add a pending notification from `sender`; raises UnknownPatientError for an unknown
    `patient_uuid` and UnknownRecipientError for a `user_id` that is no user or ward."""
    patient = None
    if data.get("patient_uuid") is not None:
        patient = find_patient(session, data["patient_uuid"])
        if patient is None:
            raise UnknownPatientError(data["patient_uuid"])
    recipient = data["user_id"]
    if session.get(User, recipient) is None and session.get(Ward, recipient) is None:
        raise UnknownRecipientError(recipient)
    notification = add_notification(
        session,
        user_id=recipient,
        sender_id=sender.user_id,
        title=data["title"].strip(),
        text=data["text"],
        patient_id=patient and patient.id,
    )
    notification.patient = patient
    return notification


def _read_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(
        NotificationRead.notification_seq == Notification.seq,
        NotificationRead.user_id == user_id,
    )


def _filtered(
    query: Select, filters: Mapping[str, Any], snapshot: int, viewer: Principal
) -> Select:
    query = query.where(Notification.seq <= snapshot, visible_to(viewer))
    if "user_id" in filters:
        query = query.where(Notification.user_id == filters["user_id"])
    if "patient_uuid" in filters:
        query = query.where(
            Notification.patient_id
            == select(Patient.id).where(Patient.uuid == filters["patient_uuid"]).scalar_subquery()
        )
    if "category" in filters:
        query = query.where(Notification.category == filters["category"])
    if "processing_status" in filters:
        query = query.where(Notification.processing_status == filters["processing_status"])
    if filters.get("read") is True:
        query = query.where(_read_by(viewer.user_id))
    elif filters.get("read") is False:
        query = query.where(~_read_by(viewer.user_id))
    if "created_from" in filters:
        query = query.where(Notification.created_at >= filters["created_from"])
    if "created_to" in filters:
        query = query.where(Notification.created_at < filters["created_to"])
    return query


def latest_seq(session: Session) -> int:
    """The newest notification's sequence number: the snapshot of a first page."""
    return session.scalar(select(func.max(Notification.seq))) or 0


def count_notifications(
    session: Session, filters: Mapping[str, Any], snapshot: int, viewer: Principal
) -> int:
    """How many notifications match, in one COUNT over the filters' index."""
    query = _filtered(select(func.count()).select_from(Notification), filters, snapshot, viewer)
    return session.scalar(query) or 0


def list_notifications(
    session: Session,
    filters: Mapping[str, Any],
    snapshot: int,
    viewer: Principal,
    *,
    offset: int,
    limit: int,
) -> list[Notification]:
    """One page of matching notifications, newest first, with their patients and readers."""
    query = _filtered(select(Notification), filters, snapshot, viewer)
    query = (
        query.options(selectinload(Notification.patient), selectinload(Notification.reads))
        .order_by(Notification.seq.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query))


def get_notification(
    session: Session, notification_id: uuid.UUID, viewer: Principal | None = None
) -> Notification | None:
    """The notification, if it exists and `viewer` (when given) may see it."""
    query = (
        select(Notification)
        .where(Notification.id == notification_id)
        .options(selectinload(Notification.patient), selectinload(Notification.reads))
    )
    if viewer is not None:
        query = query.where(visible_to(viewer))
    return session.scalar(query)


def mark_read(
    session: Session, notification_id: uuid.UUID, reader: Principal
) -> tuple[Notification | None, bool]:
    """Record that `reader` read it, once. Returns the notification (None if they may not see
    it) and whether this call marked it.

    One INSERT … ON CONFLICT DO NOTHING, so two clicks at once still record one reading.
    """
    notification = get_notification(session, notification_id, reader)
    if notification is None:
        return None, False
    dialect = session.get_bind().dialect.name
    make_insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}.get(dialect, insert)
    statement = make_insert(NotificationRead).values(
        notification_seq=notification.seq, user_id=reader.user_id, read_at=utcnow()
    )
    # Kept explicitly: psycopg reports no rowcount for an INSERT once its cursor is closed.
    result = session.execute(
        statement.on_conflict_do_nothing(), execution_options={"preserve_rowcount": True}
    )
    changed = result.rowcount == 1
    session.expire_all()
    return get_notification(session, notification_id, reader), changed
