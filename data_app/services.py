"""Storing samples: patients created on first sight, metrics inserted idempotently."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Flask
from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import db
from shared.models import Patient, PatientMetric

_METRIC_FIELDS = ("timestamp", "pulse", "resp_rate", "systolic", "diastolic", "spo2",
                  "temperature")


def _insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def patient_ids(session: Session, samples: Iterable[dict[str, Any]]) -> dict[uuid.UUID, int]:
    """Ids of the samples' patients, creating the ones never seen before."""
    names: dict[uuid.UUID, str] = {}
    for sample in samples:
        names.setdefault(sample["patient_uuid"], sample.get("patient_name") or "")
    known = dict(session.execute(
        select(Patient.uuid, Patient.id).where(Patient.uuid.in_(names))).all())
    missing = [{"uuid": pid, "name": name or f"Patient {str(pid)[:8]}"}
               for pid, name in names.items() if pid not in known]
    if missing:
        # Another consumer may create the same patient concurrently: ignore, then re-read.
        session.execute(_insert_ignoring_duplicates(session, Patient.__table__), missing)
        known.update(session.execute(
            select(Patient.uuid, Patient.id)
            .where(Patient.uuid.in_([m["uuid"] for m in missing]))).all())
    return known


def store_samples(session: Session, samples: Sequence[dict[str, Any]]) -> int:
    """Insert validated samples; a sample already stored is skipped. Returns rows inserted.

    Runs in the caller's transaction and never commits.
    """
    if not samples:
        return 0
    ids = patient_ids(session, samples)
    # Column defaults (created_at, received_at) are filled in by the Core insert.
    rows = [{"patient_id": ids[s["patient_uuid"]], **{field: s[field] for field in _METRIC_FIELDS}}
            for s in samples]
    inserted = session.execute(
        _insert_ignoring_duplicates(session, PatientMetric.__table__)
        .returning(PatientMetric.__table__.c.id), rows)
    return len(inserted.all())


class DataService:
    """Stores batches for the consumer thread: one app context and one transaction a batch."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def store(self, samples: Sequence[dict[str, Any]]) -> int:
        """Store a batch atomically; returns the rows inserted (the rest were replays)."""
        with self.app.app_context(), db.sessionmaker().begin() as session:
            return store_samples(session, samples)
