"""Alarm episodes as plain values, condition names, and samples as data_app decodes them."""

from __future__ import annotations

import json

import pytest

from shared.alarms import Condition, Episode, Parameter, Priority, Sample, Side, State
from shared.news2 import PARAMETERS
from shared.sample import convert_vitals
from tests.alarm_streams import SPO2_LOW, Run, at, every


def test_the_engine_watches_what_news2_scores():
    assert {p.value for p in Parameter} == set(PARAMETERS)


@pytest.mark.parametrize(
    ("condition", "text", "name"),
    [
        (Condition(Parameter.SPO2, Side.LOW), "SpO2 low", "spo2_low"),
        (Condition(Parameter.PULSE, Side.HIGH), "Pulse high", "pulse_high"),
        (Condition(Parameter.RESP_RATE, Side.LOW), "Respiratory rate low", "resp_rate_low"),
        (Condition(Parameter.SYSTOLIC, Side.HIGH), "Systolic BP high", "systolic_high"),
        (Condition(Parameter.TEMPERATURE, Side.LOW), "Temperature low", "temperature_low"),
    ],
)
def test_condition_text_and_name(condition, text, name):
    assert (condition.text, str(condition)) == (text, name)
    assert Condition.parse(name) == condition


def _episodes() -> list[Episode]:
    """One episode in each state, with and without acknowledgement."""
    latched = Run().feed(Parameter.SPO2, every(5, [80, 95, 95, 95]))
    acknowledged = Run().feed(Parameter.SPO2, every(5, [88, 88, 88]))
    acknowledged.acknowledge(SPO2_LOW, 11)
    runs = [
        Run(),
        Run().feed(Parameter.SPO2, [(0, 88)]),
        Run().feed(Parameter.SPO2, every(5, [88, 88, 87.5])),
        Run().feed(Parameter.SPO2, every(5, [80, 95])),
        latched,
        acknowledged,
    ]
    return [run.episode(SPO2_LOW) for run in runs]


def test_every_state_is_covered():
    assert {e.state for e in _episodes()} == set(State)


@pytest.mark.parametrize("episode", _episodes(), ids=lambda e: e.state.value)
def test_an_episode_survives_json(episode):
    text = json.dumps(episode.to_plain())
    assert Episode.from_plain(json.loads(text)) == episode


def test_plain_values_are_strings_and_numbers():
    plain = Run().feed(Parameter.SPO2, [(0, 80)]).episode(SPO2_LOW).to_plain()
    assert plain["last_seen"] == "2026-03-01T08:00:00+00:00"
    assert plain["alarm"]["priority"] == "high"
    assert type(plain["alarm"]["priority"]) is str


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda p: p.pop("last_seen"), KeyError),
        (lambda p: p.update(last_seen="2026-03-01T08:00:00"), ValueError),
        (lambda p: p["alarm"].update(priority="urgent"), ValueError),
        (lambda p: p["alarm"].update(latched="yes"), ValueError),
        (lambda p: p["alarm"].update(onset=None), TypeError),
    ],
)
def test_malformed_plain_values_are_refused(change, error):
    plain = Run().feed(Parameter.SPO2, [(0, 80)]).episode(SPO2_LOW).to_plain()
    change(plain)
    with pytest.raises(error):
        Episode.from_plain(plain)


def test_a_sample_from_decoded_vitals():
    vitals = convert_vitals(
        {
            "patient_uuid": "5b0f3c4e-8a53-4b8e-9f0e-2f1d2a6c7b10",
            "timestamp": "2026-03-01T08:00:00Z",
            "pulse": 72,
            "resp_rate": 14,
            "bp": "120/80",
            "spo2": 97,
            "temperature": 36.8,
        }
    )
    sample = Sample.from_vitals(vitals)
    assert sample == Sample(at(0), 72, 14, 97, 120, 80, 36.8)
    assert sample.value(Parameter.SYSTOLIC) == 120


def test_a_restored_alarm_has_typed_values():
    plain = Run().feed(Parameter.SPO2, [(0, 80)]).episode(SPO2_LOW).to_plain()
    alarm = Episode.from_plain(plain).alarm
    assert alarm.priority is Priority.HIGH
    assert alarm.started_at == at(0)
    assert type(alarm.limit) is float
