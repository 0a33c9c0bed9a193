"""`vitals` events gathered over a window: one event, in order, bounded; others untouched."""

from __future__ import annotations

import json

from monitor_app.live.vitals import MAX_GATHERED_SAMPLES, VitalsGatherer


def vitals(*pulses: int) -> tuple[dict, str]:
    event = {"type": "vitals", "samples": [{"patient_uuid": "p", "pulse": p} for p in pulses]}
    return event, json.dumps(event)


def test_events_within_the_window_become_one_in_the_order_they_came():
    gatherer = VitalsGatherer(0.25)
    for at, pulses in ((10.0, (1, 2)), (10.1, (3,)), (10.2, (4, 5))):
        event, text = vitals(*pulses)
        assert gatherer.takes("vitals", event)
        gatherer.add(event, text, at)
        assert not gatherer.due(at)

    assert gatherer.due(10.25)
    cut = gatherer.take()
    assert [s["pulse"] for s in json.loads(cut.for_patients(None))["samples"]] == [1, 2, 3, 4, 5]
    assert gatherer.take() is None
    assert not gatherer.due(99.0)


def test_the_wait_for_the_next_event_ends_when_the_first_gathered_is_due():
    gatherer = VitalsGatherer(0.25)
    assert gatherer.wait(1.0, now=5.0) == 1.0
    gatherer.add(*vitals(1), 5.0)
    assert abs(gatherer.wait(1.0, now=5.1) - 0.15) < 1e-9
    assert gatherer.wait(1.0, now=7.0) == 0.0


def test_a_lone_event_keeps_the_text_it_was_published_with():
    gatherer = VitalsGatherer(0.25)
    event, text = vitals(1)
    gatherer.add(event, text, 0.0)
    assert gatherer.take().for_patients(None) is text


def test_a_burst_is_sent_once_it_holds_the_most_one_message_may():
    gatherer = VitalsGatherer(60.0)
    gatherer.add(*vitals(*range(MAX_GATHERED_SAMPLES - 1)), 0.0)
    assert not gatherer.due(0.0)
    gatherer.add(*vitals(1), 0.0)
    assert gatherer.due(0.0)


def test_only_vitals_events_as_consumers_publish_them_are_gathered():
    gatherer = VitalsGatherer(0.25)
    assert not gatherer.takes("alarm.raised", {"type": "alarm.raised", "alarm": {}})
    assert not gatherer.takes("vitals", {"type": "vitals", "samples": "not a list"})
    assert not gatherer.takes("vitals", {"type": "vitals", "samples": [], "last": True})
    assert not gatherer.takes("vitals", {"type": "vitals"})
    assert not VitalsGatherer(0.0).takes("vitals", vitals(1)[0])
