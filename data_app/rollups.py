"""Per-minute rollups and kept-sample counts of newly stored samples, in their transaction.

Only rows the batch actually inserted are added, so a replayed batch (which inserts nothing)
adds nothing: the rollups and counts stay exact however often Kafka delivers a message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from data_app.staging import copy_rows, staging_table, taken_from
from shared.models import ROLLED_UP, Patient, patient_metric_minutes

Row = Mapping[str, Any]


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _minutes(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows summed per (patient, minute), in key order so that two batches adding to the
    same minutes lock them in the same order."""
    minutes: dict[tuple[int, datetime], dict[str, Any]] = {}
    for row in rows:
        key = (row["patient_id"], minute_of(row["timestamp"]))
        scored = row["news2_score"] is not None
        minute = minutes.get(key)
        if minute is None:
            minute = minutes[key] = {
                "patient_id": key[0],
                "minute": key[1],
                "samples": 0,
                "news2_samples": 0,
                **{f"{name}_{stat}": None for name in ROLLED_UP for stat in ("min", "max")},
                **{f"{name}_sum": 0 for name in ROLLED_UP},
            }
        minute["samples"] += 1
        minute["news2_samples"] += scored
        for name in ROLLED_UP:
            value = row[name]
            if value is None:
                continue
            low, high = minute[f"{name}_min"], minute[f"{name}_max"]
            minute[f"{name}_min"] = value if low is None or value < low else low
            minute[f"{name}_max"] = value if high is None or value > high else high
            minute[f"{name}_sum"] += value
    return [minutes[key] for key in sorted(minutes)]


_STAGED_MINUTES = staging_table(
    "vigil_staged_minutes",
    patient_metric_minutes,
    [column.name for column in patient_metric_minutes.columns],
)


def _merge_into_existing(dialect: str) -> Insert:
    """INSERT the minutes, or add them to the rows already there; on PostgreSQL the minutes
    copied into the staging table, on SQLite those given as parameters."""
    table = patient_metric_minutes
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    if dialect == "postgresql":
        taken = taken_from(_STAGED_MINUTES)
        # In key order, as _minutes sorts them for SQLite: the locks of two batches, too.
        staged = select(*taken.c).order_by(taken.c.patient_id, taken.c.minute)
        insert = insert.from_select([column.name for column in taken.c], staged)
    new = insert.excluded

    def lower(name: str) -> ColumnElement:
        old = table.c[name]
        if dialect == "postgresql":
            return func.least(old, new[name])  # LEAST ignores a null
        # SQLite's two-argument min() is null if either is: a minute without a NEWS2 so far.
        return func.min(func.coalesce(old, new[name]), func.coalesce(new[name], old))

    def higher(name: str) -> ColumnElement:
        old = table.c[name]
        if dialect == "postgresql":
            return func.greatest(old, new[name])
        return func.max(func.coalesce(old, new[name]), func.coalesce(new[name], old))

    changes: dict[str, ColumnElement] = {
        "samples": table.c.samples + new.samples,
        "news2_samples": table.c.news2_samples + new.news2_samples,
    }
    for name in ROLLED_UP:
        changes[f"{name}_min"] = lower(f"{name}_min")
        changes[f"{name}_max"] = higher(f"{name}_max")
        changes[f"{name}_sum"] = table.c[f"{name}_sum"] + new[f"{name}_sum"]
    return insert.on_conflict_do_update(index_elements=["patient_id", "minute"], set_=changes)


_MERGE = {dialect: _merge_into_existing(dialect) for dialect in ("postgresql", "sqlite")}


_ADD_TO_COUNT = (
    update(Patient.__table__)
    .where(Patient.__table__.c.id == bindparam("patient"))
    .values(sample_count=Patient.__table__.c.sample_count + bindparam("added"))
)


def add_stored(session: Session, rows: Sequence[Row]) -> None:
    """Add newly inserted patient_metrics rows to their minutes and their patients' counts."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    minutes = _minutes(rows)
    if dialect == "postgresql":
        copy_rows(session, _STAGED_MINUTES, minutes)
        session.execute(_MERGE[dialect])
    else:
        session.execute(_MERGE[dialect], minutes)
    added = Counter(row["patient_id"] for row in rows)
    # In id order, as raise_alerts locks the same rows: two batches never wait on each other.
    session.execute(
        _ADD_TO_COUNT, [{"patient": patient, "added": added[patient]} for patient in sorted(added)]
    )
