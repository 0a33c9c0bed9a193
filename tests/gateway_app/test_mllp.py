"""The MLLP server against the real broker, fed by python-hl7's own MLLP client."""

import ipaddress
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import hl7
import pytest
from hl7.client import MLLPClient

from gateway_app.mllp import GatewaySettings, MllpServer
from gateway_app.publisher import Publisher
from tests.helpers import read_messages

pytestmark = pytest.mark.integration

SECRET = "s" * 32


def oru(control_id: str = "M1", mrn: str = "MRN-1", pulse: str = "72", facility="ICU1") -> str:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    rows = [
        ("147842^MDC_ECG_HEART_RATE^MDC", pulse, "264864^MDC_DIM_BEAT_PER_MIN^MDC"),
        ("151562^MDC_RESP_RATE^MDC", "14", "264928^MDC_DIM_RESP_PER_MIN^MDC"),
        ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "97", "262688^MDC_DIM_PERCENT^MDC"),
        ("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "120", "266016^MDC_DIM_MMHG^MDC"),
        ("150022^MDC_PRESS_BLD_NONINV_DIA^MDC", "80", "266016^MDC_DIM_MMHG^MDC"),
        ("150364^MDC_TEMP_BODY^MDC", "36.8", "268192^MDC_DIM_DEGC^MDC"),
    ]
    return "\r".join(
        [
            f"MSH|^~\\&|GW|{facility}|VIGIL|HOSP|{now}||ORU^R01^ORU_R01|{control_id}|P|2.6",
            f"PID|||{mrn}^^^HOSP^MR||Petrov^Ivan",
            *(
                f"OBX|{i}|NM|{code}|1.0.0.{i}|{value}|{unit}|||||R|||{now}"
                for i, (code, value, unit) in enumerate(rows, 1)
            ),
        ]
    )


def settings(**overrides) -> GatewaySettings:
    values = {
        "host": "127.0.0.1",
        "port": 0,
        "facility": "HOSP",
        "id_secret": SECRET,
        "allowed_networks": (ipaddress.ip_network("127.0.0.0/8"),),
        "allowed_facilities": frozenset(),
        "max_message_bytes": 64 * 1024,
        "idle_timeout": 5.0,
        "max_connections": 16,
        "local_zone": UTC,
    }
    return GatewaySettings(**(values | overrides))


@contextmanager
def serving(publisher: Publisher, **overrides) -> Iterator[MllpServer]:
    """An MLLP server publishing with `publisher`, its settings()'s but for `overrides`."""
    server = MllpServer(settings(**overrides), publisher)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def topic_publisher(bootstrap: str, topic_names: dict[str, str]) -> Publisher:
    return Publisher(bootstrap, topic_names["KAFKA_TOPIC"], topic_names["KAFKA_DLQ_TOPIC"])


@pytest.fixture
def gateway(tansu_bootstrap, topic_names) -> Iterator[MllpServer]:
    with serving(topic_publisher(tansu_bootstrap, topic_names)) as server:
        yield server


def send(server: MllpServer, text: str) -> hl7.Message:
    with MLLPClient("127.0.0.1", server.port) as client:
        return hl7.parse(client.send_message(text).strip(b"\x0b\x1c\r").decode())


def msa(ack: hl7.Message) -> tuple[str, str]:
    return str(ack.segment("MSA")(1)), str(ack.segment("MSA")(2))


def test_an_oru_is_acknowledged_once_kafka_has_its_sample(gateway, tansu_bootstrap, topic_names):
    ack = send(gateway, oru("CTRL-1"))
    assert msa(ack) == ("AA", "CTRL-1")
    [message] = read_messages(tansu_bootstrap, topic_names["KAFKA_TOPIC"], 1)
    sample = json.loads(message.value())
    assert sample["pulse"] == 72 and sample["bp"] == "120/80"
    assert sample["patient_identifier"]["value"] == "MRN-1"
    assert message.key().decode() == sample["patient_uuid"]


def test_an_unusable_oru_gets_ae_and_is_dead_lettered(gateway, tansu_bootstrap, topic_names):
    text = oru("CTRL-2", pulse="900")
    ack = send(gateway, text)
    assert msa(ack) == ("AE", "CTRL-2")
    assert "out of bounds" in ack.unescape(str(ack.segment("MSA")(3)))
    [letter] = read_messages(tansu_bootstrap, topic_names["KAFKA_DLQ_TOPIC"], 1)
    assert letter.value() == text.encode()
    assert dict(letter.headers())["dlq.reason"].startswith(b"out of bounds")


def test_bytes_that_are_not_hl7_get_ar_a_dead_letter_and_a_closed_connection(
    gateway, tansu_bootstrap, topic_names
):
    with MLLPClient("127.0.0.1", gateway.port) as client:
        ack = hl7.parse(client.send_message(b"GET / HTTP/1.1").strip(b"\x0b\x1c\r").decode())
        assert str(ack.segment("MSA")(1)) == "AR"
        assert client.socket.recv(10) == b""  # closed
    [letter] = read_messages(tansu_bootstrap, topic_names["KAFKA_DLQ_TOPIC"], 1)
    assert letter.value() == b"GET / HTTP/1.1"


def test_garbage_outside_mllp_framing_closes_the_connection(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"\x00\xff garbage\x1c\r")
        answer = sock.recv(4096)
        assert b"MSA|AR" in answer
        assert sock.recv(10) == b""


def test_a_message_over_the_size_limit_is_refused(gateway):
    huge = oru("BIG") + "\rNTE|1||" + "x" * (70 * 1024)
    ack = send(gateway, huge)
    assert str(ack.segment("MSA")(1)) == "AR"


def test_another_message_type_gets_ar(gateway):
    ack = send(gateway, oru("ADT-1").replace("ORU^R01^ORU_R01", "ADT^A01"))
    assert msa(ack) == ("AR", "ADT-1")


def test_a_facility_not_allowed_gets_ar(tansu_bootstrap, topic_names):
    publisher = Publisher(
        tansu_bootstrap, topic_names["KAFKA_TOPIC"], topic_names["KAFKA_DLQ_TOPIC"]
    )
    server = MllpServer(settings(allowed_facilities=frozenset({"ICU1"})), publisher)
    server.start()
    try:
        assert msa(send(server, oru("OK", facility="ICU1")))[0] == "AA"
        assert msa(send(server, oru("NO", facility="ELSEWHERE")))[0] == "AR"
    finally:
        server.stop()


def test_many_connections_at_once_are_all_answered(gateway):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: msa(send(gateway, oru(f"C{i}", f"MRN-{i}")))[0], range(24)))
    assert codes == ["AA"] * 24
