"""Storing samples: patients created on first sight, metrics inserted idempotently with their
NEWS2, and clinicians notified when a patient's risk band changes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from flask import Flask
from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from data_app.alarms import (
    AlarmChange,
    AlarmTiming,
    news2_alarm,
    raise_alarms,
    raise_invalid_data,
)
from data_app.alert_text import alert_message
from data_app.alerts import AlertDecision, AlertState, advance
from data_app.bulk import BulkStatement
from data_app.decoding import DEFAULT_CLOCK_SKEW, claimed_patient
from data_app.rollups import add_stored
from data_app.staging import copy_rows, staging_table, taken_from
from shared.analysis_queue import Origin
from shared.db import db, utcnow
from shared.events import PATIENTS
from shared.models import Notification, Patient, PatientMetric
from shared.news2 import News2, score_sample
from shared.notifications import add_notification, announce, events
from shared.sample import VitalsSample
from shared.telemetry import ALERTS_RAISED

_METRIC_FIELDS = ("timestamp", "pulse", "resp_rate", "systolic", "diastolic", "spo2", "temperature")
# What a batch writes of each row on PostgreSQL, through binary COPY (data_app/staging.py).
_STAGED_FIELDS = ("patient_id", *_METRIC_FIELDS, "received_at", "news2_score", "news2_band")
_STAGED_SAMPLES = staging_table("vigil_staged_samples", PatientMetric.__table__, _STAGED_FIELDS)
# On SQLite, the rows as they are: no RETURNING, and through the driver's executemany.
_INSERT_NEW_SAMPLES = BulkStatement(
    sqlite.insert(PatientMetric.__table__).on_conflict_do_nothing(), _STAGED_FIELDS
)
_MOVE_NEW_SAMPLES = (
    postgresql.insert(PatientMetric.__table__)
    .from_select(_STAGED_FIELDS, select(*taken_from(_STAGED_SAMPLES).c))
    .on_conflict_do_nothing()
    .returning(PatientMetric.__table__.c.patient_id, PatientMetric.__table__.c.timestamp)
)


class LiveSample(msgspec.Struct, frozen=True):
    """A stored sample as the live stream shows it (encoded by msgspec, in this order)."""

    patient_uuid: str
    patient_name: str | None
    timestamp: str
    pulse: int
    resp_rate: int
    systolic: int
    diastolic: int
    spo2: int
    temperature: float
    bp: str
    news2_score: int
    news2_band: str


class StoredSample(msgspec.Struct, frozen=True):
    """A sample that was new (not a replay), as stored."""

    patient_id: int
    patient_uuid: uuid.UUID
    sample: VitalsSample
    news2: News2
    # The patient was first stored by this sample's batch: the patients list changes.
    first_seen: bool = False

    def event(self, patient_uuid: str | None = None) -> LiveSample:
        """How the live stream shows it; `patient_uuid` is the uuid's text, if known."""
        sample = self.sample
        return LiveSample(
            str(self.patient_uuid) if patient_uuid is None else patient_uuid,
            sample.patient_name,
            sample.timestamp.isoformat(),
            sample.pulse,
            sample.resp_rate,
            sample.systolic,
            sample.diastolic,
            sample.spo2,
            sample.temperature,
            sample.bp,
            self.news2.score,
            self.news2.band,
        )


def vitals_event(stored: Sequence[StoredSample]) -> bytes:
    """The live stream's `vitals` event for a batch's new samples, as JSON: each patient's
    uuid written out once a batch, not once a sample."""
    texts: dict[int, str] = {}  # by patient id, which hashes in C, unlike a UUID
    samples = []
    for item in stored:
        text = texts.get(item.patient_id)
        if text is None:
            text = texts[item.patient_id] = str(item.patient_uuid)
        samples.append(item.event(text))
    return _EVENT_ENCODER.encode({"type": "vitals", "samples": samples})


# The samples' text was checked storable (data_app/decoding.py): msgspec encodes all of it.
_EVENT_ENCODER = msgspec.json.Encoder()


def _insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def patient_ids(
    session: Session,
    samples: Iterable[VitalsSample],
    remembered: dict[uuid.UUID, int] | None = None,
) -> tuple[dict[uuid.UUID, int], set[uuid.UUID]]:
    """Ids of the samples' patients, creating the ones never seen before; and which of them
    were.

    `remembered` holds ids this process already knows; they are not looked up again, and
    the ones found or created here are added to it.
    """
    known = {} if remembered is None else remembered
    firsts: dict[uuid.UUID, VitalsSample] = {}
    for sample in samples:
        if sample.patient_uuid not in known:
            firsts.setdefault(sample.patient_uuid, sample)
    if not firsts:
        return known, set()
    known.update(
        session.execute(select(Patient.uuid, Patient.id).where(Patient.uuid.in_(firsts))).all()
    )
    missing = [_new_patient(pid, sample) for pid, sample in firsts.items() if pid not in known]
    if missing:
        # Another consumer may create the same patient concurrently: ignore, then re-read.
        session.execute(_insert_ignoring_duplicates(session, Patient.__table__), missing)
        known.update(
            session.execute(
                select(Patient.uuid, Patient.id).where(
                    Patient.uuid.in_([m["uuid"] for m in missing])
                )
            ).all()
        )
    return known, {m["uuid"] for m in missing}


def _new_patient(patient_uuid: uuid.UUID, sample: VitalsSample) -> dict[str, Any]:
    """The patients row for a patient first seen in `sample`."""
    identifier = sample.patient_identifier
    return {
        "uuid": patient_uuid,
        "name": sample.patient_name or f"Patient {str(patient_uuid)[:8]}",
        "identifier_system": identifier.system if identifier else None,
        "identifier_value": identifier.value if identifier else None,
    }


def _utc(moment: datetime) -> datetime:
    # The key that matches a RETURNING row: stored and returned in UTC.
    return moment.astimezone(UTC)


def store_samples(
    session: Session,
    samples: Sequence[VitalsSample],
    remembered_ids: dict[uuid.UUID, int] | None = None,
) -> list[StoredSample]:
    """Insert validated samples with their NEWS2; a sample already stored is skipped.

    Returns the samples actually inserted. Runs in the caller's transaction, never commits.
    """
    if not samples:
        return []
    ids, created = patient_ids(session, samples, remembered_ids)
    scored: dict[tuple[int, datetime], StoredSample] = {}
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    # One arrival time for the batch: it also tells this batch's rows from earlier ones.
    received_at = utcnow()
    for sample in samples:
        patient_id = ids[sample.patient_uuid]
        key = (patient_id, _utc(sample.timestamp))
        if key in rows:  # the same sample twice in one batch: the first is stored
            continue
        news2 = score_sample(sample)
        scored[key] = StoredSample(
            patient_id,
            sample.patient_uuid,
            sample,
            news2,
            # A uuid hashes in Python: not looked up in the (nearly always empty) set for nothing.
            first_seen=bool(created) and sample.patient_uuid in created,
        )
        # Spelt out rather than read by name: this runs once a sample.
        rows[key] = {
            "patient_id": patient_id,
            "timestamp": sample.timestamp,
            "pulse": sample.pulse,
            "resp_rate": sample.resp_rate,
            "systolic": sample.systolic,
            "diastolic": sample.diastolic,
            "spo2": sample.spo2,
            "temperature": sample.temperature,
            "news2_score": news2.score,
            "news2_band": news2.band,
            "received_at": received_at,
        }
    inserted = _insert_new(session, list(rows.values()), received_at)
    if inserted is None:  # every row was new
        inserted = list(rows)
    add_stored(session, [rows[key] for key in inserted])
    return [scored[key] for key in inserted]


def _insert_new(
    session: Session, rows: list[dict[str, Any]], received_at: datetime
) -> list[tuple[int, datetime]] | None:
    """Insert the rows not stored yet; the (patient_id, timestamp) of those inserted, in order,
    or None when all were."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_new(session, rows)
    table = PatientMetric.__table__
    # On SQLite, RETURNING made every row cost twice as much. Without it, the row count
    # says whether every sample was new, as nearly all are; only a batch with replays needs
    # to read which rows it added.
    if _INSERT_NEW_SAMPLES.execute(session, rows) == len(rows):
        return None
    inserted = session.execute(
        select(table.c.patient_id, table.c.timestamp)
        .where(
            table.c.received_at == received_at,
            table.c.patient_id.in_({row["patient_id"] for row in rows}),
        )
        .order_by(table.c.id)
    )
    return [(patient_id, _utc(moment)) for patient_id, moment in inserted]


def _copy_new(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, datetime]]:
    """PostgreSQL: COPY the rows into the staging table, then move those not stored yet."""
    copy_rows(session, _STAGED_SAMPLES, rows)
    inserted = session.execute(_MOVE_NEW_SAMPLES)
    return [(patient_id, _utc(moment)) for patient_id, moment in inserted]


class RaisedAlert(NamedTuple):
    notification: Notification
    decision: AlertDecision
    alarm: AlarmChange | None  # the NEWS2 alarm it opened, raised or ended


def raise_alerts(
    session: Session,
    stored: Sequence[StoredSample],
    *,
    user_id: uuid.UUID,
    recovery_samples: int,
    max_clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[RaisedAlert]:
    """Advance each patient's alert state over their new samples, oldest first, and add a
    notification for every band change clinicians must hear about (data_app/alerts.py).

    In the batch's transaction: a replayed batch inserts no samples, so raises nothing again.
    """
    by_patient: dict[int, list[StoredSample]] = defaultdict(list)
    for item in stored:
        by_patient[item.patient_id].append(item)
    if not by_patient:
        return []
    # Plain rows, not ORM objects: every patient in the batch is read, few ever change.
    # Locked until the commit, so two consumers writing one patient at once (after partitions
    # were added, or from producers with different partitioners) take turns: the second reads
    # the first's state instead of raising the same alert and overwriting it. In id order, so
    # two batches never wait on each other; NO KEY UPDATE, so it does not wait on the key-share
    # locks that the other batch's sample inserts hold on the same rows. SQLite, which has no
    # row locks, already lets one writer in at a time.
    states = session.execute(
        select(
            Patient.id,
            Patient.alert_band,
            Patient.alert_calm_samples,
            Patient.alert_calm_band,
            Patient.alert_checked_at,
        )
        .where(Patient.id.in_(by_patient))
        .order_by(Patient.id)
        .with_for_update(key_share=True)
    )
    alerts = []
    # A state advanced by a sample from the future (stored before such samples were refused)
    # would ignore every real sample as older until the clock caught up: forget its time.
    newest_credible = datetime.now(UTC) + max_clock_skew
    for patient_id, *state_columns in states:
        before = AlertState(*state_columns)
        if before.checked_at is not None and before.checked_at > newest_credible:
            before = msgspec.structs.replace(before, checked_at=None)
        state = before
        decisions = []
        for item in sorted(by_patient[patient_id], key=lambda i: i.sample.timestamp):
            state, decision = advance(
                state, item.news2.band, item.sample.timestamp, recovery_samples
            )
            if decision is not None:
                decisions.append((item, decision))
        # Writing only when the alert state itself moved keeps the batch to one UPDATE per
        # patient whose risk changes, not one per patient.
        moved = (state.band, state.calm_samples, state.calm_band) != (
            before.band,
            before.calm_samples,
            before.calm_band,
        )
        if not (moved or decisions):
            continue
        patient = session.get(Patient, patient_id)
        for item, decision in decisions:
            title, text = alert_message(patient.name, item.news2, item.sample, decision)
            notification = add_notification(
                session, user_id=user_id, title=title, text=text, patient_id=patient.id
            )
            notification.patient = patient
            alarm = news2_alarm(
                session,
                patient,
                decision,
                item.news2.score,
                item.sample.timestamp,
                notification,
            )
            alerts.append(RaisedAlert(notification, decision, alarm))
        if moved:
            patient.alert_band = state.band
            patient.alert_calm_samples = state.calm_samples
            patient.alert_calm_band = state.calm_band
            patient.alert_checked_at = state.checked_at
    return alerts


class DataService:
    """Stores batches for the consumer thread: one app context and one transaction a batch;
    after the commit, alerts go to the analysis queue and everything to the live stream."""

    # Patients are never deleted, so an id once committed stays right; the bound only caps
    # memory on a ward whose patients come and go.
    MAX_REMEMBERED_PATIENTS = 100_000

    def __init__(self, app: Flask) -> None:
        self.app = app
        # uuid -> id of patients already stored: a batch of known patients (every batch but
        # a newcomer's) needs no lookup, which was a fifth of the consumer's time.
        self.patient_ids: dict[uuid.UUID, int] = {}
        # Samples refused in a row, by the patient they claimed: after INVALID_DATA_ALARM_AFTER
        # a technical alarm. Counted per process since its start: a restart only delays it.
        self.refused_in_a_row: dict[uuid.UUID, int] = {}
        self.alarm_timing = AlarmTiming(
            delay=timedelta(seconds=app.config["ALARM_DELAY_SECONDS"]),
            max_gap=timedelta(seconds=app.config["ALARM_MAX_GAP_SECONDS"]),
        )

    def store(self, samples: Sequence[VitalsSample]) -> int:
        """Store a batch atomically; returns the rows inserted (the rest were replays)."""
        config = self.app.config
        if len(self.patient_ids) > self.MAX_REMEMBERED_PATIENTS:
            self.patient_ids.clear()
        with self.app.app_context():
            try:
                with db.sessionmaker().begin() as session:
                    stored = store_samples(session, samples, self.patient_ids)
                    alerts = raise_alerts(
                        session,
                        stored,
                        user_id=config["WARD_ID"],
                        recovery_samples=config["ALERT_RECOVERY_SAMPLES"],
                        max_clock_skew=timedelta(seconds=config["MAX_CLOCK_SKEW_SECONDS"]),
                    )
                    alarms = raise_alarms(
                        session, stored, user_id=config["WARD_ID"], timing=self.alarm_timing
                    )
            except BaseException:
                # Ids learnt in a transaction that rolled back may not exist.
                self.patient_ids.clear()
                raise
            for item in stored:
                self.refused_in_a_row.pop(item.patient_uuid, None)
            if stored:
                # Only a new patient changes the patients list; newest samples are read live.
                new_patient = any(item.first_seen for item in stored)
                events(self.app).publish_encoded(
                    "vitals",
                    vitals_event(stored),
                    invalidates=(PATIENTS,) if new_patient else (),
                )
            # An alarm is shown the moment it is stored, never after its analysis.
            for change in [a.alarm for a in alerts if a.alarm is not None] + alarms:
                events(self.app).publish(f"alarm.{change.kind}", {"alarm": change.view})
            announce(
                self.app,
                "notification.created",
                [a.notification for a in alerts]
                + [c.notification for c in alarms if c.notification is not None],
                source=Origin.ALERT,
            )
        for alert in alerts:
            ALERTS_RAISED.labels(alert.decision.band).inc()
        return len(stored)

    def note_refused(self, values: Sequence[bytes | None]) -> None:
        """Count dead-lettered samples against the patient each claims; raise the technical
        alarm for those refused INVALID_DATA_ALARM_AFTER times in a row."""
        counts = self.refused_in_a_row
        if len(counts) > self.MAX_REMEMBERED_PATIENTS:
            counts.clear()
        due: dict[uuid.UUID, int] = {}
        for value in values:
            patient = claimed_patient(value)
            if patient is None:
                continue
            counts[patient] = counts.get(patient, 0) + 1
            if counts[patient] == self.app.config["INVALID_DATA_ALARM_AFTER"]:
                due[patient] = counts[patient]
        if not due:
            return
        with self.app.app_context():
            with db.sessionmaker().begin() as session:
                changes = raise_invalid_data(
                    session, due, user_id=self.app.config["WARD_ID"], at=utcnow()
                )
            for change in changes:
                events(self.app).publish(f"alarm.{change.kind}", {"alarm": change.view})
            announce(
                self.app,
                "notification.created",
                [c.notification for c in changes if c.notification is not None],
                source=Origin.ALERT,
            )
