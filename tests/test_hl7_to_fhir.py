"""HL7 v2 in, FHIR R4 out, as separate processes started the way the Procfile starts them:
python-hl7's own `mllp_send` -> gateway_app -> broker -> data_app -> database -> monitor_app's
FHIR API, read back as resources that fhir.resources validates."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from devserver.ports import free_port
from devserver.processes import BIN, ROOT, Processes, get_json, wait_until
from shared.auth.roles import Role
from tests.auth import account_in
from tests.fhir import LOINC, VITAL_SIGNS, validated
from tests.helpers import read_messages

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "gateway_app" / "examples" / "oru-r01.hl7"
# PID-3 of the example: MRN-4711, assigned by HOSP (no URI known for it).
IDENTIFIER = "urn:vigil:assigning-authority:HOSP|MRN-4711"
HEART_RATE = f"{LOINC}|8867-4"


def stamped(example: Path, folder: Path, taken: datetime) -> Path:
    """A copy of `example` taken at `taken`: data_app refuses samples older than it keeps
    (RAW_RETENTION_DAYS), and the example's own time stays fixed as the calendar moves on."""
    text = re.sub(r"\b20\d{12}\+0000\b", taken.strftime("%Y%m%d%H%M%S+0000"), example.read_text())
    copy = folder / example.name
    copy.write_text(text)
    return copy


@pytest.fixture
def system(tansu_bootstrap, topic_names, redis_settings, tmp_path):
    """gateway_app, data_app and monitor_app on one SQLite file; their URLs and HL7 port."""
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    clinician = account_in(database_url, Role.CLINICIAN)
    processes = Processes(
        tmp_path,
        {
            **topic_names,
            **redis_settings,
            "KAFKA_BOOTSTRAP_SERVERS": tansu_bootstrap,
            "DATABASE_URL": database_url,
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_GROUP_ID": "hl7-system-test",
            "PATIENT_ID_SECRET": "p" * 32,
        },
    )
    ports = {"data": free_port(), "monitor": free_port(), "gateway": free_port()}
    hl7_port = free_port()
    processes.start_gunicorn("data", "data_app", ports["data"])
    processes.start_monitor("monitor", ports["monitor"])
    processes.start(
        "gateway",
        [sys.executable, "-m", "gateway_app", "--port", str(ports["gateway"])],
        HL7_PORT=str(hl7_port),
    )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    def monitor_serving() -> bool:
        processes.check_running("monitor")
        return get_json(f"{urls['monitor']}/health")[0] == 200

    try:
        # The tests read back through monitor_app, which boots beside the others.
        wait_until(monitor_serving, timeout=60, interval=0.2, message="monitor_app serving")
        yield urls, hl7_port, clinician.token, processes
    finally:
        processes.stop_all()


def mllp_send(port: int, path: Path, loose: bool = True) -> str:
    """python-hl7's command-line sender, as the README runs it; what it printed (the ACKs).
    `loose`: the file is HL7 with newlines; else MLLP blocks, sent as they are."""
    options = ["--loose"] if loose else []
    result = subprocess.run(  # noqa: S603
        [str(BIN / "mllp_send"), *options, "-p", str(port), "-f", str(path), "127.0.0.1"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return result.stdout.decode()


def fhir(urls, token, path: str, **query) -> dict:
    status, body = get_json(f"{urls['monitor']}/fhir/{path}?{urlencode(query)}", token=token)
    assert status == 200, body
    return validated(body)


def test_an_oru_sent_with_mllp_send_is_read_back_as_a_fhir_observation(
    system, wait_for, tansu_bootstrap, topic_names, tmp_path
):
    urls, hl7_port, token, processes = system
    wait_for(
        lambda: get_json(urls["gateway"] + "/health")[0] == 200,
        timeout=60,
        message="the gateway listening",
    )
    wait_for(lambda: get_json(urls["monitor"] + "/health")[0] == 200, timeout=60)

    taken = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    answer = mllp_send(hl7_port, stamped(EXAMPLE, tmp_path, taken))
    assert "MSA|AA|MSG0001" in answer

    def patient_found():
        bundle = fhir(urls, token, "Patient", identifier=IDENTIFIER)
        return bundle.get("entry")

    [entry] = wait_for(patient_found, timeout=60, interval=0.3, message="the patient in FHIR")
    patient = entry["resource"]
    assert patient["name"][0]["text"] == "Ivan Petrov"

    def heart_rates():
        bundle = fhir(urls, token, "Observation", patient=patient["id"], code=HEART_RATE)
        return bundle.get("entry")

    [entry] = wait_for(heart_rates, timeout=30, interval=0.3, message="the heart rate in FHIR")
    observation = entry["resource"]
    # The R4 vital-signs profile's heart rate: its category, code, unit and time.
    assert observation["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]
    assert observation["status"] == "final"
    [category] = observation["category"]
    assert category["coding"][0]["system"] == VITAL_SIGNS
    assert category["coding"][0]["code"] == "vital-signs"
    assert {"system": LOINC, "code": "8867-4"}.items() <= observation["code"]["coding"][0].items()
    assert observation["subject"]["reference"] == f"Patient/{patient['id']}"
    assert datetime.fromisoformat(observation["effectiveDateTime"]) == taken
    quantity = observation["valueQuantity"]
    # The ECG's rate (MDC_ECG_HEART_RATE, 72), preferred over the pulse oximeter's (75).
    assert quantity["value"] == 72
    assert (quantity["system"], quantity["code"]) == ("http://unitsofmeasure.org", "/min")
    # And the same Observation read by its id.
    assert fhir(urls, token, f"Observation/{observation['id']}")["id"] == observation["id"]

    # A message without a heart rate parses, but cannot be used: AE, and the dead-letter
    # topic has its bytes with the reason.
    text = EXAMPLE.read_text().splitlines()
    broken = [line for line in text if "HEART_RATE" not in line and "PULS_RATE" not in line]
    broken_path = tmp_path / "no-heart-rate.hl7"
    broken_path.write_text("\n".join(broken).replace("MSG0001", "MSG0002") + "\n")
    answer = mllp_send(hl7_port, broken_path)
    assert "MSA|AE|MSG0002" in answer and "missing vitals: pulse" in answer
    # Bytes that are not HL7 at all: AR, and a dead letter too.
    garbage = tmp_path / "garbage.hl7"
    garbage.write_bytes(b"\x0bGET / HTTP/1.1\x1c\r")
    assert "MSA|AR" in mllp_send(hl7_port, garbage, loose=False)

    letters = read_messages(tansu_bootstrap, topic_names["KAFKA_DLQ_TOPIC"], 2)
    reasons = sorted(dict(letter.headers())["dlq.reason"].decode() for letter in letters)
    assert reasons[0].startswith("missing vitals: pulse") and reasons[1].startswith("not HL7")
    assert any(b"MSG0002" in letter.value() for letter in letters)
    processes.check_running("gateway")
    status, health = get_json(urls["gateway"] + "/health")
    assert (status, health) == (200, {"status": "ok"})


def test_the_simulator_over_hl7_is_read_back_in_fhir_under_its_own_uuid(system, wait_for):
    """`python -m patient_app --protocol hl7`, as the Procfile runs one patient: its samples go
    through the gateway, and Vigil knows the patient by the uuid the simulator shows."""
    urls, hl7_port, token, processes = system
    simulator = f"http://127.0.0.1:{free_port()}"
    processes.start(
        "patient",
        [sys.executable, "-m", "patient_app", "--name", "Olga Smirnova", "--protocol", "hl7"]
        + ["--port", simulator.rsplit(":", 1)[1], "--interval", "0.5"],
        HL7_GATEWAY_PORT=str(hl7_port),
    )

    def simulated():
        status, body = get_json(simulator + "/api/v1/patient", token=token)
        return body if status == 200 and body["latest"] else None

    patient = wait_for(simulated, timeout=60, interval=0.3, message="the simulated patient")
    identifier = patient["identifier"]
    assert identifier["system"] == "urn:vigil:assigning-authority:VIGIL-SIM"

    def found():
        query = f"{identifier['system']}|{identifier['value']}"
        return fhir(urls, token, "Patient", identifier=query).get("entry")

    [entry] = wait_for(found, timeout=60, interval=0.3, message="the simulated patient in FHIR")
    assert entry["resource"]["id"] == patient["uuid"]
    assert entry["resource"]["name"][0]["text"] == "Olga Smirnova"

    def heart_rates():
        bundle = fhir(urls, token, "Observation", patient=patient["uuid"], code=HEART_RATE)
        return bundle.get("entry")

    [first, *_] = wait_for(heart_rates, timeout=30, interval=0.3, message="its heart rates")
    assert 20 <= first["resource"]["valueQuantity"]["value"] <= 250
    processes.check_running("patient")
    processes.check_running("gateway")
