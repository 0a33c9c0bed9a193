"""Queries over samples. Functions take the caller's session and never commit."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Row, select
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


def list_metrics(
    session: Session, patient_id: int, *, since: datetime | None, until: datetime | None, limit: int
) -> list[Row]:
    """A patient's samples taken in [since, until), newest first, at most `limit`."""
    query = select(*SHOWN_COLUMNS).where(PatientMetric.patient_id == patient_id)
    if since is not None:
        query = query.where(PatientMetric.timestamp >= since)
    if until is not None:
        query = query.where(PatientMetric.timestamp < until)
    query = query.order_by(PatientMetric.timestamp.desc()).limit(limit)
    return list(session.execute(query))


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
    newer = aliased(PatientMetric)
    # Per patient, one backward step on the (patient_id, timestamp) unique index.
    newest_id = (
        select(newer.id)
        .where(newer.patient_id == Patient.id, newer.timestamp <= not_after)
        .order_by(newer.timestamp.desc())
        .limit(1)
        .correlate(Patient)
        .scalar_subquery()
    )
    newest_ids = select(newest_id).where(Patient.id.in_(patient_ids))
    samples = session.scalars(select(PatientMetric).where(PatientMetric.id.in_(newest_ids)))
    return {sample.patient_id: sample for sample in samples}
