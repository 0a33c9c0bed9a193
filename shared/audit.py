"""The audit trail: who did or read what, when, from where, and whether it was allowed.

Rows are only ever inserted. The migration adds triggers that refuse UPDATE and DELETE (and,
on PostgreSQL, TRUNCATE), so not even the application's own database role can rewrite history.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Connection, Index, String, Uuid, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.auth.principal import Principal
from shared.db import Base, UTCDateTime, utcnow
from shared.models import BigId


class AuditAction(StrEnum):
    SIGN_IN = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    SIGN_OUT = "auth.sign_out"
    LOCKOUT = "auth.lockout"
    TOKEN_CREATED = "token.created"  # noqa: S105 (action names, not secrets)
    TOKEN_REVOKED = "token.revoked"  # noqa: S105
    USER_CREATED = "user.created"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    PASSWORD_SET = "user.password_set"  # noqa: S105
    PATIENTS_LISTED = "patient.list"
    PATIENT_READ = "patient.read"
    SAMPLES_READ = "patient.samples"
    HISTORY_READ = "patient.history"
    ALARM_LIMITS_READ = "patient.alarm_limits"
    ALARM_LIMITS_CHANGED = "patient.alarm_limits_change"
    ALARMS_LISTED = "alarm.list"
    PATIENT_ALARMS_READ = "patient.alarms"
    ALARM_ACKNOWLEDGED = "alarm.acknowledge"
    ALARM_SILENCED = "alarm.silence"
    LIVE_SUBSCRIBED = "live.subscribe"
    NOTIFICATIONS_LISTED = "notification.list"
    NOTIFICATION_READ = "notification.view"
    NOTIFICATION_CREATED = "notification.create"
    NOTIFICATION_MARKED_READ = "notification.mark_read"
    AUDIT_READ = "audit.read"
    # The FHIR API's reads (monitor_app/fhir): the same data, told apart by how it was read.
    FHIR_PATIENT_READ = "fhir.patient.read"
    FHIR_PATIENTS_SEARCHED = "fhir.patient.search"
    FHIR_OBSERVATION_READ = "fhir.observation.read"
    FHIR_OBSERVATIONS_SEARCHED = "fhir.observation.search"
    # A request refused by the access check on a route that records nothing else.
    REQUEST = "request"
    SAMPLES_EXPORTED = "patient.samples_export"
    # gateway_app: an HL7 sender outside the allowed addresses or facilities, answered AR.
    HL7_SENDER_REFUSED = "hl7.sender_refused"


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_user_id_seq", "user_id", "seq"),
        Index("ix_audit_events_patient_uuid_seq", "patient_uuid", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who: copied, not referenced, so the record outlives the account and tells what it was.
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str | None] = mapped_column(String(16))
    token_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str | None] = mapped_column(String(500))
    patient_uuid: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    outcome: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def event_values(
    action: AuditAction,
    outcome: Outcome = Outcome.ALLOWED,
    *,
    principal: Principal | None = None,
    user: Any = None,
    resource: str | None = None,
    patient_uuid: uuid.UUID | None = None,
    address: str | None = None,
    user_agent: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one audit record (`at` and `seq` are the database's). `user` (an
    account row) names who when there is no signed-in principal yet, as for a sign-in."""
    values: dict[str, Any] = {
        "action": action.value,
        "outcome": outcome.value,
        "resource": None if resource is None else resource[:500],
        "patient_uuid": patient_uuid,
        "address": None if address is None else address[:64],
        "user_agent": None if user_agent is None else user_agent[:300],
        "detail": detail,
        "user_id": None,
        "email": None,
        "role": None,
        "token_id": None,
    }
    if principal is not None:
        values.update(
            user_id=principal.user_id,
            email=principal.email,
            role=principal.role,
            token_id=principal.token_id,
        )
    elif user is not None:
        values.update(user_id=user.id, email=user.email, role=user.role)
    return values


def record(
    session: Session, action: AuditAction, outcome: Outcome = Outcome.ALLOWED, **fields: Any
) -> AuditEvent:
    """Add one audit record to the caller's transaction (`event_values` names the fields)."""
    event = AuditEvent(**event_values(action, outcome, **fields))
    session.add(event)
    return event


INSERT_EVENT = insert(AuditEvent)


def insert_events(connection: Connection, events: list[dict[str, Any]]) -> None:
    """Insert audit records (each of `event_values`) in the connection's transaction: one
    Core statement, no ORM objects to build and flush, for the records every read writes."""
    connection.execute(INSERT_EVENT, events)
