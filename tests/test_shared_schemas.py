"""The quick decoder (shared.sample, msgspec) agrees with the schema it stands in for, on
every valid and hostile message the tests know."""

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from data_app.decoding import InvalidSample, _check_text
from shared.sample import (
    PatientIdentifier,
    VitalsSample,
    convert_vitals,
    decode_vitals,
    vitals_errors,
)
from shared.schemas import vitals_schema
from tests.data_app.test_decoding import BAD_IDENTIFIERS, BAD_MESSAGES
from tests.data_app.test_hostile_input import hostile_corpus

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


IDENTIFIER = {"system": "urn:oid:1.2.840.114350", "value": "MRN-0042"}

# Valid samples as producers send them: the quick path must take every one.
USUAL = [
    sample(),
    sample(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%SZ")),
    sample(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
    sample(timestamp=NOW.astimezone(timezone(timedelta(hours=3))).isoformat()),
    sample(timestamp=(NOW - timedelta(days=3)).isoformat(timespec="microseconds")),
    sample(patient_name=...),
    sample(patient_name=None),
    sample(patient_name="Ольга Смирнова 😀"),
    sample(patient_name="x" * 200),
    sample(temperature=37),
    sample(temperature=36.80000000000001),
    sample(pulse=0, spo2=0, resp_rate=0, bp="300/250", temperature=45.0),
    sample(pulse=300, resp_rate=100, spo2=100, bp="16/1", temperature=25),
    sample(firmware="2.1", nested={"deep": [1, 2.5, None, "x"]}),
    sample(patient_uuid=str(uuid.uuid4()).upper()),
    sample(patient_uuid=uuid.uuid4().hex),
    sample(patient_identifier=IDENTIFIER),
    sample(patient_identifier={**IDENTIFIER, "assigner": "St Elsewhere"}),
    sample(patient_identifier=None),
]

# Valid to the schema, left to it by the quick path: forms of an instant or a uuid no producer
# of Vigil's sends. The schema loads them (data_app.decoding falls back to it).
LEFT_TO_THE_SCHEMA = [
    sample(patient_uuid="{12345678-1234-5678-1234-567812345678}"),
    sample(patient_uuid="urn:uuid:12345678-1234-5678-1234-567812345678"),
    sample(timestamp="20260101T100000Z"),
    sample(timestamp="2026-01-01 10:00:00Z"),
    sample(timestamp="2026-01-01T10:00:00.1234567Z"),
    sample(timestamp="2026-01-01T10:00:00+0100"),
]

# Unusual, valid or not: whatever the schema says of each, the quick path must not differ.
UNUSUAL = [
    sample(pulse=72.0),
    sample(pulse=True),
    sample(temperature=False),
    sample(pulse="72"),
    sample(pulse=301),
    sample(spo2=-1),
    sample(temperature=45.1),
    sample(temperature=float("nan")),
    sample(temperature=float("inf")),
    sample(bp="80/120"),
    sample(bp="120/"),
    sample(bp=120),
    sample(bp="120/80 "),
    sample(bp="١٢٠/٨٠"),  # Arabic-Indic digits: \d matches them, int() reads them
    sample(patient_name=""),
    sample(patient_name="x" * 201),
    sample(patient_name=5),
    sample(patient_uuid="nope"),
    sample(patient_uuid=5),
    sample(timestamp="2026-01-01T10:00:00"),
    sample(timestamp="2026-01-01"),
    sample(timestamp="2026-01-01T10:00:00Z\n"),
    sample(timestamp=(NOW + timedelta(days=1)).isoformat()),
    sample(timestamp="1999-12-31T23:59:59Z"),
    sample(timestamp="2000-01-01T00:59:59+01:00"),
    sample(pulse=...),
    sample(bp=...),
    sample(timestamp=...),
    sample(patient_identifier={"system": "urn:x"}),
    sample(patient_identifier={"system": "urn:x", "value": "x" * 65}),
    sample(patient_identifier="MRN-0042"),
    "not a dict",
    [1, 2],
    None,
]


def encode(document) -> bytes:
    return json.dumps(document).encode()


def _corpus() -> list[bytes]:
    """Every message above, and every hostile one of the data_app tests, as bytes."""
    messages = [encode(document) for document in USUAL + UNUSUAL]
    messages += [value for value, _reason in BAD_MESSAGES if value is not None]
    messages += [encode(sample(patient_identifier=bad)) for bad, _reason in BAD_IDENTIFIERS]
    messages += [value for _name, _key, value, _reason in hostile_corpus()]
    # An unknown field nested beyond what json (and msgspec) parse.
    messages.append(
        encode(sample()).replace(b"{", b'{"x": ' + b"[" * 3000 + b"]" * 3000 + b", ", 1)
    )
    return messages


def _typed_values(sample: VitalsSample) -> list[tuple[str, object, type]]:
    return [
        (f, getattr(sample, f), type(getattr(sample, f))) for f in VitalsSample.__struct_fields__
    ]


def quickly(value: bytes) -> VitalsSample | None:
    """The quick path's answer: None when it refuses or leaves the message to the schema."""
    try:
        return decode_vitals(value)
    except OverflowError:  # refused, with its own reason (an instant with no UTC form)
        return None


def by_schema(value: bytes) -> VitalsSample | None:
    """What data_app decoded before msgspec: json (no NaN), then the schema; None if refused."""

    def no_constants(name: str):
        raise ValueError(name)

    try:
        document = json.loads(value.decode("utf-8"), parse_constant=no_constants)
        return VitalsSample.from_loaded(vitals_schema.load(document))
    except (ValidationError, ArithmeticError, ValueError, TypeError, RecursionError):
        return None


def storable(sample: VitalsSample | None) -> VitalsSample | None:
    """The sample, or None if data_app refuses its text (data_app.decoding._check_text)."""
    identifier = sample and sample.patient_identifier
    texts = [sample and sample.patient_name, identifier and identifier.system]
    texts.append(identifier and identifier.value)
    try:
        for text in texts:
            _check_text("text", text)
    except InvalidSample:
        return None
    return sample


CORPUS = _corpus()


@pytest.mark.parametrize("value", CORPUS, ids=[f"message {i}" for i in range(len(CORPUS))])
def test_the_quick_decoder_gives_the_schema_answer_on_every_message(value):
    # Lone surrogates are not text to msgspec; the schema takes them, and data_app then
    # refuses them as text no database stores: either way, refused.
    quick, expected = storable(quickly(value)), storable(by_schema(value))
    assert (quick is None) == (expected is None)
    if quick is not None:
        assert _typed_values(quick) == _typed_values(expected)


@pytest.mark.parametrize("document", USUAL)
def test_the_quick_decoder_takes_every_usual_sample(document):
    quick = decode_vitals(encode(document))
    assert quick is not None, "a usual sample should not need the schema"
    assert quick == VitalsSample.from_loaded(vitals_schema.load(document))
    assert quick.timestamp.utcoffset() == timedelta(0)
    assert convert_vitals(document) == quick
    assert vitals_errors(document) == {}


@pytest.mark.parametrize("document", LEFT_TO_THE_SCHEMA)
def test_the_few_valid_forms_the_quick_decoder_leaves_are_loaded_by_the_schema(document):
    assert decode_vitals(encode(document)) is None
    assert by_schema(encode(document)) is not None


@pytest.mark.parametrize("document", UNUSUAL)
def test_dict_documents_get_the_schema_answer(document):
    """vitals_errors (the producers' check, on parsed documents) agrees with the schema."""
    quick = convert_vitals(document)
    if quick is not None:
        assert quick == VitalsSample.from_loaded(vitals_schema.load(document))
    assert (vitals_errors(document) == {}) == (vitals_schema.validate(document) == {})


def test_a_sample_is_a_frozen_typed_value():
    value = decode_vitals(encode(sample(patient_identifier=IDENTIFIER, bp="135/85")))
    assert value is not None
    assert (value.systolic, value.diastolic, value.bp) == (135, 85, "135/85")
    assert value.patient_identifier == PatientIdentifier("urn:oid:1.2.840.114350", "MRN-0042")
    assert isinstance(value.patient_uuid, uuid.UUID)
    assert math.isclose(value.temperature, 36.8)
    with pytest.raises(AttributeError):
        value.pulse = 80  # type: ignore[misc]
    assert not hasattr(value, "__dict__")  # slotted


def test_an_unknown_field_is_ignored_whatever_number_it_holds():
    # The one message of the corpus's kind where the answers differ: json refuses any integer
    # of more than 4300 digits, even in a field the schema then ignores; msgspec skips the
    # field unread. The sample itself is valid, so it is stored rather than dead-lettered.
    document = sample(firmware="@")
    value = encode(document).replace(b'"@"', b"9" * 5000)
    assert by_schema(value) is None
    assert decode_vitals(value) == by_schema(encode({**document, "firmware": 9}))


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59"])
def test_an_instant_with_no_utc_form_is_an_error_to_producers_not_a_crash(instant):
    document = sample(timestamp=instant)
    with pytest.raises(OverflowError):  # data_app words its refusal from this
        convert_vitals(document)
    assert vitals_errors(document) == vitals_schema.validate(document) != {}
