"""`python -m bench.decode_timing`: microseconds a message to decode a vitals sample.

Not one of the benchmarks (no report): a quick figure for data_app's decode_sample and the
gateway's bounds check (not the json.dumps it then publishes), each beside marshmallow alone.
Run it in an older checkout too (it uses only what both have) to compare before and after.
"""

from __future__ import annotations

import json
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from data_app.decoding import decode_sample
from shared.schemas import vitals_schema

try:
    from shared.sample import vitals_errors
except ImportError:  # a checkout from before shared/sample.py
    from shared.schemas import vitals_errors

MESSAGE = {
    "patient_uuid": str(uuid.uuid4()),
    "patient_name": "Ivan Petrov",
    "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    "pulse": 72,
    "resp_rate": 14,
    "bp": "120/80",
    "spo2": 98,
    "temperature": 36.8,
}
# As the HL7 gateway publishes it: with the hospital identifier.
GATEWAY_MESSAGE = {
    **MESSAGE,
    "patient_identifier": {"system": "urn:oid:1.2.840.114350", "value": "MRN-0042"},
}


def microseconds(work: Callable[[], object], number: int = 20_000) -> float:
    """The best of five runs, a call."""
    return min(timeit.repeat(work, number=number, repeat=5)) / number * 1e6


def main() -> None:
    value = json.dumps(MESSAGE).encode()
    figures = {
        "data_app decode_sample": microseconds(lambda: decode_sample(value)),
        "  marshmallow alone (json + schema load)": microseconds(
            lambda: vitals_schema.load(json.loads(value))
        ),
        "gateway bounds check (vitals_errors)": microseconds(
            lambda: vitals_errors(GATEWAY_MESSAGE)
        ),
        "  marshmallow alone (schema validate)": microseconds(
            lambda: vitals_schema.validate(GATEWAY_MESSAGE)
        ),
    }
    for name, figure in figures.items():
        print(f"{name:44} {figure:6.2f} µs")


if __name__ == "__main__":
    main()
