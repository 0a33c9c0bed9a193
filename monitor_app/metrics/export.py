"""A patient's samples as CSV, streamed a page at a time, for quality reviews and research."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from monitor_app.metrics import services

CSV_COLUMNS = (
    "timestamp",
    "pulse",
    "resp_rate",
    "systolic",
    "diastolic",
    "spo2",
    "temperature",
    "news2_score",
    "news2_band",
)
# Samples read per query, and sent per chunk: about 60 kB of CSV.
PAGE_ROWS = 1000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def stream_samples_csv(
    sessions: sessionmaker[Session], patient_id: int, *, since: datetime, until: datetime
) -> Iterator[str]:
    """The CSV: a header row, then the patient's samples taken in [since, until), oldest
    first, one chunk per page.

    Each page is read in a session of its own, opened and closed here before the page is
    yielded, so nothing is held open between chunks: a slow client holds no database
    connection while it reads, and a client that goes away (the server closes the stream at
    its next chunk) leaves no session behind. The request's own session has been closed by
    then, at its teardown. Pages read after the first see samples stored since, if they
    fall in the part of the window not yet sent.
    """
    yield _csv_text([CSV_COLUMNS])
    after: datetime | None = None
    while True:
        with sessions() as session:
            rows = services.samples_page(
                session, patient_id, since=since, until=until, after=after, limit=PAGE_ROWS
            )
        if rows:
            yield _csv_text(_cells(row) for row in rows)
        if len(rows) < PAGE_ROWS:
            return
        after = rows[-1].timestamp


def _csv_text(rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _cells(row: Row) -> tuple[object, ...]:
    """One sample's cells, in CSV_COLUMNS' order; an unscored sample's NEWS2 cells empty."""
    return (
        row.timestamp.isoformat(),
        row.pulse,
        row.resp_rate,
        row.systolic,
        row.diastolic,
        row.spo2,
        float(row.temperature),
        row.news2_score,
        _text_cell(row.news2_band),
    )


def _text_cell(value: str | None) -> str | None:
    """A text cell no spreadsheet runs as a formula: prefixed with ' if it starts like one.

    The only text column, news2_band, holds one of shared.news2.BANDS (data_app scores each
    sample as it stores it), none of which starts like a formula; the guard is for a row
    written some other way. Numbers are left alone: a leading minus is a number, not a formula.
    """
    if value is None:
        return None
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value
