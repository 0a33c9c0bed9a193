import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from data_app.decoding import InvalidSample, decode_sample
from shared.sample import PatientIdentifier


def sample(**overrides):
    document = {
        "patient_uuid": str(uuid.uuid4()),
        "patient_name": "Ivan Petrov",
        "timestamp": datetime.now(UTC).isoformat(),
        "pulse": 72,
        "resp_rate": 14,
        "bp": "120/80",
        "spo2": 98,
        "temperature": 36.8,
    }
    document.update(overrides)
    return document


def encode(document) -> bytes:
    return json.dumps(document).encode()


def test_valid_sample_is_decoded_with_bp_split():
    decoded = decode_sample(encode(sample(bp="135/85")))
    assert (decoded.systolic, decoded.diastolic, decoded.bp) == (135, 85, "135/85")
    assert decoded.timestamp.tzinfo is not None


def test_unknown_fields_are_ignored():
    assert decode_sample(encode(sample(firmware="2.1"))).pulse == 72


def test_abnormal_but_physical_values_are_accepted():
    decoded = decode_sample(encode(sample(pulse=0, spo2=60, temperature=41.5, bp="70/30")))
    assert decoded.pulse == 0


def _without(field):
    document = sample()
    del document[field]
    return encode(document)


# What a broken or hostile producer sends, and what the dead-letter reason must mention
# (tests/test_shared_schemas.py also holds the quick decoder to the schema on these).
BAD_MESSAGES = [
    (b"", "empty message"),
    (None, "empty message"),
    (b"not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[1, 2, 3]", "expected a JSON object"),
    (encode(sample(pulse="fast")), "pulse"),
    (encode(sample(pulse=72.5)), "pulse"),
    (encode(sample(pulse=True)), "pulse"),
    (encode(sample(pulse=900)), "pulse"),
    (encode(sample(spo2=101)), "spo2"),
    (encode(sample(resp_rate=-1)), "resp_rate"),
    (encode(sample(temperature=60.0)), "temperature"),
    (b'{"temperature": NaN}', "not JSON"),
    (encode(sample()).replace(b"36.8", b"Infinity"), "not JSON"),
    (encode(sample(bp="abc")), "bp"),
    (encode(sample(bp="120/")), "bp"),
    (encode(sample(bp="80/120")), "bp"),
    (encode(sample(bp="400/80")), "bp"),
    (encode(sample(patient_uuid="not-a-uuid")), "patient_uuid"),
    (encode(sample(timestamp="yesterday")), "timestamp"),
    (encode(sample(timestamp="2026-01-01T10:00:00")), "timestamp"),
    (encode(sample(timestamp=(datetime.now(UTC) + timedelta(days=365)).isoformat())), "future"),
    (_without("pulse"), "pulse"),
    (_without("patient_uuid"), "patient_uuid"),
    (b"{" + b" " * 20000 + b"}", "too large"),
    # Input that raised something other than InvalidSample, failing its whole batch.
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (encode(sample()).replace(b'"pulse": 72', b'"pulse": ' + b"9" * 5000), "4300 digits"),
    (encode(sample(timestamp="0001-01-01T00:00:00+01:00")), "out of range"),
    (encode(sample(timestamp="9999-12-31T23:59:59-23:59")), "out of range"),
    # Names the databases cannot store: their batch failed to insert, for ever.
    (encode(sample(patient_name="\ud800")), "U\\+D800"),
    (encode(sample(patient_name="Ivan\x00Petrov")), "U\\+0000 at position 4"),
    (encode(sample()).replace(b"36.8", b"1e999"), "temperature"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_MESSAGES)
def test_bad_messages_are_rejected_with_a_reason(value, reason):
    with pytest.raises(InvalidSample, match=reason):
        decode_sample(value)


def ahead(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def test_a_few_seconds_of_clock_skew_are_allowed_and_the_bound_is_a_parameter():
    # Stamped here, not at collection: the parameters of a test are made long before it runs.
    assert decode_sample(encode(sample(timestamp=ahead(timedelta(seconds=2))))).pulse == 72
    with pytest.raises(InvalidSample, match=r"future: 2[34]\d\.\d s ahead"):
        decode_sample(encode(sample(timestamp=ahead(timedelta(minutes=4)))))
    with pytest.raises(InvalidSample, match="more than the 5 s allowed"):
        decode_sample(encode(sample(timestamp=ahead(timedelta(seconds=30)))))
    minute_ahead = encode(sample(timestamp=ahead(timedelta(minutes=1))))
    assert decode_sample(minute_ahead, timedelta(minutes=2)).pulse == 72
    with pytest.raises(InvalidSample, match="more than the 30 s allowed"):
        decode_sample(minute_ahead, timedelta(seconds=30))


def test_a_sample_older_than_its_retention_is_refused_when_asked():
    month_old = encode(sample(timestamp=ahead(-timedelta(days=31))))
    assert decode_sample(month_old).pulse == 72  # no bound unless one is given
    with pytest.raises(InvalidSample, match=r"too old: 31\.0 days .* the 30 days samples are kept"):
        decode_sample(month_old, max_age=timedelta(days=30))
    recent = encode(sample(timestamp=ahead(-timedelta(days=29))))
    assert decode_sample(recent, max_age=timedelta(days=30)).pulse == 72


def test_a_hospital_identifier_is_decoded():
    identifier = {"system": "urn:oid:1.2.840.114350", "value": "MRN-0042"}
    decoded = decode_sample(encode(sample(patient_identifier=identifier)))
    assert decoded.patient_identifier == PatientIdentifier(**identifier)


def test_a_sample_without_identifier_has_none():
    assert decode_sample(encode(sample())).patient_identifier is None


BAD_IDENTIFIERS = [
    ({"system": "urn:oid:1.2"}, "value"),
    ({"system": "", "value": "42"}, "system"),
    ({"system": "urn:x", "value": "9" * 65}, "value"),
    ({"system": "urn:x", "value": "4\x002"}, "patient_identifier.value holds character U+0000"),
    ({"system": "urn:\x1bx", "value": "42"}, "patient_identifier.system holds"),
    ("MRN-0042", "patient_identifier"),
    ({"system": ["urn:x"], "value": "42"}, "system"),
]


@pytest.mark.parametrize(
    ("identifier", "reason"),
    BAD_IDENTIFIERS,
    ids=["no value", "empty system", "long value", "NUL", "escape", "a string", "a list"],
)
def test_a_bad_identifier_is_refused_with_its_reason(identifier, reason):
    with pytest.raises(InvalidSample, match=reason.replace("+", r"\+")):
        decode_sample(encode(sample(patient_identifier=identifier)))
