"""Refused HL7 senders in the audit trail: one record per address and interval, counting the
rest, whatever a stranger sends; the gateway answers AR and keeps nothing of theirs."""

import hl7
import pytest
from hl7.client import MLLPClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

import gateway_app
from gateway_app import refusals as refusals_module
from gateway_app.config import parse_networks
from gateway_app.refusals import Refusal, RefusalAudit
from shared.audit import AuditAction, AuditEvent
from shared.db import make_engine
from shared.lifecycle import background_service, start_background, stop_background
from tests.gateway_app.test_mllp import oru

# Senders from a documentation network only: the tests' own loopback is a stranger.
STRANGERS_ONLY = parse_networks("192.0.2.0/24")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(address: str = "10.0.0.9") -> Refusal:
    return Refusal(address, "address not allowed", "ICU9", "GW", "C1")


@pytest.fixture
def sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def audit_rows(sessions) -> list[AuditEvent]:
    with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == AuditAction.HL7_SENDER_REFUSED)
        return list(session.scalars(query.order_by(AuditEvent.seq)))


def test_one_record_per_address_and_interval_counting_those_held_back(sessions):
    clock = Clock()
    audit = RefusalAudit(sessions, interval=60, clock=clock)
    assert audit.admit(refusal()).unrecorded == 0
    assert audit.admit(refusal()) is None
    assert audit.admit(refusal()) is None
    assert audit.admit(refusal("10.0.0.10")) is not None  # another address: its own record
    clock.now += 59.9
    assert audit.admit(refusal()) is None
    clock.now += 0.2
    assert audit.admit(refusal()).unrecorded == 3


def test_the_throttle_remembers_a_bounded_number_of_peers(sessions, monkeypatch):
    monkeypatch.setattr(refusals_module, "MAX_PEERS", 3)
    audit = RefusalAudit(sessions, interval=60, clock=Clock())
    for i in range(10):
        assert audit.admit(refusal(f"10.0.0.{i}")) is not None
    assert len(audit._peers) == 3
    # The most recent are the ones kept.
    assert audit.admit(refusal("10.0.0.9")) is None
    assert audit.admit(refusal("10.0.0.0")) is not None


def test_a_record_says_who_from_where_and_why(sessions):
    audit = RefusalAudit(sessions, interval=60, clock=Clock())
    audit.write(Refusal("10.0.0.9", "facility not allowed", "X" * 500, "GW", "C7", 4))
    [row] = audit_rows(sessions)
    assert (row.outcome, row.address, row.user_id) == ("denied", "10.0.0.9", None)
    assert row.detail == {
        "reason": "facility not allowed",
        "sending_facility": "X" * 64,  # whatever a stranger claims is cut to size
        "sending_application": "GW",
        "control_id": "C7",
        "unrecorded_before": 4,
    }


def test_a_database_that_fails_is_logged_not_raised(tmp_path, caplog):
    engine = make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")  # no audit table
    audit = RefusalAudit(sessionmaker(engine), interval=60)
    audit.write(refusal())
    engine.dispose()
    assert "refusal not audited" in caplog.text


@pytest.fixture
def serve(gateway_config):
    """Serves gateway_app with the settings given; its MLLP server."""
    apps = []

    def start(**settings):
        app = gateway_app.create_app(gateway_config | settings)
        apps.append(app)
        start_background(app)
        return background_service(app, "mllp")

    yield start
    for app in apps:
        stop_background(app)


def send(server, payload) -> tuple[hl7.Message, bytes]:
    """The answer to `payload`, and what the connection gives after it (b"": closed)."""
    with MLLPClient("127.0.0.1", server.port) as client:
        client.socket.settimeout(10)  # an open connection fails the test, not hangs it
        answer = client.send_message(payload)
        try:
            rest = client.socket.recv(10)
        except TimeoutError:
            rest = None
    return hl7.parse(answer.strip(b"\x0b\x1c\r").decode()), rest


def counting_dead_letters(server, monkeypatch) -> list[str]:
    reasons: list[str] = []
    real = server.publisher.dead_letter

    def dead_letter(key, block, reason, peer):
        reasons.append(reason)
        return real(key, block, reason, peer)

    monkeypatch.setattr(server.publisher, "dead_letter", dead_letter)
    return reasons


@pytest.mark.integration
def test_a_facility_not_allowed_gets_ar_and_an_audit_record(serve):
    gateway = serve(HL7_ALLOWED_FACILITIES=frozenset({"ICU1"}))
    sessions = gateway.refusals.sessions
    ack, rest = send(gateway, oru("NO-1", facility="ELSEWHERE"))
    assert str(ack.segment("MSA")(1)) == "AR" and str(ack.segment("MSA")(2)) == "NO-1"
    assert rest == b""  # and the connection is closed
    [row] = audit_rows(sessions)
    assert row.address == "127.0.0.1" and row.outcome == "denied"
    assert row.detail["reason"] == "facility not allowed"
    assert row.detail["sending_facility"] == "ELSEWHERE"
    assert row.detail["control_id"] == "NO-1"
    # The allowed facility is still taken.
    with MLLPClient("127.0.0.1", gateway.port) as client:
        answer = client.send_message(oru("OK-1", facility="ICU1"))
    assert b"MSA|AA|OK-1" in answer


@pytest.mark.integration
@pytest.mark.parametrize(
    "payload",
    [oru("S-1").encode(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\xff" * 500],
    ids=["a valid oru", "http", "binary"],
)
def test_a_stranger_gets_ar_an_audit_record_and_no_dead_letter(serve, payload, monkeypatch):
    gateway = serve(HL7_ALLOWED_SENDERS=STRANGERS_ONLY)
    dead_letters = counting_dead_letters(gateway, monkeypatch)
    ack, rest = send(gateway, payload)
    assert str(ack.segment("MSA")(1)) == "AR"
    assert rest == b""
    [row] = audit_rows(gateway.refusals.sessions)
    assert row.detail["reason"] == "address not allowed"
    # The answer does not tell the stranger which rule refused them.
    assert "address" not in ack.unescape(str(ack.segment("MSA")(3)))
    assert dead_letters == []
    assert gateway.stats["accepted"] == 0 and gateway.stats["rejected"] == 1


@pytest.mark.integration
def test_a_stranger_that_keeps_trying_gets_one_record_per_interval(serve):
    gateway = serve(HL7_ALLOWED_SENDERS=STRANGERS_ONLY, HL7_REFUSAL_AUDIT_SECONDS=3600.0)
    for i in range(30):
        ack, _rest = send(gateway, oru(f"R-{i}"))
        assert str(ack.segment("MSA")(1)) == "AR"
    rows = audit_rows(gateway.refusals.sessions)
    assert len(rows) == 1
    assert gateway.stats["rejected"] == 30
    assert gateway.refusals._peers["127.0.0.1"].unrecorded == 29
