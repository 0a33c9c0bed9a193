"""The simulator's services and HTTP surface, without a broker."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from patient_app import create_app
from patient_app.patients import build_patients, patient_uuid_for
from shared.auth.roles import Role
from shared.config import ConfigError
from shared.lifecycle import background_service, stop_background
from shared.schemas import vitals_schema
from tests.auth import token_for
from tests.bearer import client_with


def test_generated_sample_has_the_message_fields_and_passes_the_shared_schema(metrics_service):
    (sample,) = metrics_service.generate_samples()
    assert set(sample) >= {"timestamp", "pulse", "resp_rate", "bp", "spo2", "temperature"}
    assert vitals_schema.validate(sample) == {}
    assert datetime.fromisoformat(sample["timestamp"]).tzinfo == UTC
    systolic, diastolic = map(int, sample["bp"].split("/"))
    assert systolic > diastolic


def test_uuid_is_stable_per_name_unless_given():
    secret = "s" * 32
    assert patient_uuid_for("Ivan Petrov", secret) == patient_uuid_for("Ivan Petrov", secret)
    assert patient_uuid_for("Ivan Petrov", secret) != patient_uuid_for("Anna Ivanova", secret)
    given = uuid.uuid4()
    assert build_patients("Ivan Petrov", patient_uuid=given)[0].uuid == given


def test_many_patients_in_one_process_have_distinct_names_and_uuids():
    patients = build_patients("Bed", count=120, seed=1)
    assert len({p.uuid for p in patients}) == 120
    assert patients[0].name == "Bed 001" and patients[-1].name == "Bed 120"


def test_same_seed_reproduces_the_run():
    first = build_patients("Bed", count=3, seed=42)
    second = build_patients("Bed", count=3, seed=42)
    assert [p.bed for p in first] == [p.bed for p in second] == [0, 1, 2]
    first_ward, second_ward = first[0].ward, second[0].ward
    assert first_ward is not second_ward
    assert [list(first_ward.step(5).rows()) for _ in range(50)] == [
        list(second_ward.step(5).rows()) for _ in range(50)
    ]


def test_deterioration_seconds_reach_every_simulated_patient():
    app = create_app(
        {
            "TESTING": True,
            "PATIENT_NAME": "Bed",
            "PATIENT_COUNT": 2,
            "PATIENT_SCENARIO": "deteriorating",
            "PATIENT_SEED": 3,
            "PATIENT_DETERIORATION_SECONDS": 30,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
    )
    assert app.config["PATIENT_DETERIORATION_SECONDS"] == 30
    service = background_service(app, "monitoring")
    for _ in range(24):  # two minutes
        samples = service.generate_samples()
    assert len(samples) == 2
    for sample in samples:
        assert sample["pulse"] >= 120 and sample["spo2"] <= 91, sample


@pytest.fixture
def ward_app(redis_settings):
    app = create_app(
        {
            "TESTING": True,
            **redis_settings,
            "PATIENT_NAME": "Bed",
            "PATIENT_COUNT": 12,
            "PATIENT_ID_SECRET": "0123456789abcdef" * 4,
            "PATIENT_SEED": 5,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
    )
    yield app
    stop_background(app)


def test_one_ward_step_gives_every_patient_a_sample_of_the_wire_format(ward_app):
    service = background_service(ward_app, "monitoring")
    samples = service.generate_samples()
    assert [s["patient_uuid"] for s in samples] == [str(p) for p in service.patients]
    assert [s["patient_name"] for s in samples] == [f"Bed {n:02d}" for n in range(1, 13)]
    for sample in samples:
        assert vitals_schema.validate(sample) == {}
        # Python numbers, not numpy's: the producer's json.dumps takes nothing else.
        assert json.loads(json.dumps(sample)) == sample
        assert [type(sample[k]) for k in ("pulse", "resp_rate", "spo2", "temperature")] == [
            int,
            int,
            int,
            float,
        ]
        assert set(sample) == {
            "patient_uuid",
            "patient_name",
            "timestamp",
            "pulse",
            "resp_rate",
            "bp",
            "spo2",
            "temperature",
        }


def test_switching_one_patient_of_a_ward_over_http(ward_app, wait_for):
    service = background_service(ward_app, "monitoring")
    client = client_with(ward_app, token_for(Role.ADMIN))
    target = list(service.patients.values())[7]
    response = client.put(f"/api/v1/patients/{target.uuid}/scenario", json={"scenario": "sepsis"})
    assert response.status_code == 200
    assert response.json["uuid"] == str(target.uuid) and response.json["scenario"] == "sepsis"
    listed = {p["uuid"]: p["scenario"] for p in client.get("/api/v1/patients").json}
    assert listed == {
        str(p.uuid): "sepsis" if p is target else "normal" for p in service.patients.values()
    }
    for _ in range(15 * 12):  # 15 minutes at 5 s
        samples = service.generate_samples()
    by_uuid = {s["patient_uuid"]: s for s in samples}
    assert by_uuid[str(target.uuid)]["temperature"] >= 38.8
    assert all(s["temperature"] < 37.5 for u, s in by_uuid.items() if u != str(target.uuid))


def test_patients_of_two_wards_cannot_share_a_service():
    from patient_app.monitoring import MetricsService

    first = build_patients("A", count=2, seed=1, id_secret="s" * 32)
    second = build_patients("B", count=2, seed=1, id_secret="s" * 32)
    with pytest.raises(ValueError, match="one ward"):
        MetricsService([first[0], second[1]], sender=None, interval=1.0)
    with pytest.raises(ValueError, match="one ward"):
        MetricsService(first[:1], sender=None, interval=1.0)


def test_identity_and_latest_sample(app, client, metrics_service):
    body = client.get("/api/v1/patient").json
    assert body["name"] == "Ivan Petrov"
    assert body["uuid"] == str(patient_uuid_for("Ivan Petrov", app.config["PATIENT_ID_SECRET"]))
    assert body["scenario"] == "normal"
    assert body["latest"] is None


def test_switching_scenario(client, metrics_service):
    pid = metrics_service.patient().uuid
    response = client.put(f"/api/v1/patients/{pid}/scenario", json={"scenario": "sepsis"})
    assert response.status_code == 200
    assert response.json["scenario"] == "sepsis"
    assert metrics_service.patient().scenario == "sepsis"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/patients/{pid}/scenario", {"scenario": "zombie"}, 422),
        ("/api/v1/patients/{pid}/scenario", {}, 422),
        ("/api/v1/patients/{pid}/scenario", {"scenario": "sepsis", "extra": 1}, 422),
        ("/api/v1/patients/not-a-uuid/scenario", {"scenario": "sepsis"}, 422),
        ("/api/v1/patients/" + str(uuid.UUID(int=1)) + "/scenario", {"scenario": "sepsis"}, 404),
    ],
)
def test_scenario_errors_use_the_shared_json_body(client, metrics_service, path, body, code):
    response = client.put(path.format(pid=metrics_service.patient().uuid), json=body)
    assert response.status_code == code
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert response.json["code"] == code


def test_health_reports_unreachable_kafka(client):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["kafka"]["kafka"] == "unreachable"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_INTERVAL", "0"),
        ("METRICS_INTERVAL", "abc"),
        ("PATIENT_UUID", "nope"),
        ("PATIENT_SCENARIO", "zombie"),
        ("PATIENT_COUNT", "0"),
        ("PATIENT_COUNT", "100001"),
        ("PATIENT_DETERIORATION_SECONDS", "0"),
        ("PATIENT_DETERIORATION_SECONDS", "86401"),
    ],
)
def test_bad_setting_stops_the_app_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        create_app()


def test_bad_setting_on_the_command_line_is_one_clear_line():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "patient_app", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == "configuration error: METRICS_INTERVAL: must be greater than 0, got '0'"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "abc"}, "configuration error: PORT: expected an integer, got 'abc'"),
        ({"PATIENT_UUID": "123"}, "configuration error: PATIENT_UUID: expected a UUID, got '123'"),
    ],
)
def test_bad_environment_for_the_command_line_is_one_clear_line(monkeypatch, env, expected):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "patient_app"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == expected


def test_settings_are_read_from_a_dotenv_file(tmp_path, monkeypatch):
    from shared import config

    (tmp_path / ".env").write_text("PATIENT_NAME=Olga From Dotenv\nMETRICS_INTERVAL=2.5\n")
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    for name in ("PATIENT_NAME", "METRICS_INTERVAL"):
        # setenv first so monkeypatch restores the variable's absence after load_dotenv.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATIENT_SEED", "3")  # the real environment wins over the file
    app = create_app()
    assert app.config["PATIENT_NAME"] == "Olga From Dotenv"
    assert app.config["METRICS_INTERVAL"] == 2.5
    assert app.config["PATIENT_SEED"] == 3
