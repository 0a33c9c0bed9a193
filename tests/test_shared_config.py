import uuid

import pytest

from shared.config import (
    ConfigError,
    Setting,
    load_settings,
    parse_float,
    parse_port,
    parse_uuid,
)

SETTINGS = (
    Setting("PORT", parse_port, 8000),
    Setting("METRICS_INTERVAL", parse_float(exclusive_minimum=0), 5.0),
    Setting("PATIENT_UUID", parse_uuid, None),
)


def test_defaults_apply_when_unset():
    assert load_settings(SETTINGS, {}) == {
        "PORT": 8000,
        "METRICS_INTERVAL": 5.0,
        "PATIENT_UUID": None,
    }


def test_values_are_parsed():
    pid = uuid.uuid4()
    values = load_settings(
        SETTINGS, {"PORT": "8081", "METRICS_INTERVAL": "0.5", "PATIENT_UUID": str(pid)}
    )
    assert values == {"PORT": 8081, "METRICS_INTERVAL": 0.5, "PATIENT_UUID": pid}


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("METRICS_INTERVAL", "0"),
        ("METRICS_INTERVAL", "-1"),
        ("METRICS_INTERVAL", "nan"),
        ("PATIENT_UUID", "not-a-uuid"),
    ],
)
def test_bad_value_names_the_variable(name, raw):
    with pytest.raises(ConfigError) as info:
        load_settings(SETTINGS, {name: raw})
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert "\n" not in message


def test_required_setting_missing():
    with pytest.raises(ConfigError, match="^TOKEN: required"):
        load_settings((Setting("TOKEN"),), {})
