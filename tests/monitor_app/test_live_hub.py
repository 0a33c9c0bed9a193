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
    hub = EventHub(redis_settings["REDIS_EVENTS_URL"], events.channel, max_clients=8)
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


def test_vitals_are_cut_once_for_each_set_of_patients(hub, events):
    """Parsed once per event, serialised once per distinct set: clients showing the same
    patients are queued the same text."""
    ada, bea, cy = (uuid.uuid4() for _ in range(3))
    first = hub.subscribe(patients=frozenset({ada}))
    second = hub.subscribe(patients=frozenset({ada}))
    both = hub.subscribe(patients=frozenset({ada, bea}))
    nobody_here = hub.subscribe(patients=frozenset({uuid.uuid4()}))
    ward = hub.subscribe()
    hub.start()
    for subscription in (first, second, both, nobody_here, ward):
        assert next_event(subscription)["type"] == "live"

    samples = [{"patient_uuid": str(p), "pulse": n} for n, p in enumerate((ada, bea, cy))]
    assert events.publish("vitals", {"samples": samples})
    assert events.publish("vitals", {"samples": [samples[2]], "last": True})

    texts = [s.messages.get(timeout=10) for s in (first, second, both)]
    assert texts[0] is texts[1]
    assert json.loads(texts[0])["samples"] == samples[:1]
    assert json.loads(texts[2])["samples"] == samples[:2]
    assert json.loads(ward.messages.get(timeout=10))["samples"] == samples
    assert next_event(ward)["last"] is True
    for subscription in (first, second, both, nobody_here):
        with pytest.raises(queue.Empty):
            subscription.messages.get(timeout=0.2)


def test_each_bed_group_gets_its_patients_samples_in_the_events_order(hub, events):
    """Dashboards of a few beds each, on a ward of many: each is sent its own patients'
    samples, as the event ordered them, and nobody else's."""
    ward = [uuid.uuid4() for _ in range(12)]
    groups = [frozenset(ward[start : start + 3]) for start in range(0, 12, 3)]
    subscriptions = [hub.subscribe(patients=group) for group in groups]
    hub.start()
    for subscription in subscriptions:
        assert next_event(subscription)["type"] == "live"

    # Two samples of each patient, interleaved as a batch of the whole ward would be.
    samples = [{"patient_uuid": str(p), "round": r} for r in range(2) for p in reversed(ward)]
    assert events.publish("vitals", {"samples": samples})

    for group, subscription in zip(groups, subscriptions, strict=True):
        mine = [sample for sample in samples if uuid.UUID(sample["patient_uuid"]) in group]
        assert next_event(subscription)["samples"] == mine


def test_samples_a_filter_cannot_read_reach_only_the_whole_ward(hub, events):
    """A broken publisher's samples: not dicts, no uuid, a uuid that is not a string."""
    ada = uuid.uuid4()
    some = hub.subscribe(patients=frozenset({ada}))
    ward = hub.subscribe()
    hub.start()
    assert next_event(some)["type"] == "live"
    assert next_event(ward)["type"] == "live"

    broken = [None, "x", {"pulse": 1}, {"patient_uuid": [str(ada)]}, {"patient_uuid": 7}]
    assert events.publish("vitals", {"samples": broken})
    assert events.publish("vitals", {"samples": "not a list"})
    assert events.publish("vitals", {"samples": [{"patient_uuid": str(ada)}]})

    assert next_event(ward)["samples"] == broken
    assert next_event(ward)["samples"] == "not a list"
    assert next_event(some)["samples"] == [{"patient_uuid": str(ada)}]


def test_events_after_a_resubscription_are_cut_for_its_patients(hub, events):
    ada, bea = uuid.uuid4(), uuid.uuid4()
    subscription = hub.subscribe(patients=frozenset({ada}))
    hub.start()
    assert next_event(subscription)["type"] == "live"

    hub.resubscribe(subscription, frozenset({bea}), json.dumps({"type": "subscribed"}))
    assert events.publish("vitals", {"samples": [{"patient_uuid": str(ada)}]})
    assert events.publish("vitals", {"samples": [{"patient_uuid": str(bea)}]})

    assert next_event(subscription)["type"] == "subscribed"
    assert next_event(subscription)["samples"] == [{"patient_uuid": str(bea)}]


@pytest.fixture
def gathering_hub(events: Events, redis_settings: dict[str, str]) -> Iterator[EventHub]:
    # A window far longer than publishing three events takes, however loaded the machine.
    hub = EventHub(
        redis_settings["REDIS_EVENTS_URL"], events.channel, max_clients=8, coalesce_seconds=2.0
    )
    yield hub
    hub.stop()


def test_vitals_published_within_the_window_reach_a_stream_as_one_message(gathering_hub, events):
    ada, bea = uuid.uuid4(), uuid.uuid4()
    ward = gathering_hub.subscribe()
    bed = gathering_hub.subscribe(patients=frozenset({ada}))
    gathering_hub.start()
    assert next_event(ward)["type"] == "live"
    assert next_event(bed)["type"] == "live"

    batches = [[{"patient_uuid": str(p), "round": r} for p in (ada, bea)] for r in range(3)]
    for samples in batches:
        assert events.publish("vitals", {"samples": samples})

    assert next_event(ward) == {"type": "vitals", "samples": sum(batches, [])}
    assert next_event(bed)["samples"] == [batch[0] for batch in batches]
    for subscription in (ward, bed):
        with pytest.raises(queue.Empty):
            subscription.messages.get(timeout=0.2)


def test_gathered_vitals_keep_their_place_before_other_events(gathering_hub, events):
    """An alarm is sent at once, after the samples that came before it; an event a consumer
    would not publish is passed on as it is, in its place."""
    ward = gathering_hub.subscribe(viewer=ADMIN)
    gathering_hub.start()
    assert next_event(ward)["type"] == "live"

    assert events.publish("vitals", {"samples": [{"pulse": 1}]})
    assert events.publish("alarm.raised", {"alarm": {"id": "a1"}})
    assert events.publish("vitals", {"samples": [{"pulse": 2}]})
    assert events.publish("vitals", {"samples": "not a list"})
    assert events.publish("vitals", {"samples": [{"pulse": 3}]})

    assert next_event(ward)["samples"] == [{"pulse": 1}]
    assert next_event(ward)["type"] == "alarm.raised"
    assert next_event(ward)["samples"] == [{"pulse": 2}]
    assert next_event(ward)["samples"] == "not a list"
    assert next_event(ward)["samples"] == [{"pulse": 3}]
