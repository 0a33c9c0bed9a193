"""Two writers at one patient at once: the alert state is read under a lock and never lost."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from data_app.services import raise_alerts, store_samples
from devserver.processes import wait_until
from shared.db import make_engine, migrate
from shared.models import Notification, Patient
from shared.sample import VitalsSample
from tests.data_app.test_alert_storage import CRITICAL, MEDIUM, NORMAL, START, stream

WARD = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _write(
    engine,
    samples: list[VitalsSample],
    locked: threading.Event | None = None,
    hold: threading.Event | None = None,
) -> None:
    """Store a batch and raise its alerts in one transaction, as a consumer does; then set
    `locked` and keep the transaction open until `hold` is set."""
    with Session(engine) as session, session.begin():
        stored = store_samples(session, samples)
        raise_alerts(session, stored, user_id=WARD, recovery_samples=3)
        if locked is not None:
            locked.set()
            assert hold.wait(30), "the test never let the first writer commit"


def _lock_waiters(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def test_a_second_writer_waits_for_the_first_and_raises_no_repeat_alert(postgres_url):
    engine = make_engine(postgres_url)
    migrate(engine)
    patient = uuid.uuid4()
    try:
        _write(engine, stream(patient, (NORMAL, 1)))
        # The first writer sees the patient go high; the second, a later and better sample.
        # Unlocked, the second would read the old state (low), call its medium sample a rise,
        # alert, and overwrite the first's "high".
        first = stream(patient, (CRITICAL, 2), start=START + timedelta(minutes=1))
        second = stream(patient, (MEDIUM, 1), start=START + timedelta(minutes=2))
        first_locked, commit_first = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def run(samples, *events):
            try:
                _write(engine, samples, *events)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        writer_one = threading.Thread(target=run, args=(first, first_locked, commit_first))
        writer_one.start()
        assert first_locked.wait(20), "the first writer never reached its alerts"
        writer_two = threading.Thread(target=run, args=(second,))
        writer_two.start()
        # Without the row lock the second writer would finish now.
        wait_until(lambda: _lock_waiters(engine) >= 1, message="the second writer to wait")
        assert writer_two.is_alive()
        commit_first.set()
        writer_one.join(30)
        writer_two.join(30)
        assert not errors, errors

        with Session(engine) as session:
            titles = session.scalars(select(Notification.title)).all()
            state = session.scalar(select(Patient).where(Patient.uuid == patient))
            assert len(titles) == 1, titles
            # The second writer folded its sample into the first's state: still high, with
            # one calmer sample counted towards a recovery.
            assert (state.alert_band, state.alert_calm_samples) == ("high", 1)
            assert state.alert_checked_at == second[-1].timestamp
    finally:
        engine.dispose()
