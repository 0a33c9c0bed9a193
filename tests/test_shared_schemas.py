"""The vitals message's quick load path agrees with the schema it stands in for."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from shared.schemas import _load_usual, load_vitals, vitals_errors, vitals_schema

NOW = datetime.now(UTC)


def sample(**overrides):
    document = {
        "patient_uuid": str(uuid.uuid4()),
        "patient_name": "Ivan Petrov",
        "timestamp": NOW.isoformat(timespec="milliseconds"),
        "pulse": 72,
        "resp_rate": 14,
        "bp": "120/80",
        "spo2": 98,
        "temperature": 36.8,
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not ...}


USUAL = [
    sample(),
    sample(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%SZ")),
    sample(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
    sample(timestamp=NOW.astimezone(timezone(timedelta(hours=3))).isoformat()),
    sample(timestamp=(NOW - timedelta(days=3)).isoformat(timespec="microseconds")),
    sample(patient_name=...),
    sample(patient_name=None),
    sample(temperature=37),
    sample(pulse=0, spo2=0, resp_rate=0, bp="300/250", temperature=45.0),
    sample(pulse=300, resp_rate=100, spo2=100, bp="16/1", temperature=25),
    sample(firmware="2.1"),
    sample(patient_uuid=str(uuid.uuid4()).upper()),
]

UNUSUAL = [
    sample(pulse=72.0),
    sample(pulse=True),
    sample(temperature=False),
    sample(pulse="72"),
    sample(pulse=301),
    sample(spo2=-1),
    sample(temperature=45.1),
    sample(temperature=float("nan")),
    sample(bp="80/120"),
    sample(bp="120/"),
    sample(bp=120),
    sample(patient_name=""),
    sample(patient_name="x" * 201),
    sample(patient_name=5),
    sample(patient_uuid="nope"),
    sample(patient_uuid=5),
    sample(timestamp="2026-01-01T10:00:00"),
    sample(timestamp="2026-01-01"),
    sample(timestamp="20260101T100000Z"),
    sample(timestamp=(NOW + timedelta(days=1)).isoformat()),
    sample(timestamp="1999-12-31T23:59:59Z"),
    sample(pulse=...),
    sample(bp=...),
    "not a dict",
    [1, 2],
]


@pytest.mark.parametrize("document", USUAL)
def test_the_quick_path_loads_what_the_schema_loads(document):
    quick = _load_usual(document)
    assert quick is not None, "a usual sample should not need the schema"
    assert quick == vitals_schema.load(document)
    assert {k: type(v) for k, v in quick.items()} == {
        k: type(v) for k, v in vitals_schema.load(document).items()
    }
    assert load_vitals(document) == quick
    assert vitals_errors(document) == {}


@pytest.mark.parametrize("document", UNUSUAL)
def test_anything_unusual_is_left_to_the_schema(document):
    assert _load_usual(document) is None
    try:
        expected = vitals_schema.load(document)
    except (ValidationError, TypeError, AttributeError) as exc:
        with pytest.raises(type(exc)):
            load_vitals(document)
    else:  # unusual but valid (a float pulse of 72.0 is not: strict integers)
        assert load_vitals(document) == expected
