"""Patient uuids: stable for one simulator, not to be worked out from the patient's name."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from patient_app import create_app
from patient_app.id_secret import main as id_secret_main
from patient_app.id_secret import read_secret
from shared.config import ConfigError
from shared.lifecycle import background_service

NAME = "Ivan Petrov"
SECRET = "a0" * 32
# What patient_app derived before: uuid5 under a namespace in its source, so knowing a
# patient's name was knowing their id.
OLD_NAMESPACE = uuid.UUID("5b0f8d3e-2f41-4c55-9a57-6a1c3f0e9d21")


def simulated_uuids(**config) -> list[uuid.UUID]:
    app = create_app(
        {"TESTING": True, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATIENT_NAME": NAME, **config}
    )
    return list(background_service(app, "monitoring").patients)


def test_the_uuid_is_not_the_names_uuid5_and_is_stable_for_one_secret():
    (first,) = simulated_uuids(PATIENT_ID_SECRET=SECRET)
    (restarted,) = simulated_uuids(PATIENT_ID_SECRET=SECRET)
    (elsewhere,) = simulated_uuids(PATIENT_ID_SECRET="b1" * 32)

    assert first == restarted
    assert first not in (elsewhere, uuid.uuid5(OLD_NAMESPACE, NAME))
    assert first.version == 4


def test_numbered_patients_are_stable_and_distinct_under_one_secret():
    first = simulated_uuids(PATIENT_ID_SECRET=SECRET, PATIENT_COUNT=3)
    assert first == simulated_uuids(PATIENT_ID_SECRET=SECRET, PATIENT_COUNT=3)
    assert len(set(first)) == 3
    assert uuid.uuid5(OLD_NAMESPACE, f"{NAME} 1") not in first


def test_without_a_secret_the_uuid_is_random():
    (first,) = simulated_uuids(PATIENT_ID_SECRET=None)
    (second,) = simulated_uuids(PATIENT_ID_SECRET=None)
    assert first != second
    assert first != uuid.uuid5(OLD_NAMESPACE, NAME)


def test_a_uuid_given_by_the_operator_wins():
    given = uuid.uuid4()
    assert simulated_uuids(PATIENT_ID_SECRET=SECRET, PATIENT_UUID=given) == [given]


def test_a_short_secret_is_refused(monkeypatch):
    monkeypatch.setenv("PATIENT_ID_SECRET", "short")
    with pytest.raises(ConfigError, match="PATIENT_ID_SECRET: must be at least 16"):
        create_app({"TESTING": True})


def test_the_secret_file_is_made_once_readable_by_its_owner_only(tmp_path: Path, capsys):
    path = tmp_path / "var" / "patient-id.secret"
    assert id_secret_main([str(path)]) == 0
    secret = read_secret(path)
    assert secret is not None and len(secret) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert id_secret_main([str(path)]) == 0
    assert read_secret(path) == secret
    assert capsys.readouterr().out.splitlines() == [
        f"patient id secret created: {path}",
        f"patient id secret kept: {path}",
    ]
    assert read_secret(tmp_path / "absent") is None
