"""Queries over samples. Functions take the caller's session and never commit."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import DateTime, Row, Select, bindparam, select, type_coerce
from sqlalchemy.orm import Session, aliased

from shared.models import Patient, PatientMetric

# What a sample shows (monitor_app.metrics.schemas.dump_samples), read as plain rows: this is
# the API's busiest read, and ORM objects for it cost twice the query.
SHOWN_COLUMNS = (
    PatientMetric.timestamp,
    PatientMetric.pulse,
    PatientMetric.resp_rate,
    PatientMetric.systolic,
    PatientMetric.diastolic,
    PatientMetric.spo2,
    PatientMetric.temperature,
    PatientMetric.news2_score,
    PatientMetric.news2_band,
)
# A page shown as JSON, as a Core statement of the table's columns: an ORM-enabled select
# (of the mapped attributes) runs each row through the ORM's loading, for nothing here. The
# timestamp is read as stored, UTC without a zone (shared.db.UTCDateTime keeps it so on every
# backend): making each an aware datetime only for isoformat() to write its offset cost a
# fifth of the endpoint's time; the dump writes the offset (monitor_app.metrics.schemas).
_samples = PatientMetric.__table__.c
PAGE_COLUMNS = (
    type_coerce(_samples.timestamp, DateTime()).label("timestamp"),
    *(_samples[column.key] for column in SHOWN_COLUMNS[1:]),
)


def _page_query(since: bool, until: bool) -> Select:
    query = select(*PAGE_COLUMNS).where(_samples.patient_id == bindparam("patient_id"))
    if since:
        query = query.where(_samples.timestamp >= bindparam("since"))
    if until:
        query = query.where(_samples.timestamp < bindparam("until"))
    return query.order_by(_samples.timestamp.desc()).limit(bindparam("limit"))


# Built once, by which ends of the window are given; SQLAlchemy caches their compiled forms.
PAGE_QUERIES = {
    (since, until): _page_query(since, until) for since in (False, True) for until in (False, True)
}


def list_metrics(
    session: Session, patient_id: int, *, since: datetime | None, until: datetime | None, limit: int
) -> list[Row]:
    """A patient's samples taken in [since, until), newest first, at most `limit`; rows of
    PAGE_COLUMNS."""
    query = PAGE_QUERIES[since is not None, until is not None]
    values = {"patient_id": patient_id, "since": since, "until": until, "limit": limit}
    return list(session.execute(query, values))


def samples_page(
    session: Session,
    patient_id: int,
    *,
    since: datetime,
    until: datetime,
    after: datetime | None,
    limit: int,
) -> list[Row]:
    """One keyset page of a patient's samples taken in [since, until), oldest first: at most
    `limit` of them, each taken strictly after `after` (the previous page's last) if given.

    Timestamps are unique per patient, so the pages together hold every sample exactly once;
    each is one forward range scan of the (patient_id, timestamp) unique index.
    """
    query = select(*SHOWN_COLUMNS).where(
        PatientMetric.patient_id == patient_id,
        PatientMetric.timestamp >= since,
        PatientMetric.timestamp < until,
    )
    if after is not None:
        query = query.where(PatientMetric.timestamp > after)
    return list(session.execute(query.order_by(PatientMetric.timestamp).limit(limit)))


def _latest_samples_query() -> Select:
    newer = aliased(PatientMetric)
    # Per patient, one backward step on the (patient_id, timestamp) unique index.
    newest_id = (
        select(newer.id)
        .where(newer.patient_id == Patient.id, newer.timestamp <= bindparam("not_after"))
        .order_by(newer.timestamp.desc())
        .limit(1)
        .correlate(Patient)
        .scalar_subquery()
    )
    newest_ids = select(newest_id).where(Patient.id.in_(bindparam("patient_ids", expanding=True)))
    return select(PatientMetric).where(PatientMetric.id.in_(newest_ids))


# Built once: making the alias and adapting its columns took longer than running the query,
# on every patient page and detail.
LATEST_SAMPLES = _latest_samples_query()


def latest_samples(
    session: Session, patient_ids: Collection[int], *, not_after: datetime
) -> dict[int, PatientMetric]:
    """The newest sample taken at or before `not_after` of each given patient that has one,
    in a single query.

    A sample stamped in the future (a producer's clock ahead, or a forged one) is no patient's
    newest: it would hide every real sample until the clock caught up with it.
    """
    if not patient_ids:
        return {}
    values = {"not_after": not_after, "patient_ids": list(patient_ids)}
    return {sample.patient_id: sample for sample in session.scalars(LATEST_SAMPLES, values)}
