from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest

from gateway_app.pcd01 import (
    Unsupported,
    Unusable,
    Vital,
    patient_uuid_for,
    read_observations,
)
from shared.sample import vitals_errors

# An ORU^R01 in the IHE PCD technical framework's style (the one the README sends with
# mllp_send): MDC codes and units, hierarchical OBX-4 ids, device rows without values, an
# equipment identifier in OBX-18, the temperature in degrees Fahrenheit.
EXAMPLE = Path(__file__).resolve().parents[2] / "gateway_app" / "examples" / "oru-r01.hl7"
PCD01 = EXAMPLE.read_text().strip().replace("\n", "\r")


def parse(text=PCD01):
    return hl7.parse(text)


def replaced(old, new, text=PCD01):
    assert old in text
    return text.replace(old, new)


def test_a_pcd01_message_becomes_a_valid_sample():
    observations = read_observations(parse())
    sample = observations.sample(patient_uuid_for("urn:x", "MRN-4711", "s" * 32))
    assert sample["pulse"] == 72  # the ECG's rate, preferred over the pulse oximeter's
    assert sample["resp_rate"] == 14
    assert sample["spo2"] == 97
    assert sample["bp"] == "121/79"
    assert sample["temperature"] == 37.0  # 98.6 °F
    assert sample["patient_name"] == "Ivan Petrov"
    assert sample["patient_identifier"] == {
        "system": "urn:vigil:assigning-authority:HOSP",
        "value": "MRN-4711",
    }
    assert sample["timestamp"] == "2026-12-02T11:59:55+00:00"
    assert observations.header.control_id == "MSG0001"
    assert vitals_errors(sample) == {}


def test_loinc_codes_and_ucum_units_are_read_too():
    text = "\r".join(
        [
            "MSH|^~\\&|GW|ICU1|VIGIL|HOSP|20261202120000||ORU^R01|M2|P|2.5",
            "PID|||99^^^&1.2.840.114350&ISO^MR||Ivanova^Anna",
            "OBX|1|NM|8867-4^Heart rate^LN||88|/min^^UCUM|||||F|||202612021159+0100",
            "OBX|2|NM|9279-1^Respiratory rate^LN||18|{breaths}/min^^UCUM|||||F",
            "OBX|3|NM|59408-5^SpO2^LN||95|%^^UCUM|||||F",
            "OBX|4|NM|8480-6^Systolic^LN||130|mm[Hg]^^UCUM|||||F",
            "OBX|5|NM|8462-4^Diastolic^LN||85|mm[Hg]^^UCUM|||||F",
            "OBX|6|NM|8310-5^Body temperature^LN||37.4|Cel^^UCUM|||||F",
        ]
    )
    observations = read_observations(parse(text))
    assert observations.identifier_system == "urn:oid:1.2.840.114350"
    assert observations.values[Vital.PULSE] == 88
    assert observations.taken_at == datetime(2026, 12, 2, 10, 59, tzinfo=UTC)


def test_a_time_without_offset_is_in_the_configured_zone():
    text = PCD01.replace("20261202115955+0000", "20261202115955")
    observations = read_observations(parse(text), local_zone=timezone(timedelta(hours=2)))
    assert observations.taken_at == datetime(2026, 12, 2, 9, 59, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "utc"),
    [
        ("-0030", datetime(2026, 12, 2, 12, 29, 55, tzinfo=UTC)),
        ("+0030", datetime(2026, 12, 2, 11, 29, 55, tzinfo=UTC)),
        ("-0530", datetime(2026, 12, 2, 17, 29, 55, tzinfo=UTC)),
        ("-0000", datetime(2026, 12, 2, 11, 59, 55, tzinfo=UTC)),
    ],
)
def test_an_offset_west_of_utc_by_minutes_keeps_its_sign(offset, utc):
    text = PCD01.replace("20261202115955+0000", f"20261202115955{offset}")
    assert read_observations(parse(text)).taken_at == utc


def test_the_same_mrn_gives_the_same_uuid_and_another_secret_another():
    first = patient_uuid_for("urn:x", "MRN-1", "a" * 32)
    assert first == patient_uuid_for("urn:x", "MRN-1", "a" * 32)
    assert first != patient_uuid_for("urn:x", "MRN-1", "b" * 32)
    assert first != patient_uuid_for("urn:x", "MRN-2", "a" * 32)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (replaced("OBX|4|NM|151562", "OBX|4|NM|999999"), "missing vitals: resp_rate"),
        (replaced("|97|262688^MDC_DIM_PERCENT", "|97|0^MDC_DIM_WHATEVER"), "unknown unit"),
        (replaced("|121|266016", "|12I|266016"), "not a number"),
        (replaced("|72|264864", "|NaN|264864"), "not a number"),
        (replaced("MRN-4711^^^HOSP^MR", ""), "PID-3"),
        (replaced("PID|||", "PID|||x|\rPID|||"), "one PID"),
        (replaced("MSG0001", ""), "MSH-10"),
        (PCD01.replace("20261202115955+0000", "2026"), "not precise to the minute"),
        (PCD01.replace("20261202115955+0000", "20261302115955"), "not an HL7 date"),
        (replaced("|MRN-4711^", "|" + "9" * 65 + "^"), "longer than 64"),
    ],
    ids=[
        "missing vital",
        "unknown unit",
        "not a number",
        "NaN",
        "no identifier",
        "two patients",
        "no control id",
        "imprecise time",
        "impossible date",
        "long identifier",
    ],
)
def test_an_unusable_message_says_why(text, reason):
    with pytest.raises(Unusable, match=reason):
        read_observations(parse(text))


def test_another_message_type_is_unsupported():
    with pytest.raises(Unsupported, match="ADT\\^A01 is not ORU\\^R01"):
        read_observations(parse(replaced("ORU^R01^ORU_R01", "ADT^A01")))


def test_a_value_that_could_not_be_obtained_counts_as_missing():
    text = replaced(
        "|14|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R", "||264928^MDC_DIM_RESP_PER_MIN^MDC|||||X"
    )
    with pytest.raises(Unusable, match="resp_rate"):
        read_observations(parse(text))
