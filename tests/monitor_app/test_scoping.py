"""Who sees which notification: their own, their ward's and those they sent; never another
user's private ones (those do not exist for them). Read state is per person."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor_app.live.hub import EventHub
from monitor_app.notifications.services import get_notification
from shared.auth.principal import Principal
from shared.auth.roles import Role
from shared.config import DEFAULT_WARD_ID
from shared.db import db
from shared.notifications import add_notification, notification_schema
from tests.auth import Account

URL = "/api/v1/notifications"


@dataclass(frozen=True)
class Ward:
    """Two nurses of the ICU, a doctor of no ward, an admin; and their clients."""

    nina: Account
    omar: Account
    paul: Account
    admin: Account
    clients: dict[str, FlaskClient]

    def client(self, name: str) -> FlaskClient:
        return self.clients[name]


@pytest.fixture
def ward(make_account: Callable, client_as: Callable, admin: Account) -> Ward:
    nina = make_account(Role.CLINICIAN, email="nina@vigil.test", wards=["ICU"])
    omar = make_account(Role.CLINICIAN, email="omar@vigil.test", wards=["ICU"])
    paul = make_account(Role.CLINICIAN, email="paul@vigil.test")
    accounts = {"nina": nina, "omar": omar, "paul": paul, "admin": admin}
    return Ward(nina, omar, paul, admin, {n: client_as(a) for n, a in accounts.items()})


def ward_alert(app: Flask) -> str:
    """A vitals alert as data_app raises it: to the ward, from no one."""
    with db.sessionmaker(app).begin() as session:
        notification = add_notification(
            session, user_id=DEFAULT_WARD_ID, title="NEWS2 high", text="Bed 3: NEWS2 7."
        )
        return str(notification.id)


def send(client: FlaskClient, to: uuid.UUID, title: str = "A word") -> str:
    answer = client.post(URL, json={"user_id": str(to), "title": title, "text": "..."})
    assert answer.status_code == 201, answer.json
    return answer.json["id"]


def listed(client: FlaskClient, **query: object) -> list[str]:
    answer = client.get(URL, query_string=query)
    assert answer.status_code == 200
    return [n["id"] for n in answer.json]


def test_the_wards_clinicians_see_its_alerts_and_others_do_not(app: Flask, ward: Ward) -> None:
    alert = ward_alert(app)
    for name in ("nina", "omar", "admin"):
        assert listed(ward.client(name)) == [alert]
        assert ward.client(name).get(f"{URL}/{alert}").status_code == 200
        assert ward.client(name).get(f"{URL}/{alert}/status").status_code == 200
    paul = ward.client("paul")
    assert listed(paul) == []
    for path in (f"{URL}/{alert}", f"{URL}/{alert}/status"):
        answer = paul.get(path)
        assert answer.status_code == 404
        assert answer.json["message"] == f"No notification with id {alert}."
    assert paul.post(f"{URL}/{alert}/read").status_code == 404


def test_a_private_notification_is_seen_by_its_recipient_and_sender_only(
    app: Flask, ward: Ward
) -> None:
    note = send(ward.client("omar"), ward.paul.id, "Handover for bed 5")
    assert listed(ward.client("paul")) == [note]
    assert listed(ward.client("omar")) == [note]
    assert listed(ward.client("admin")) == [note]
    nina = ward.client("nina")
    assert listed(nina) == []
    assert nina.get(f"{URL}/{note}").status_code == 404
    assert nina.post(f"{URL}/{note}/read").status_code == 404
    # Asking for it by recipient does not widen what she sees.
    assert listed(nina, user_id=str(ward.paul.id)) == []


def test_the_sender_is_the_signed_in_user_and_cannot_be_forged(ward: Ward) -> None:
    nina = ward.client("nina")
    note = send(nina, ward.omar.id)
    shown = nina.get(f"{URL}/{note}").json
    assert shown["sender_id"] == str(ward.nina.id)
    assert shown["user_id"] == str(ward.omar.id)
    forged = nina.post(
        URL,
        json={
            "user_id": str(ward.omar.id),
            "sender_id": str(ward.admin.id),
            "title": "From the admin",
            "text": "...",
        },
    )
    assert forged.status_code == 422


def test_a_notification_to_no_known_user_or_ward_is_refused(ward: Ward) -> None:
    answer = ward.client("nina").post(
        URL, json={"user_id": str(uuid.uuid4()), "title": "To no one", "text": "..."}
    )
    assert answer.status_code == 422
    assert answer.json["errors"] == {"json": {"user_id": ["No user or ward with this id."]}}


def test_a_clinician_may_write_to_the_ward(app: Flask, ward: Ward) -> None:
    note = send(ward.client("paul"), DEFAULT_WARD_ID, "Bed 2 needs a review")
    assert note in listed(ward.client("nina"))
    assert note in listed(ward.client("paul"))  # he sent it


def test_read_state_is_per_person(app: Flask, ward: Ward) -> None:
    alert = ward_alert(app)
    nina, omar = ward.client("nina"), ward.client("omar")
    marked = nina.post(f"{URL}/{alert}/read")
    assert marked.status_code == 200
    assert marked.json["read_at"] is not None
    assert [r["user_id"] for r in marked.json["read_by"]] == [str(ward.nina.id)]
    again = nina.post(f"{URL}/{alert}/read").json
    assert again["read_at"] == marked.json["read_at"]  # the first reading stays
    assert len(again["read_by"]) == 1
    for_omar = omar.get(f"{URL}/{alert}").json
    assert for_omar["read_at"] is None
    assert [r["user_id"] for r in for_omar["read_by"]] == [str(ward.nina.id)]
    assert listed(omar, read="false") == [alert]
    assert listed(omar, read="true") == []
    assert listed(nina, read="true") == [alert]
    assert listed(nina, read="false") == []


def test_a_cached_answer_is_never_served_to_another_user(app: Flask, ward: Ward) -> None:
    note = send(ward.client("omar"), ward.paul.id)
    paul, nina = ward.client("paul"), ward.client("nina")
    assert paul.get(f"{URL}/{note}").status_code == 200
    assert paul.get(URL).json[0]["id"] == note
    assert nina.get(f"{URL}/{note}").status_code == 404
    assert nina.get(URL).json == []


def test_live_notification_events_reach_only_those_who_may_see_them(
    app: Flask, ward: Ward, redis_settings: dict[str, str]
) -> None:
    hub = EventHub(redis_settings["REDIS_EVENTS_URL"], "unused", max_clients=8)
    viewers = {
        name: Principal(account.id, account.role, ward_ids=wards)
        for name, account, wards in [
            ("nina", ward.nina, frozenset({DEFAULT_WARD_ID})),
            ("paul", ward.paul, frozenset()),
            ("admin", ward.admin, frozenset()),
        ]
    }
    subscriptions = {name: hub.subscribe(viewer=v) for name, v in viewers.items()}
    alert = ward.client("admin").get(f"{URL}/{ward_alert(app)}").json
    private = ward.client("admin").get(f"{URL}/{send(ward.client('admin'), ward.paul.id)}").json
    for notification in (alert, private):
        event = {"type": "notification.created", "notification": notification}
        hub._fan_out(json.dumps(event).encode())
    hub._fan_out(json.dumps({"type": "vitals", "samples": []}).encode())

    def received(name: str) -> list[str]:
        messages = subscriptions[name].messages
        found = []
        while True:
            try:
                event = json.loads(messages.get_nowait())
            except queue.Empty:
                return found
            found.append(event.get("notification", {}).get("id", event["type"]))

    assert received("nina") == [alert["id"], "vitals"]
    assert received("paul") == [private["id"], "vitals"]
    assert received("admin") == [alert["id"], private["id"], "vitals"]


@pytest.mark.parametrize(
    "notification",
    [None, "text", {}, {"user_id": "not-a-uuid"}, {"user_id": None}, [1, 2]],
)
def test_a_malformed_notification_event_reaches_no_one(
    redis_settings: dict[str, str], notification: object
) -> None:
    hub = EventHub(redis_settings["REDIS_EVENTS_URL"], "unused", max_clients=2)
    nurse = hub.subscribe(viewer=Principal(uuid.uuid4(), Role.CLINICIAN))
    hub._fan_out(
        json.dumps({"type": "notification.created", "notification": notification}).encode()
    )
    assert nurse.messages.empty()


def test_events_carry_who_read_not_the_readers_own_state(app: Flask, ward: Ward) -> None:
    alert = ward_alert(app)
    ward.client("nina").post(f"{URL}/{alert}/read")
    # As data_app and the worker publish: in an app context of their own, with no caller.
    with app.app_context(), db.sessionmaker(app)() as session:
        dumped = notification_schema.dump(get_notification(session, uuid.UUID(alert)))
    assert dumped["read_at"] is None
    assert [r["user_id"] for r in dumped["read_by"]] == [str(ward.nina.id)]
