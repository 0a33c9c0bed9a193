"""The event hub on a real Redis: clients hear when events start flowing, and only their types."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator

import pytest

from monitor_app.live.hub import EventHub, Subscription
from shared.auth.principal import Principal
from shared.auth.roles import Role
from shared.events import Events

ADMIN = Principal(uuid.uuid4(), Role.ADMIN)


@pytest.fixture
def events(redis_settings: dict[str, str]) -> Events:
    return Events(redis_settings["REDIS_EVENTS_URL"], redis_settings["REDIS_NAMESPACE"])


@pytest.fixture
def hub(events: Events, redis_settings: dict[str, str]) -> Iterator[EventHub]:
    hub = EventHub(redis_settings["REDIS_EVENTS_URL"], events.channel, max_clients=4)
    yield hub
    hub.stop()


def next_event(subscription: Subscription, timeout: float = 10.0) -> dict:
    return json.loads(subscription.messages.get(timeout=timeout))


def test_a_client_greeted_before_events_flow_is_told_when_they_start(hub):
    vitals_only = hub.subscribe(frozenset({"vitals"}))
    assert hub.connected is False  # what its hello would have said

    hub.start()

    # Sent although it asked for vitals only: a page must not stay "connecting" forever.
    assert next_event(vitals_only) == {"type": "live", "live": True}
    assert hub.connected is True


def test_events_reach_only_the_clients_that_asked_for_their_type(hub, events):
    vitals_only = hub.subscribe(frozenset({"vitals"}))
    everything = hub.subscribe(viewer=ADMIN)
    hub.start()
    assert next_event(vitals_only)["type"] == "live"
    assert next_event(everything)["type"] == "live"

    notification = {"id": "n1", "user_id": str(uuid.uuid4()), "sender_id": None}
    assert events.publish("notification.created", {"notification": notification})
    assert events.publish("vitals", {"samples": []})

    assert next_event(everything)["type"] == "notification.created"
    assert next_event(everything)["type"] == "vitals"
    assert next_event(vitals_only)["type"] == "vitals"
    with pytest.raises(queue.Empty):
        vitals_only.messages.get(timeout=0.2)


def test_alarm_events_reach_the_clients_that_asked_for_alarms(hub, events):
    alarms_only = hub.subscribe(frozenset({"alarm"}))
    vitals_only = hub.subscribe(frozenset({"vitals"}))
    hub.start()
    assert next_event(alarms_only)["type"] == "live"
    assert next_event(vitals_only)["type"] == "live"

    for kind in ("raised", "acknowledged", "escalated", "resolved"):
        assert events.publish(f"alarm.{kind}", {"alarm": {"id": "a1"}})
    assert events.publish("vitals", {"samples": []})

    assert [next_event(alarms_only)["type"] for _ in range(4)] == [
        "alarm.raised",
        "alarm.acknowledged",
        "alarm.escalated",
        "alarm.resolved",
    ]
    assert next_event(vitals_only)["type"] == "vitals"
    with pytest.raises(queue.Empty):
        alarms_only.messages.get(timeout=0.2)
