"""The monitored patients and their vital-sign samples."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint, Uuid
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

    metrics: Mapped[list[PatientMetric]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True,
        lazy="raise")

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

    patient: Mapped[Patient] = relationship(back_populates="metrics", lazy="raise")

    @property
    def bp(self) -> str:
        return f"{self.systolic}/{self.diastolic}"

    def __repr__(self) -> str:
        return f"<PatientMetric patient={self.patient_id} at {self.timestamp.isoformat()}>"
