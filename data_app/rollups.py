"""Per-minute rollups and kept-sample counts of newly stored samples, in their transaction.

Only rows the batch actually inserted are added, so a replayed batch (which inserts nothing)
adds nothing: the rollups and counts stay exact however often Kafka delivers a message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import reduce
from operator import add
from typing import Any

from sqlalchemy import ColumnElement, Insert, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from data_app.bulk import BulkStatement
from data_app.staging import copy_rows, staging_table, taken_from
from shared.models import ROLLED_UP, Patient, patient_metric_minutes

Row = Mapping[str, Any]


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# Each rolled-up vital with the names of its statistics, spelt once rather than per sample.
_STATISTICS = [(name, f"{name}_min", f"{name}_max", f"{name}_sum") for name in ROLLED_UP]
_EMPTY_MINUTE = {
    "samples": 0,
    "news2_samples": 0,
    **{name: None for _, low, high, _ in _STATISTICS for name in (low, high)},
    **{total: 0 for *_, total in _STATISTICS},
}


def _minutes(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows summed per (patient, minute), in key order so that two batches adding to the
    same minutes lock them in the same order."""
    groups: dict[tuple[int, datetime], list[Row]] = {}
    for row in rows:
        key = (row["patient_id"], minute_of(row["timestamp"]))
        group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    minutes = []
    # A statistic at a time over a minute's rows, with min, max and reduce doing the loop.
    for key in sorted(groups):
        group = groups[key]
        minute = {"patient_id": key[0], "minute": key[1], **_EMPTY_MINUTE}
        minute["samples"] = len(group)
        minute["news2_samples"] = sum(row["news2_score"] is not None for row in group)
        for name, low, high, total in _STATISTICS:
            values = [value for row in group if (value := row[name]) is not None]
            if values:
                minute[low], minute[high] = min(values), max(values)
                # Added in order from 0, as one sample at a time would: not sum(), whose
                # float total is compensated from Python 3.12.
                minute[total] = reduce(add, values, 0)
        minutes.append(minute)
    return minutes


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
# SQLite's takes the minutes as parameters: through the driver's executemany.
_MERGE_MINUTES = BulkStatement(_MERGE["sqlite"], ["patient_id", "minute", *_EMPTY_MINUTE])


_ADD_TO_COUNT = (
    update(Patient.__table__)
    .where(Patient.__table__.c.id == bindparam("patient"))
    .values(sample_count=Patient.__table__.c.sample_count + bindparam("added"))
)
# PostgreSQL: the same in two statements, not one per patient (which took a fifth of storing
# a batch there). The rows are locked first, in id order, as raise_alerts locks them (the join
# of the UPDATE has no order of its own): two batches never wait on each other.
_LOCK_IN_ID_ORDER = text(
    "SELECT id FROM patients WHERE id = ANY(:patients) ORDER BY id FOR NO KEY UPDATE"
)
_ADD_TO_COUNTS = text(
    "UPDATE patients SET sample_count = patients.sample_count + added.n"
    " FROM unnest(CAST(:patients AS bigint[]), CAST(:added AS bigint[])) AS added (id, n)"
    " WHERE patients.id = added.id"
)


def add_stored(session: Session, rows: Sequence[Row]) -> None:
    """Add newly inserted patient_metrics rows to their minutes and their patients' counts."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    minutes = _minutes(rows)
    added = Counter(row["patient_id"] for row in rows)
    patients = sorted(added)
    if dialect == "postgresql":
        copy_rows(session, _STAGED_MINUTES, minutes)
        session.execute(_MERGE[dialect])
        session.execute(_LOCK_IN_ID_ORDER, {"patients": patients})
        session.execute(
            _ADD_TO_COUNTS, {"patients": patients, "added": [added[p] for p in patients]}
        )
        return
    _MERGE_MINUTES.execute(session, minutes)
    # In id order, as raise_alerts locks the same rows: two batches never wait on each other.
    session.execute(
        _ADD_TO_COUNT, [{"patient": patient, "added": added[patient]} for patient in patients]
    )
