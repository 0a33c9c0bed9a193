"""The simulator over HL7: its ORU^R01s as gateway_app reads them, sent to the real gateway, and
what it does when the gateway is away or the peer is not a gateway at all."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import hl7
import pytest

from devserver.ports import free_port
from gateway_app.pcd01 import patient_uuid_for, read_observations
from patient_app import create_app
from patient_app.config import PATIENT_SETTINGS
from patient_app.hl7_sender import MAX_ACK_BYTES, Hl7Sender
from patient_app.oru import HospitalIdentifier, oru_r01
from shared.auth.roles import Role
from shared.config import ConfigError, load_settings
from shared.lifecycle import background_service, start_background, stop_background
from tests.auth import token_for
from tests.bearer import client_with
from tests.gateway_app.test_mllp import SECRET, serving, topic_publisher

PATIENT = uuid.UUID("8a1c7e0e-3f0b-4d7e-9a59-0c6f2b1d4e11")
IDENTIFIER = HospitalIdentifier("VIGIL-SIM", "SIM-0001")


def sample(pulse: int = 88, name: str = "Olga Smirnova", second: int = 5) -> dict:
    return {
        "patient_uuid": str(PATIENT),
        "patient_name": name,
        "timestamp": f"2026-12-03T10:15:{second:02d}.250+00:00",
        "pulse": pulse,
        "resp_rate": 18,
        "bp": "131/84",
        "spo2": 95,
        "temperature": 37.35,
    }


def sender(port: int, **options) -> Hl7Sender:
    options = {"timeout": 2.0, "retry_after": 0.0} | options
    return Hl7Sender("127.0.0.1", port, {PATIENT: IDENTIFIER}, "VIGIL-SIM", **options)


def gateway_on(tansu_bootstrap, topic_names, port: int = 0, **overrides):
    return serving(topic_publisher(tansu_bootstrap, topic_names), port=port, **overrides)


def test_the_gateway_reads_the_oru_back_as_the_same_sample():
    observations = read_observations(hl7.parse(oru_r01(sample(), IDENTIFIER, "VIGIL-SIM")))
    assert (observations.identifier_system, observations.identifier_value) == (
        "urn:vigil:assigning-authority:VIGIL-SIM",
        "SIM-0001",
    )
    read = observations.sample(str(PATIENT))
    written = sample()
    for vital in ("pulse", "resp_rate", "bp", "spo2", "temperature", "patient_name"):
        assert read[vital] == written[vital], vital
    assert datetime.fromisoformat(read["timestamp"]) == datetime(
        2026, 12, 3, 10, 15, 5, 250000, tzinfo=UTC
    )
    assert observations.header.sending_facility == "VIGIL-SIM"


@pytest.mark.parametrize(
    "name",
    ["Ivan|Pe^tr~o&v\\ski", "Жанна Д'Арк", "Eve\rOBX|9|NM|147842^MDC_ECG_HEART_RATE^MDC||300"],
    ids=["delimiters", "non-ascii", "segment injection"],
)
def test_a_name_cannot_break_out_of_its_field(name):
    message = hl7.parse(oru_r01(sample(name=name), IDENTIFIER, "VIGIL-SIM"))
    observations = read_observations(message)
    assert observations.name == name.replace("\r", " ")
    # However the name is spelled, the message has its one PID and six vitals.
    assert [str(segment(0)) for segment in message].count("OBX") == 6
    assert observations.sample(str(PATIENT))["pulse"] == 88


@pytest.mark.integration
def test_samples_reach_the_topic_through_the_gateway_under_the_gateway_uuid(
    tansu_bootstrap, topic_names, redis_settings, read_topic, wait_for
):
    with gateway_on(tansu_bootstrap, topic_names) as gateway:
        app = create_app(
            {
                "TESTING": True,
                **redis_settings,
                "PATIENT_PROTOCOL": "hl7",
                "HL7_GATEWAY_PORT": gateway.port,
                "PATIENT_ID_SECRET": SECRET,
                "PATIENT_NAME": "Bed",
                "PATIENT_COUNT": 2,
                "METRICS_INTERVAL": 0.2,
            }
        )
        start_background(app)
        try:
            service = background_service(app, "monitoring")
            messages = read_topic(topic_names["KAFKA_TOPIC"], 4)
            wait_for(lambda: service.sender.stats["delivered"] >= 4, message="4 acknowledged")
            health = client_with(app, token_for(Role.ADMIN)).get("/health")
        finally:
            stop_background(app)
    patients = service.patients.values()
    # The simulator names each patient as the gateway does: the uuid derived from its MRN.
    for patient in patients:
        expected = patient_uuid_for(patient.identifier.system, patient.identifier.value, SECRET)
        assert str(patient.uuid) == expected
    assert {m.key().decode() for m in messages} == {str(p.uuid) for p in patients}
    by_uuid = {str(p.uuid): p for p in patients}
    for message in messages:
        body = json.loads(message.value())
        patient = by_uuid[body["patient_uuid"]]
        assert body["patient_identifier"]["value"] == patient.identifier.value
        assert body["patient_name"] == patient.name
    assert health.status_code == 200
    assert health.json["hl7"]["hl7"] == "ok" and "kafka" not in health.json


@pytest.mark.integration
def test_samples_wait_for_a_gateway_that_is_away_and_go_in_order(
    tansu_bootstrap, topic_names, read_topic, wait_for
):
    port = free_port()
    hl7_sender = sender(port)
    for second in range(3):
        hl7_sender.send_metrics(PATIENT, sample(pulse=80 + second, second=second))
    health = hl7_sender.health()
    assert (health["hl7"], health["undelivered"], health["delivered"]) == ("unreachable", 3, 0)
    assert "Connection refused" in health["last_error"]

    with gateway_on(tansu_bootstrap, topic_names, port=port):
        wait_for(
            lambda: hl7_sender.poll() or hl7_sender.stats["delivered"] == 3,
            message="the waiting samples delivered",
        )
        messages = read_topic(topic_names["KAFKA_TOPIC"], 3)
        hl7_sender.stop()
    assert [json.loads(m.value())["pulse"] for m in messages] == [80, 81, 82]
    assert hl7_sender.health()["undelivered"] == 0


def test_a_full_backlog_drops_the_oldest_and_counts_it():
    hl7_sender = sender(free_port(), backlog=2)
    for second in range(3):
        hl7_sender.send_metrics(PATIENT, sample(second=second))
    health = hl7_sender.health()
    assert (health["undelivered"], health["dropped"]) == (2, 1)


def test_an_invalid_sample_is_refused_before_it_is_written():
    with pytest.raises(ValueError, match="invalid sample"):
        sender(free_port()).send_metrics(PATIENT, sample(pulse=-5))


@pytest.mark.integration
def test_a_sample_the_gateway_refuses_is_counted_and_not_sent_again(tansu_bootstrap, topic_names):
    # The gateway takes only another facility: AR.
    with gateway_on(
        tansu_bootstrap, topic_names, allowed_facilities=frozenset({"ICU-EAST"})
    ) as gateway:
        hl7_sender = sender(gateway.port)
        hl7_sender.send_metrics(PATIENT, sample())
        hl7_sender.poll()
        hl7_sender.stop()
    health = hl7_sender.health()
    assert (health["failed"], health["undelivered"], health["sent"]) == (1, 0, 1)
    assert health["last_error"].startswith("AR") and "not allowed" in health["last_error"]


# -- peers that are not HL7 gateways ----------------------------------------------------------


@contextmanager
def peer(answer: Callable[[socket.socket], None]) -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server whose every connection is handled by `answer`; its port, and what it read."""
    received: list[bytes] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(5)
            try:
                received.append(self.request.recv(65536))
                answer(self.request)
            except OSError:
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def silent(connection: socket.socket) -> None:
    connection.recv(1)  # until the sender gives up and closes


def endless(connection: socket.socket) -> None:
    connection.sendall(b"\x0b" + b"A" * (MAX_ACK_BYTES + 4096))


def framed_nonsense(connection: socket.socket) -> None:
    connection.sendall(b"\x0bHTTP/1.1 200 OK\x1c\r")


def out_of_step(connection: socket.socket) -> None:
    connection.sendall(b"\x0bMSH|^~\\&|GW|HOSP\rMSA|AA|SOMETHING-ELSE\x1c\r")


def unframed(connection: socket.socket) -> None:
    connection.sendall(b"MSH|^~\\&|X\rMSA|AA|1\x1c\r")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (silent, "timed out"),
        (endless, "longer than"),
        (unframed, "not MLLP-framed"),
        (out_of_step, "an ACK for message 'SOMETHING-ELSE'"),
    ],
    ids=["never answers", "never stops", "no frame start", "another message's ack"],
)
def test_a_peer_that_does_not_answer_like_a_gateway_keeps_the_sample_waiting(answer, error):
    with peer(answer) as (port, received):
        hl7_sender = sender(port, timeout=0.5)
        hl7_sender.send_metrics(PATIENT, sample())
    health = hl7_sender.health()
    assert (health["hl7"], health["undelivered"], health["delivered"]) == ("unreachable", 1, 0)
    assert error in health["last_error"]
    assert received and received[0].startswith(b"\x0bMSH|")


def test_an_answer_that_is_not_an_ack_counts_as_a_failure_and_is_not_resent():
    with peer(framed_nonsense) as (port, received):
        hl7_sender = sender(port)
        hl7_sender.send_metrics(PATIENT, sample())
        hl7_sender.poll()
    health = hl7_sender.health()
    assert (health["failed"], health["undelivered"], len(received)) == (1, 0, 1)
    assert "not an HL7 ACK" in health["last_error"]


@pytest.mark.parametrize("value", ["pigeon", "", "hl8"])
def test_the_protocol_setting_refuses_anything_but_kafka_or_hl7(value):
    with pytest.raises(ConfigError, match="PATIENT_PROTOCOL"):
        load_settings(PATIENT_SETTINGS, {"PATIENT_PROTOCOL": value}, dotenv=False)


def test_the_protocol_setting_is_read_without_case_or_spaces():
    loaded = load_settings(PATIENT_SETTINGS, {"PATIENT_PROTOCOL": " HL7 "}, dotenv=False)
    assert loaded["PATIENT_PROTOCOL"] == "hl7"


def test_a_chosen_uuid_is_refused_over_hl7_where_the_gateway_names_the_patient(redis_settings):
    with pytest.raises(ConfigError, match="PATIENT_UUID"):
        create_app(
            {"TESTING": True, **redis_settings}
            | {"PATIENT_PROTOCOL": "hl7", "PATIENT_UUID": PATIENT, "PATIENT_ID_SECRET": SECRET}
        )


def test_a_ca_file_alone_turns_tls_to_the_gateway_on(redis_settings, tmp_path):
    from devserver.tls import make_server_certificate

    ca_file = make_server_certificate(tmp_path / "tls").ca_file
    base = {"TESTING": True, **redis_settings, "PATIENT_ID_SECRET": SECRET}
    app = create_app(base | {"PATIENT_PROTOCOL": "hl7", "HL7_GATEWAY_CA_FILE": ca_file})
    assert background_service(app, "monitoring").sender.tls is not None
    plain = create_app(base | {"PATIENT_PROTOCOL": "hl7"})
    assert background_service(plain, "monitoring").sender.tls is None


def test_a_ca_file_that_is_no_certificate_is_refused_by_name(redis_settings, tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("no certificate here")
    with pytest.raises(ConfigError, match="HL7_GATEWAY_CA_FILE"):
        create_app(
            {"TESTING": True, **redis_settings, "PATIENT_ID_SECRET": SECRET}
            | {"PATIENT_PROTOCOL": "hl7", "HL7_GATEWAY_CA_FILE": bad}
        )


def test_a_client_certificate_without_its_key_is_refused_by_name(redis_settings, tmp_path):
    from devserver.tls import make_server_certificate

    files = make_server_certificate(tmp_path / "tls", client="monitor")
    with pytest.raises(ConfigError, match="HL7_GATEWAY_CERT_FILE and HL7_GATEWAY_KEY_FILE"):
        create_app(
            {"TESTING": True, **redis_settings, "PATIENT_ID_SECRET": SECRET}
            | {"PATIENT_PROTOCOL": "hl7", "HL7_GATEWAY_CERT_FILE": files.client_cert_file}
        )
