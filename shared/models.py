"""The monitored patients, their vital-sign samples, alarms and the notifications to
clinicians."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# An alarm names who acknowledged it (alarms.acknowledged_by -> users.id): the users table
# must be in the metadata wherever these models are, or create_all cannot order the tables.
from shared import identity as _identity  # noqa: F401
from shared.blood_pressure import format_bp
from shared.db import Base, UTCDateTime, utcnow
from shared.news2 import Band

# BIGINT on PostgreSQL; SQLite only autoincrements a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_identifier", "identifier_value", "identifier_system"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The hospital's identifier (an MRN, from the HL7 gateway): what FHIR clients search by.
    # Not unique: a patient re-admitted under a new uuid keeps their MRN.
    identifier_system: Mapped[str | None] = mapped_column(String(255))
    identifier_value: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What clinicians were last told about this patient's NEWS2 band (data_app/alerts.py):
    # kept with the patient so alerts survive restarts and are decided in the batch's
    # transaction, exactly once per band change.
    alert_band: Mapped[str] = mapped_column(String(16), default=Band.LOW.value)
    alert_calm_samples: Mapped[int] = mapped_column(Integer, default=0)
    alert_calm_band: Mapped[str | None] = mapped_column(String(16))
    alert_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The alarm engine's episodes that are not idle (shared/alarms), by condition: what each
    # batch's transaction continues from, so a delay or a latch outlives a restart.
    alarm_episodes: Mapped[dict | None] = mapped_column(JSON)
    # How many of their samples are kept: added to as samples are stored, taken from as
    # retention removes old ones (data_app/retention.py), so the detail view never counts rows.
    sample_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    metrics: Mapped[list[PatientMetric]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )

    def __repr__(self) -> str:
        return f"<Patient {self.uuid} {self.name!r}>"


class PatientMetric(Base):
    """One vitals sample. Unique per (patient, timestamp), so a replayed message is a no-op;
    the same index serves "this patient's metrics in a time range, newest first".

    On PostgreSQL the table is partitioned by day of `timestamp` (shared/partitions.py), so
    its primary key there is (id, timestamp): migration 0009 makes it, not this model.
    """

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
        return format_bp(self.systolic, self.diastolic)

    def __repr__(self) -> str:
        return f"<PatientMetric patient={self.patient_id} at {self.timestamp.isoformat()}>"


# The rolled-up vitals, each with the column type of its minimum and maximum.
ROLLED_UP = {
    "pulse": Integer,
    "resp_rate": Integer,
    "systolic": Integer,
    "diastolic": Integer,
    "spo2": Integer,
    "temperature": Float,
    "news2_score": SmallInteger,
}


def _rollup_columns() -> list[Column]:
    columns = []
    for name, kind in ROLLED_UP.items():
        # A NEWS2 is null on rows stored before scoring existed: a minute may have none.
        optional = name == "news2_score"
        columns += [
            Column(f"{name}_min", kind(), nullable=optional),
            Column(f"{name}_max", kind(), nullable=optional),
            Column(f"{name}_sum", Float() if kind is Float else BigInteger(), nullable=False),
        ]
    return columns


# Each patient's samples per minute: count, minimum, maximum and sum of every vital (the sum,
# not the mean, so the minutes of a longer bucket add up exactly). Added to in the transaction
# that stores the samples (data_app/rollups.py), so a replay, which stores nothing, adds
# nothing. Long history windows read these instead of the samples, and they outlive them
# (ROLLUP_RETENTION_DAYS against RAW_RETENTION_DAYS). Partitioned by month on PostgreSQL.
patient_metric_minutes = Table(
    "patient_metric_minutes",
    Base.metadata,
    Column(
        "patient_id",
        BigId,
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("minute", UTCDateTime, primary_key=True),
    Column("samples", Integer, nullable=False),
    # How many of them have a NEWS2 (the news2_score statistics' count).
    Column("news2_samples", Integer, nullable=False),
    *_rollup_columns(),
    postgresql_partition_by="RANGE (minute)",
)


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


class AlarmKind(StrEnum):
    PHYSIOLOGICAL = "physiological"  # a vital sign beyond its limits
    TECHNICAL = "technical"  # the monitoring itself: no data, a sensor off


class AlarmPriority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlarmState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"


# An alarm that is not resolved is open: it still needs someone.
OPEN = text("state <> 'resolved'")


class Alarm(Base):
    """One episode of one alarm condition for one patient, from its start to its end.

    At most one open alarm per (patient, condition): a condition that persists is the same
    episode, not a new alarm each sample.
    """

    __tablename__ = "alarms"
    __table_args__ = (
        CheckConstraint(_one_of("kind", AlarmKind), name="kind"),
        CheckConstraint(_one_of("priority", AlarmPriority), name="priority"),
        CheckConstraint(_one_of("state", AlarmState), name="state"),
        CheckConstraint("escalation_level >= 0", name="escalation_level"),
        Index(
            "uq_alarms_open_patient_id_condition",
            "patient_id",
            "condition",
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        ),
        # The central station's list: open alarms (every patient is on the one ward there
        # is until patients carry a ward), newest first.
        Index("ix_alarms_open_started_at", "started_at", sqlite_where=OPEN, postgresql_where=OPEN),
        Index("ix_alarms_patient_id_started_at", "patient_id", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[AlarmKind] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(64))
    priority: Mapped[AlarmPriority] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    # The limit crossed; LIMIT is an SQL keyword.
    limit_value: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[AlarmState] = mapped_column(String(16), default=AlarmState.ACTIVE)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    silenced_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The notification that told the clinicians about it.
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.seq", ondelete="SET NULL")
    )

    def __repr__(self) -> str:
        return f"<Alarm {self.id} {self.condition!r} {self.state}>"


class AlarmLimits(Base):
    """A patient's alarm limits that differ from the defaults (shared/alarm_limits.py).

    Only overrides are stored, one nullable column per parameter and bound (null: the
    default), so a change to a default reaches every patient nobody chose otherwise for.
    """

    __tablename__ = "alarm_limits"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    pulse_low: Mapped[float | None] = mapped_column(Float)
    pulse_high: Mapped[float | None] = mapped_column(Float)
    pulse_extreme_low: Mapped[float | None] = mapped_column(Float)
    pulse_extreme_high: Mapped[float | None] = mapped_column(Float)
    resp_rate_low: Mapped[float | None] = mapped_column(Float)
    resp_rate_high: Mapped[float | None] = mapped_column(Float)
    resp_rate_extreme_low: Mapped[float | None] = mapped_column(Float)
    resp_rate_extreme_high: Mapped[float | None] = mapped_column(Float)
    spo2_low: Mapped[float | None] = mapped_column(Float)
    spo2_high: Mapped[float | None] = mapped_column(Float)
    spo2_extreme_low: Mapped[float | None] = mapped_column(Float)
    spo2_extreme_high: Mapped[float | None] = mapped_column(Float)
    systolic_low: Mapped[float | None] = mapped_column(Float)
    systolic_high: Mapped[float | None] = mapped_column(Float)
    systolic_extreme_low: Mapped[float | None] = mapped_column(Float)
    systolic_extreme_high: Mapped[float | None] = mapped_column(Float)
    temperature_low: Mapped[float | None] = mapped_column(Float)
    temperature_high: Mapped[float | None] = mapped_column(Float)
    temperature_extreme_low: Mapped[float | None] = mapped_column(Float)
    temperature_extreme_high: Mapped[float | None] = mapped_column(Float)
    # Why the last change was made; the audit trail keeps every change's.
    reason: Mapped[str] = mapped_column(Text)
    # Who made it: copied, not referenced, as a notification's sender, since signed tokens
    # name users this database may not hold.
    updated_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
