import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from data_app.decoding import InvalidSample, decode_sample


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
    assert (decoded["systolic"], decoded["diastolic"]) == (135, 85)
    assert "bp" not in decoded
    assert decoded["timestamp"].tzinfo is not None


def test_unknown_fields_are_ignored():
    assert decode_sample(encode(sample(firmware="2.1")))["pulse"] == 72


def test_abnormal_but_physical_values_are_accepted():
    decoded = decode_sample(encode(sample(pulse=0, spo2=60, temperature=41.5, bp="70/30")))
    assert decoded["pulse"] == 0


def _without(field):
    document = sample()
    del document[field]
    return encode(document)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
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
        (b"{" + b" " * 20000 + b"}", "exceeds"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(value, reason):
    with pytest.raises(InvalidSample, match=reason):
        decode_sample(value)
