"""The monitored patients, their vital-sign samples and the notifications to clinicians."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, UTCDateTime, utcnow

# BIGINT on PostgreSQL; SQLite only autoincrements a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What clinicians were last told about this patient's NEWS2 band (data_app/alerts.py):
    # kept with the patient so alerts survive restarts and are decided in the batch's
    # transaction, exactly once per band change.
    alert_band: Mapped[str] = mapped_column(String(16), default="low")
    alert_calm_samples: Mapped[int] = mapped_column(Integer, default=0)
    alert_calm_band: Mapped[str | None] = mapped_column(String(16))
    alert_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    metrics: Mapped[list[PatientMetric]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )

    def __repr__(self) -> str:
        return f"<Patient {self.uuid} {self.name!r}>"


class PatientMetric(Base):
    """One vitals sample. Unique per (patient, timestamp), so a replayed message is a no-op;
    the same index serves "this patient's metrics in a time range, newest first"."""

    __tablename__ = "patient_metrics"
    __table_args__ = (UniqueConstraint("patient_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    pulse: Mapped[int] = mapped_column(Integer)
    resp_rate: Mapped[int] = mapped_column(Integer)
    systolic: Mapped[int] = mapped_column(Integer)
    diastolic: Mapped[int] = mapped_column(Integer)
    spo2: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Scored once, when stored; null only for rows stored before scoring existed.
    news2_score: Mapped[int | None] = mapped_column(SmallInteger)
    news2_band: Mapped[str | None] = mapped_column(String(16))

    patient: Mapped[Patient] = relationship(back_populates="metrics", lazy="raise")

    @property
    def bp(self) -> str:
        return f"{self.systolic}/{self.diastolic}"

    def __repr__(self) -> str:
        return f"<PatientMetric patient={self.patient_id} at {self.timestamp.isoformat()}>"


PROCESSING_STATUSES = ("pending", "processing", "completed", "failed")
CATEGORIES = ("info", "warning", "critical")


class Notification(Base):
    """A message to a clinician, classified asynchronously by the AI analysis.

    `seq` orders notifications by insertion (newest first) and anchors stable pages; `id` is
    the public identifier.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        # Each serves one list filter, newest first, without sorting.
        Index("ix_notifications_user_id_seq", "user_id", "seq"),
        Index("ix_notifications_patient_id_seq", "patient_id", "seq"),
        Index("ix_notifications_category_seq", "category", "seq"),
        Index("ix_notifications_created_at", "created_at"),
        Index("ix_notifications_sender_id_seq", "sender_id", "seq"),
        # The status filter and the sweeper's "stuck since" scan.
        Index("ix_notifications_status_changed", "processing_status", "status_changed_at"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    # The recipient: a user, or a ward (every clinician in it).
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Who sent it; null for Vigil's own vitals alerts.
    sender_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    category: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    keywords: Mapped[list[str] | None] = mapped_column(JSON)
    processing_status: Mapped[str] = mapped_column(String(16), default="pending")
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient | None] = relationship(lazy="raise")
    reads: Mapped[list[NotificationRead]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="NotificationRead.read_at",
    )

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.processing_status}>"


class NotificationRead(Base):
    """One person's reading of a notification: read state is per person, so a ward alert one
    nurse has read stays unread for the others."""

    __tablename__ = "notification_reads"

    notification_seq: Mapped[int] = mapped_column(
        ForeignKey("notifications.seq", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
