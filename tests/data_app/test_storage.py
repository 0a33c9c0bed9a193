import uuid
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace
from sqlalchemy import func, select

from data_app.services import store_samples
from shared.db import db
from shared.models import Patient, PatientMetric
from shared.sample import PatientIdentifier, VitalsSample

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def samples_for(patient_uuid, count, name="Anna Ivanova", start=START):
    return [
        VitalsSample(
            patient_uuid=patient_uuid,
            patient_name=name,
            timestamp=start + timedelta(seconds=5 * i),
            pulse=70 + i % 5,
            resp_rate=14,
            systolic=120,
            diastolic=80,
            spo2=97,
            temperature=36.7,
        )
        for i in range(count)
    ]


def counts(app):
    with db.sessionmaker(app)() as session:
        return (
            session.scalar(select(func.count()).select_from(Patient)),
            session.scalar(select(func.count()).select_from(PatientMetric)),
        )


def test_patient_created_on_first_sight_and_metrics_inserted(data_app):
    pid = uuid.uuid4()
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, samples_for(pid, 10))) == 10
    assert counts(data_app) == (1, 10)
    with db.sessionmaker(data_app)() as session:
        patient = session.scalars(select(Patient).where(Patient.uuid == pid)).one()
        assert patient.name == "Anna Ivanova"
        newest = session.scalars(
            select(PatientMetric).order_by(PatientMetric.timestamp.desc())
        ).first()
        assert newest.timestamp == START + timedelta(seconds=45)
        assert newest.bp == "120/80"


def test_replayed_samples_are_not_stored_twice(data_app):
    pid = uuid.uuid4()
    batch = samples_for(pid, 20)
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, batch[:15])) == 15
    with db.sessionmaker(data_app).begin() as session:
        # Overlapping replay plus a duplicate inside the same batch.
        assert len(store_samples(session, batch[10:] + batch[-1:])) == 5
    assert counts(data_app) == (1, 20)


def test_many_patients_in_one_batch(data_app):
    batch = [s for i in range(50) for s in samples_for(uuid.uuid4(), 4, name=f"Bed {i}")]
    with db.sessionmaker(data_app).begin() as session:
        assert len(store_samples(session, batch)) == 200
    assert counts(data_app) == (50, 200)


def test_failed_transaction_stores_nothing(data_app):
    pid = uuid.uuid4()
    bad = samples_for(pid, 3)
    bad[2] = replace(bad[2], diastolic=None)  # violates NOT NULL inside the batch
    try:
        with db.sessionmaker(data_app).begin() as session:
            store_samples(session, bad)
    except Exception as exc:
        assert "diastolic" in str(exc).lower() or "null" in str(exc).lower()
    else:
        raise AssertionError("expected the batch to fail")
    assert counts(data_app) == (0, 0)


def test_an_open_read_transaction_does_not_block_writes(make_data_app, sqlite_url):
    """The API's readers and the consumer's writer share one SQLite file (WAL mode).

    Without WAL the writer's commit would wait on the reader's lock and fail after the busy
    timeout; with it, the write commits and the reader keeps a consistent snapshot.
    """
    import sqlite3

    app = make_data_app(DATABASE_URL=sqlite_url)
    pid = uuid.uuid4()
    with db.sessionmaker(app).begin() as session:
        store_samples(session, samples_for(pid, 5))
    reader = sqlite3.connect(db.engine(app).url.database, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM patient_metrics").fetchone() == (5,)
        with db.sessionmaker(app).begin() as session:
            later = samples_for(pid, 5, start=START.replace(hour=13))
            assert len(store_samples(session, later)) == 5
        assert reader.execute("SELECT count(*) FROM patient_metrics").fetchone() == (5,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM patient_metrics").fetchone() == (10,)
    finally:
        reader.close()


def test_a_new_patient_keeps_the_hospital_identifier_of_their_first_sample(data_app):
    pid = uuid.uuid4()
    identifier = PatientIdentifier(system="urn:oid:1.2.3", value="MRN-7")
    first = [replace(sample, patient_identifier=identifier) for sample in samples_for(pid, 2)]
    with db.sessionmaker(data_app).begin() as session:
        store_samples(session, first)
    with db.sessionmaker(data_app)() as session:
        patient = session.scalars(select(Patient).where(Patient.uuid == pid)).one()
    assert (patient.identifier_system, patient.identifier_value) == ("urn:oid:1.2.3", "MRN-7")
