"""Queries over the audit trail. Functions take the caller's session and only read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.audit import AuditEvent

# The export streams at most this many rows; narrow the filters for more.
EXPORT_MAX_ROWS = 100_000
EXPORT_BATCH = 1000


def _filtered(query: Select, filters: Mapping[str, Any]) -> Select:
    for name in ("user_id", "patient_uuid", "action", "outcome"):
        if name in filters:
            query = query.where(getattr(AuditEvent, name) == filters[name])
    if "since" in filters:
        query = query.where(AuditEvent.at >= filters["since"])
    if "until" in filters:
        query = query.where(AuditEvent.at < filters["until"])
    return query


def count_events(session: Session, filters: Mapping[str, Any]) -> int:
    query = _filtered(select(func.count()).select_from(AuditEvent), filters)
    return session.scalar(query) or 0


def list_events(
    session: Session, filters: Mapping[str, Any], *, offset: int, limit: int
) -> list[AuditEvent]:
    """One page of matching events, newest first."""
    query = _filtered(select(AuditEvent), filters).order_by(AuditEvent.seq.desc())
    return list(session.scalars(query.offset(offset).limit(limit)))


def export_csv(
    session: Session, filters: Mapping[str, Any], columns: tuple[str, ...]
) -> Iterator[str]:
    """The matching events as CSV text, oldest first, header first, in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    query = (
        _filtered(select(AuditEvent), filters)
        .order_by(AuditEvent.seq)
        .limit(EXPORT_MAX_ROWS)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    for event in session.scalars(query):
        writer.writerow([_cell(getattr(event, column)) for column in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A cell starting like a formula would run in a spreadsheet that opens the export.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
