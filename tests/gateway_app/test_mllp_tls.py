"""HL7 over MLLP over TLS: the simulator's sender and python-hl7's client against the gateway's
TLS listener, and what a peer without the right certificate, or without TLS, gets."""

from __future__ import annotations

import json
import socket
import ssl

import hl7
import pytest
from hl7.client import MLLPClient

import gateway_app
from devserver.tls import make_server_certificate
from patient_app.hl7_sender import Hl7Sender
from shared.config import ConfigError
from shared.tls import client_context, server_context
from tests.gateway_app.test_mllp import msa, oru, serving, topic_publisher
from tests.patient_app.test_hl7_sender import IDENTIFIER, PATIENT, sample

pytestmark = pytest.mark.integration


@pytest.fixture
def certificates(tmp_path):
    return make_server_certificate(tmp_path / "tls", hosts=("127.0.0.1", "localhost"))


@pytest.fixture
def tls_gateway(tansu_bootstrap, topic_names, certificates):
    tls = server_context(certificates.cert_file, certificates.key_file)
    with serving(topic_publisher(tansu_bootstrap, topic_names), tls=tls) as server:
        yield server


def tls_sender(port: int, ca_file) -> Hl7Sender:
    return Hl7Sender(
        "127.0.0.1",
        port,
        {PATIENT: IDENTIFIER},
        "VIGIL-SIM",
        timeout=2.0,
        retry_after=0.0,
        tls=client_context(ca_file),
    )


def test_the_simulator_sends_over_tls_and_the_sample_reaches_the_topic(
    tls_gateway, certificates, read_topic, topic_names
):
    sender = tls_sender(tls_gateway.port, certificates.ca_file)
    sender.send_metrics(PATIENT, sample(pulse=91))
    sender.stop()
    assert sender.health()["delivered"] == 1 and sender.health()["tls"] is True
    [message] = read_topic(topic_names["KAFKA_TOPIC"], 1)
    assert json.loads(message.value())["pulse"] == 91


def test_python_hl7s_client_over_a_tls_socket_is_answered(tls_gateway, certificates):
    client = MLLPClient.__new__(MLLPClient)  # its own send_message, over our socket
    raw = socket.create_connection(("127.0.0.1", tls_gateway.port), timeout=10)
    client.socket = client_context(certificates.ca_file).wrap_socket(
        raw, server_hostname="127.0.0.1"
    )
    client.encoding = "utf-8"
    with client:
        answer = client.send_message(oru("TLS-1"))
    assert msa(hl7.parse(answer.strip(b"\x0b\x1c\r").decode())) == ("AA", "TLS-1")


def test_plain_mllp_to_the_tls_listener_is_closed_and_others_are_still_served(
    tls_gateway, certificates
):
    with socket.create_connection(("127.0.0.1", tls_gateway.port), timeout=10) as plain:
        plain.sendall(b"\x0b" + oru("PLAIN").encode() + b"\x1c\r")
        # No ACK, nothing in the clear: the listener answers a handshake failure or closes.
        answer = b""
        try:
            while chunk := plain.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert b"MSA" not in answer and b"PLAIN" not in answer
    assert tls_gateway.stats["accepted"] == 0
    sender = tls_sender(tls_gateway.port, certificates.ca_file)
    sender.send_metrics(PATIENT, sample())
    sender.stop()
    assert sender.health()["delivered"] == 1


def test_the_simulator_refuses_a_gateway_whose_certificate_it_does_not_trust(tls_gateway, tmp_path):
    stranger = make_server_certificate(tmp_path / "other", ca_name="Another CA")
    sender = tls_sender(tls_gateway.port, stranger.ca_file)
    sender.send_metrics(PATIENT, sample())
    health = sender.health()
    assert (health["hl7"], health["undelivered"], health["delivered"]) == ("unreachable", 1, 0)
    assert "certificate" in health["last_error"].lower()
    assert tls_gateway.stats["accepted"] == 0


def test_the_simulator_refuses_a_certificate_for_another_name(
    tansu_bootstrap, topic_names, tmp_path
):
    elsewhere = make_server_certificate(tmp_path / "elsewhere", hosts=("gateway.example",))
    tls = server_context(elsewhere.cert_file, elsewhere.key_file)
    with serving(topic_publisher(tansu_bootstrap, topic_names), tls=tls) as server:
        sender = tls_sender(server.port, elsewhere.ca_file)
        sender.send_metrics(PATIENT, sample())
    assert sender.health()["delivered"] == 0
    assert "127.0.0.1" in sender.health()["last_error"]


def test_both_ends_speak_tls_1_2_at_least(certificates):
    # What a downgrade would need: this machine's OpenSSL refuses older versions on its own
    # side too, so a handshake could not show the listener's refusal.
    listener = server_context(certificates.cert_file, certificates.key_file)
    assert listener.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(certificates.ca_file).minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context().verify_mode == ssl.CERT_REQUIRED and client_context().check_hostname


@pytest.mark.parametrize(
    "files",
    [{"HL7_TLS_CERT_FILE": "cert"}, {"HL7_TLS_KEY_FILE": "key"}],
    ids=["certificate only", "key only"],
)
def test_a_certificate_without_its_key_or_a_key_without_its_certificate_is_refused(
    gateway_config, files, certificates
):
    paths = {"cert": certificates.cert_file, "key": certificates.key_file}
    with pytest.raises(ConfigError, match="HL7_TLS_CERT_FILE and HL7_TLS_KEY_FILE"):
        gateway_app.create_app(gateway_config | {k: paths[v] for k, v in files.items()})


def test_an_unreadable_key_is_refused_by_name(gateway_config, certificates, tmp_path):
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="HL7_TLS_KEY_FILE"):
        gateway_app.create_app(
            gateway_config | {"HL7_TLS_CERT_FILE": certificates.cert_file, "HL7_TLS_KEY_FILE": bad}
        )


# -- mutual TLS: the gateway asks every sender for a certificate its CA signed ----------------


@pytest.fixture
def monitors(tmp_path):
    """The gateway's certificate and, from the same CA, a monitor gateway's own."""
    return make_server_certificate(tmp_path / "mtls", client="icu-east-gateway")


@pytest.fixture
def mtls_gateway(tansu_bootstrap, topic_names, monitors):
    tls = server_context(monitors.cert_file, monitors.key_file, client_ca_file=monitors.ca_file)
    with serving(topic_publisher(tansu_bootstrap, topic_names), tls=tls) as server:
        yield server


def mtls_sender(port: int, monitors, cert_file=None, key_file=None) -> Hl7Sender:
    tls = client_context(monitors.ca_file, cert_file, key_file)
    return Hl7Sender("127.0.0.1", port, {PATIENT: IDENTIFIER}, "VIGIL-SIM", timeout=2.0, tls=tls)


def test_a_sender_with_a_certificate_from_the_ca_is_taken(mtls_gateway, monitors):
    sender = mtls_sender(
        mtls_gateway.port, monitors, monitors.client_cert_file, monitors.client_key_file
    )
    sender.send_metrics(PATIENT, sample())
    sender.stop()
    assert sender.health()["delivered"] == 1


@pytest.mark.parametrize("shown", ["none", "another CA's"])
def test_a_sender_without_a_certificate_from_the_ca_is_refused(
    mtls_gateway, monitors, tmp_path, shown
):
    other = make_server_certificate(tmp_path / "other", ca_name="Another CA", client="intruder")
    files = (None, None) if shown == "none" else (other.client_cert_file, other.client_key_file)
    sender = mtls_sender(mtls_gateway.port, monitors, *files)
    sender.send_metrics(PATIENT, sample())
    sender.stop(timeout=0)
    health = sender.health()
    assert (health["delivered"], health["undelivered"]) == (0, 1)
    assert mtls_gateway.stats["accepted"] == 0


def test_a_client_ca_without_tls_is_refused(gateway_config, monitors):
    with pytest.raises(ConfigError, match="HL7_TLS_CLIENT_CA_FILE"):
        gateway_app.create_app(gateway_config | {"HL7_TLS_CLIENT_CA_FILE": monitors.ca_file})
