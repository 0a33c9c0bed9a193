"""Queries and changes over notifications. Functions take the caller's session; only the
route commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload

from monitor_app.patients.services import find_patient
from shared.db import utcnow
from shared.models import Notification, Patient
from shared.notifications import add_notification


class UnknownPatientError(LookupError):
    """The notification names a patient Vigil does not know."""


def create_notification(session: Session, data: Mapping[str, Any]) -> Notification:
    """Add a pending notification; raises UnknownPatientError for an unknown `patient_uuid`."""
    patient = None
    if data.get("patient_uuid") is not None:
        patient = find_patient(session, data["patient_uuid"])
        if patient is None:
            raise UnknownPatientError(data["patient_uuid"])
    notification = add_notification(
        session,
        user_id=data["user_id"],
        title=data["title"].strip(),
        text=data["text"],
        patient_id=patient and patient.id,
    )
    notification.patient = patient
    return notification


def _filtered(query: Select, filters: Mapping[str, Any], snapshot: int) -> Select:
    query = query.where(Notification.seq <= snapshot)
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
        query = query.where(Notification.read_at.is_not(None))
    elif filters.get("read") is False:
        query = query.where(Notification.read_at.is_(None))
    if "created_from" in filters:
        query = query.where(Notification.created_at >= filters["created_from"])
    if "created_to" in filters:
        query = query.where(Notification.created_at < filters["created_to"])
    return query


def latest_seq(session: Session) -> int:
    """The newest notification's sequence number: the snapshot of a first page."""
    return session.scalar(select(func.max(Notification.seq))) or 0


def count_notifications(session: Session, filters: Mapping[str, Any], snapshot: int) -> int:
    """How many notifications match, in one COUNT over the filters' index."""
    query = _filtered(select(func.count()).select_from(Notification), filters, snapshot)
    return session.scalar(query) or 0


def list_notifications(
    session: Session, filters: Mapping[str, Any], snapshot: int, *, offset: int, limit: int
) -> list[Notification]:
    """One page of matching notifications, newest first, with their patients (two queries)."""
    query = _filtered(select(Notification), filters, snapshot)
    query = (
        query.options(selectinload(Notification.patient))
        .order_by(Notification.seq.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query))


def get_notification(session: Session, notification_id: uuid.UUID) -> Notification | None:
    query = (
        select(Notification)
        .where(Notification.id == notification_id)
        .options(selectinload(Notification.patient))
    )
    return session.scalar(query)


def mark_read(session: Session, notification_id: uuid.UUID) -> tuple[Notification | None, bool]:
    """Set `read_at` if it is not set yet. Returns the notification and whether it changed.

    One conditional UPDATE, so two clients marking at once still set `read_at` once.
    """
    changed = (
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    session.expire_all()
    return get_notification(session, notification_id), changed
