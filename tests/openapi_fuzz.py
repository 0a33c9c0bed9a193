"""What the schemathesis tests of patient_app and analyser_app share: the checks, the
settings that keep each app's run to a few seconds, and the document without `default`.

tests/monitor_app/test_openapi_fuzz.py does the same for the monitor API, with seeded data.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings of every fuzz: repeatable examples, no deadline (a loaded machine
    makes single requests slow without making them wrong), no example database."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


# A few seconds per app on two busy cores: their operations are few and take small bodies.
FUZZ_SETTINGS = fuzz_settings(15)


def strict_document(app: Flask) -> dict[str, Any]:
    """`app`'s OpenAPI document without the `default` responses flask-smorest adds to every
    operation, which would make any status code a documented one."""
    with app.app_context():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec
        # Through JSON, as a client would read it: plain strings, lists and numbers.
        document = json.loads(app.json.dumps(spec.to_dict()))
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return document
