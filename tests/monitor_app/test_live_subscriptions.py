"""Subscriptions to some patients on `/api/v1/ws`: `?patients=` and subscribe messages cut
`vitals` events down to those patients; bad lists are refused; each subscription is audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import websocket
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from monitor_app.live import routes
from monitor_app.live.routes import (
    AUDIT_DOWN,
    CLIENT_FLOOD,
    CLIENT_MESSAGES_PER_WAKE,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
)
from shared.audit import AuditAction, AuditEvent
from shared.auth.roles import Role
from shared.db import db
from shared.lifecycle import background_service
from shared.notifications import events
from tests.auth import Account
from tests.monitor_app.conftest import MadePatient
from tests.monitor_app.live_streams import (
    CLOSE_DEADLINE,
    Served,
    closed_with,
    connect,
    receive_event,
    serving,
)

MAX_PATIENTS = 3


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the one query a subscription makes is the patients API's."""
    return sqlite_url


@pytest.fixture
def served(app: Flask, own_contexts: None, wait_for: Callable[..., object]) -> Iterator[Served]:
    app.config["WS_MAX_PATIENTS"] = MAX_PATIENTS
    with serving(app, wait_for) as served:
        yield served


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


@pytest.fixture
def ward(make_patient: Callable[..., MadePatient]) -> list[str]:
    """Three patients' uuids."""
    return [make_patient(name).uuid for name in ("Ada", "Bea", "Cy")]


def sample(patient_uuid: str, pulse: int = 70) -> dict:
    return {"patient_uuid": patient_uuid, "patient_name": "x", "pulse": pulse}


def publish(app: Flask, marker: str, *samples: dict) -> None:
    assert events(app).publish("vitals", {"samples": list(samples), "marker": marker})


def stream(served: Served, account: Account, query: str = "") -> websocket.WebSocket:
    return connect(served, query, header=[f"Authorization: Bearer {account.token}"])


def open_raw(served: Served, account: Account, query: str) -> websocket.WebSocket:
    """A stream whose handshake is accepted, its hello not yet read."""
    return websocket.create_connection(
        served.ws_url + query,
        timeout=CLOSE_DEADLINE,
        header=[f"Authorization: Bearer {account.token}"],
    )


def subscribe(ws: websocket.WebSocket, patients: list[str] | None) -> None:
    ws.send(json.dumps({"subscribe": {"patients": patients}}))


def subscribed(ws: websocket.WebSocket) -> list[str] | None:
    return receive_event(ws, "subscribed")["patients"]


def audited(app: Flask) -> list[tuple[str | None, dict]]:
    """(patient uuid, detail) of each live.subscribe event, in order."""
    with db.sessionmaker(app)() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.LIVE_SUBSCRIBED.value)
            .order_by(AuditEvent.seq)
        )
        return [(None if r.patient_uuid is None else str(r.patient_uuid), r.detail) for r in rows]


# -- filtered delivery ----------------------------------------------------------------------
def test_a_stream_of_some_patients_receives_only_their_samples(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ada, bea, cy = ward
    some = stream(served, clinician, f"?patients={ada},{bea}")
    everyone = stream(served, clinician)
    try:
        publish(served.app, "ada only", sample(ada))
        publish(served.app, "cy only", sample(cy))
        publish(served.app, "mixed", sample(ada, 71), sample(cy), sample(bea), sample(ada, 72))
        publish(served.app, "end", sample(bea))

        received = [receive_event(some, "vitals") for _ in range(3)]
        assert [event["marker"] for event in received] == ["ada only", "mixed", "end"]
        # A mixed event is cut down to the wanted samples, in their order, the rest kept.
        assert received[1] == {
            "type": "vitals",
            "marker": "mixed",
            "samples": [sample(ada, 71), sample(bea), sample(ada, 72)],
        }
        # The whole ward's stream gets every event as published.
        whole = [receive_event(everyone, "vitals") for _ in range(4)]
        assert [event["marker"] for event in whole] == ["ada only", "cy only", "mixed", "end"]
        assert len(whole[2]["samples"]) == 4
    finally:
        some.close()
        everyone.close()


def test_alarms_reach_a_stream_of_some_patients_whoever_they_concern(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ada, _bea, cy = ward
    ws = stream(served, clinician, f"?patients={ada}")
    try:
        assert events(served.app).publish("alarm.raised", {"alarm": {"patient_uuid": cy}})
        assert receive_event(ws, "alarm.raised")["alarm"]["patient_uuid"] == cy
    finally:
        ws.close()


def test_each_subscribed_patient_is_audited(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ada, bea, _cy = ward
    stream(served, clinician, f"?patients={bea},{ada},{ada}").close()
    stream(served, clinician, "?types=vitals").close()

    detail = {"types": ["vitals", "notification", "alarm"], "patients": 2}
    detail["types"].sort()
    assert audited(served.app) == [
        *sorted([(ada, detail), (bea, detail)]),
        (None, {"types": ["vitals"]}),
    ]


# -- refused lists --------------------------------------------------------------------------
def refusal(served: Served, account: Account, query: str) -> tuple[int, str]:
    return closed_with(open_raw(served, account, query))


@pytest.mark.parametrize(
    "listed",
    [
        "not-a-uuid",
        "",
        "urn:uuid:{ada}",
        "{ada},,{bea}",
        "{ada},",
        "{ada_braced}",
        "{ada_hex}",
        "{ada}' OR '1'='1",
    ],
)
def test_a_malformed_list_is_refused(
    served: Served, clinician: Account, ward: list[str], listed: str
) -> None:
    ada, bea, _cy = ward
    listed = listed.format(
        ada=ada, bea=bea, ada_braced="{" + ada + "}", ada_hex=uuid.UUID(ada).hex + "----"
    )
    query = "?patients=" + quote(listed, safe=",%")

    assert refusal(served, clinician, query) == (
        POLICY_VIOLATION,
        f"patients: expected 1 to {MAX_PATIENTS} comma-separated UUIDs",
    )
    assert audited(served.app) == []
    assert background_service(served.app, "event_hub").client_count == 0


def test_a_list_holding_nul_is_refused_at_the_handshake(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    """As every request holding text that cannot be stored is."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        open_raw(served, clinician, f"?patients={ward[0]}%00")
    assert refused.value.status_code == 422


def test_too_many_patients_are_refused(
    served: Served, clinician: Account, make_patient: Callable[..., MadePatient]
) -> None:
    listed = [make_patient(f"P{i}").uuid for i in range(MAX_PATIENTS + 1)]

    assert refusal(served, clinician, "?patients=" + ",".join(listed)) == (
        POLICY_VIOLATION,
        f"too many patients; at most {MAX_PATIENTS} per stream",
    )
    # As many as allowed are fine.
    stream(served, clinician, "?patients=" + ",".join(listed[:MAX_PATIENTS])).close()


def test_an_unknown_patient_is_refused(served: Served, clinician: Account, ward: list[str]) -> None:
    stranger = str(uuid.uuid4())

    assert refusal(served, clinician, f"?patients={ward[0]},{stranger}") == (
        POLICY_VIOLATION,
        f"unknown patient {stranger}",
    )
    assert audited(served.app) == []


# -- subscribe messages ---------------------------------------------------------------------
def test_a_subscribe_message_changes_what_the_stream_shows(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ada, bea, cy = ward
    ws = stream(served, clinician)
    try:
        subscribe(ws, [cy, ada])
        assert subscribed(ws) == sorted([ada, cy])
        publish(served.app, "bea", sample(bea))
        publish(served.app, "mixed", sample(bea), sample(cy))
        event = receive_event(ws, "vitals")
        assert (event["marker"], event["samples"]) == ("mixed", [sample(cy)])

        subscribe(ws, None)
        assert subscribed(ws) is None
        publish(served.app, "bea again", sample(bea))
        assert receive_event(ws, "vitals")["marker"] == "bea again"
    finally:
        ws.close()
    # The stream's start (the whole ward), each patient it added, the whole ward again.
    assert [patient for patient, _detail in audited(served.app)] == [None, *sorted([ada, cy]), None]


def test_only_the_patients_a_change_adds_are_audited_again(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ada, bea, _cy = ward
    ws = stream(served, clinician, f"?patients={ada}")
    try:
        subscribe(ws, [ada, bea])
        assert subscribed(ws) == sorted([ada, bea])
    finally:
        ws.close()
    assert [patient for patient, _detail in audited(served.app)] == [ada, bea]


def test_a_burst_of_subscribe_messages_ends_on_the_last(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    """Changes are applied at most once a second: a client sending many gets the last,
    without a database read and an audit record for each."""
    ada, bea, cy = ward
    ws = stream(served, clinician)
    sent = 30
    try:
        for number in range(sent - 1):
            subscribe(ws, [ada] if number % 2 else [bea])
        subscribe(ws, [cy])
        notices = [subscribed(ws)]
        while notices[-1] != [cy]:
            notices.append(subscribed(ws))
        publish(served.app, "end", sample(ada), sample(bea), sample(cy))
        assert receive_event(ws, "vitals")["samples"] == [sample(cy)]
    finally:
        ws.close()
    assert len(notices) < sent
    assert len(audited(served.app)) < sent


HOSTILE_SUBSCRIBES = [
    ('{"subscribe": 1}', 'expected {"subscribe": {"patients": [<uuid>, ...] or null}}'),
    ('{"subscribe": {}}', 'expected {"subscribe": {"patients": [<uuid>, ...] or null}}'),
    (
        '{"subscribe": {"patients": null, "types": ["vitals"]}}',
        'expected {"subscribe": {"patients": [<uuid>, ...] or null}}',
    ),
    ('{"subscribe": {"patients": "{ada}"}}', "patients: expected a list of patient UUIDs, or null"),
    ('{"subscribe": {"patients": [1]}}', "patients: expected a list of patient UUIDs, or null"),
    (
        '{"subscribe": {"patients": [["{ada}"]]}}',
        "patients: expected a list of patient UUIDs, or null",
    ),
    ('{"subscribe": {"patients": []}}', "patients: expected 1 to 3 comma-separated UUIDs"),
    (
        '{"subscribe": {"patients": ["{ada}", "nope"]}}',
        "patients: expected 1 to 3 comma-separated UUIDs",
    ),
    (
        '{"subscribe": {"patients": ["{ada}", "{ada}", "{ada}", "{ada}"]}}',
        "too many patients; at most 3 per stream",
    ),
    ('{"subscribe": {"patients": ["{stranger}"]}}', "unknown patient {stranger}"),
]


@pytest.mark.parametrize(("message", "reason"), HOSTILE_SUBSCRIBES)
def test_a_bad_subscribe_message_closes_the_stream(
    served: Served, clinician: Account, ward: list[str], message: str, reason: str
) -> None:
    values = {"ada": ward[0], "stranger": str(uuid.uuid4())}
    ws = stream(served, clinician, f"?patients={ward[1]}")

    ws.send(message.replace("{ada}", values["ada"]).replace("{stranger}", values["stranger"]))

    expected = reason.replace("{stranger}", values["stranger"])
    assert closed_with(ws) == (POLICY_VIOLATION, expected)
    # Nothing but the stream's start was recorded.
    assert [patient for patient, _detail in audited(served.app)] == [ward[1]]


@pytest.mark.parametrize(
    "message",
    [
        "ping",
        "{not json",
        '{"unsubscribe": true}',
        '["subscribe"]',
        '{"subscribe": ' + "[" * 2000 + "]" * 2000 + "}",
        "[" * 4500,
        b'{"subscribe": {"patients": null}}',
    ],
    ids=["text", "broken", "other", "list", "deep", "deeper", "binary"],
)
def test_other_client_messages_are_still_discarded(
    served: Served, clinician: Account, ward: list[str], message: str | bytes
) -> None:
    ws = stream(served, clinician, f"?patients={ward[0]}")
    try:
        if isinstance(message, bytes):
            ws.send_binary(message)
        else:
            ws.send(message)
        publish(served.app, "others", sample(ward[1]))
        publish(served.app, "still mine", sample(ward[0]))
        assert receive_event(ws, "vitals")["marker"] == "still mine"
    finally:
        ws.close()


def test_a_flood_of_subscribe_messages_closes_the_stream(
    served: Served, clinician: Account, ward: list[str]
) -> None:
    ws = stream(served, clinician)
    message = json.dumps({"subscribe": {"patients": ward}})
    try:
        for _ in range(50 * CLIENT_MESSAGES_PER_WAKE):
            ws.send(message)
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        pass  # closed meanwhile: what the server should do

    assert closed_with(ws) == (POLICY_VIOLATION, CLIENT_FLOOD)


# -- the audit trail down -------------------------------------------------------------------
@pytest.fixture
def audit_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing a subscription's audit events fails, as with the database gone."""

    def fail(*_args, **_kwargs) -> None:
        raise OperationalError("INSERT INTO audit_events", {}, Exception("database is down"))

    monkeypatch.setattr(routes, "record_request_per_patient", fail)


def test_no_patient_data_flows_unaudited_at_the_handshake(
    served: Served, clinician: Account, ward: list[str], audit_down: None, wait_for
) -> None:
    ws = open_raw(served, clinician, f"?patients={ward[0]}")
    publish(served.app, "unaudited", sample(ward[0]))

    # Closed before its hello: not a sample reached it.
    assert closed_with(ws) == (TRY_AGAIN_LATER, AUDIT_DOWN)
    # Its seat is given back as the server's side of the stream ends, just after the close.
    hub = background_service(served.app, "event_hub")
    wait_for(lambda: hub.client_count == 0, timeout=10, message="the seat given back")


def test_no_patient_data_flows_unaudited_after_a_change(
    served: Served, clinician: Account, ward: list[str], audit_down: None
) -> None:
    ada = ward[0]
    # The whole ward's start is recorded (by record_request, still working); the change fails.
    ws = stream(served, clinician, "?types=alarm")
    subscribe(ws, [ada])

    seen = []
    try:
        while True:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                closed = (int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode())
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                seen.append(json.loads(frame.data)["type"])
    finally:
        ws.close()
        ws.shutdown()
    assert closed == (TRY_AGAIN_LATER, AUDIT_DOWN)
    assert "subscribed" not in seen
