"""A sample stamped in the future, already in the database, is no patient's newest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shared.db import db
from shared.models import Patient
from tests.helpers import insert_samples


@pytest.fixture
def add_sample(app: Flask) -> Callable[..., None]:
    def add(patient_uuid: str, moment: datetime, pulse: int) -> None:
        with db.sessionmaker(app).begin() as session:
            patient = session.scalar(select(Patient).where(Patient.uuid == uuid.UUID(patient_uuid)))
            row = {
                "patient_id": patient.id,
                "timestamp": moment,
                **dict(pulse=pulse, resp_rate=14, systolic=120, diastolic=80, spo2=97),
                "temperature": 36.6,
                "news2_score": 0,
                "news2_band": "low",
            }
            insert_samples(session, [row])

    return add


def test_newest_sample_ignores_one_stamped_ahead_of_the_clock(
    app: Flask, client: FlaskClient, make_patient: Callable, add_sample: Callable
) -> None:
    ada = make_patient("Ada")
    now = datetime.now(UTC)
    add_sample(ada.uuid, now - timedelta(seconds=10), pulse=70)
    add_sample(ada.uuid, now + timedelta(minutes=4), pulse=180)
    # Within the skew allowed (5 s): a producer whose clock is a little ahead.
    add_sample(ada.uuid, now + timedelta(seconds=2), pulse=71)

    listed = client.get("/api/v1/patients").json
    detail = client.get(f"/api/v1/patients/{ada.uuid}").json

    assert listed[0]["latest"]["pulse"] == 71
    assert detail["latest"]["pulse"] == 71
    assert detail["sample_count"] == 3


def test_only_future_samples_mean_no_newest_yet(
    client: FlaskClient, make_patient: Callable, add_sample: Callable
) -> None:
    bea = make_patient("Bea")
    add_sample(bea.uuid, datetime.now(UTC) + timedelta(hours=1), pulse=180)

    assert client.get(f"/api/v1/patients/{bea.uuid}").json["latest"] is None
