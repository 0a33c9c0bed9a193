"""patient_app against its own OpenAPI document, with requests schemathesis generates, signed
in as an admin (who may call every route): no answer may be a server error, and each must be
one the operation documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st

from patient_app import create_app
from shared.auth.roles import Role
from shared.lifecycle import stop_background
from tests.auth import bearer, token_for
from tests.openapi_fuzz import CHECKS, FUZZ_SETTINGS, strict_document

# A fixed patient, so that generated requests reach the found paths and not only 404s.
PATIENT = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
SETTINGS = {
    "TESTING": True,
    "PATIENT_UUID": str(PATIENT),
    "PATIENT_SEED": 7,
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
}
ADMIN_TOKEN = token_for(Role.ADMIN)

schema = schemathesis.openapi.from_dict(strict_document(create_app(SETTINGS)))


@schema.auth()
class AdminToken:
    """Every generated request carries an admin's token."""

    def get(self, _case: schemathesis.Case, _context: schemathesis.AuthContext) -> str:
        return ADMIN_TOKEN

    def set(self, case: schemathesis.Case, data: str, _context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), **bearer(data)}


@schema.hook
def flatmap_path_parameters(_context: schemathesis.HookContext, path_parameters: object) -> object:
    if not isinstance(path_parameters, dict) or "patient_uuid" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, "patient_uuid": str(PATIENT)}])


@pytest.fixture
def fuzzed_app(redis_settings: dict[str, str]) -> Iterator[Flask]:
    """A patient_app simulating PATIENT, not started; tokens are checked against the test's
    Redis namespace."""
    app = create_app({**SETTINGS, **redis_settings})
    yield app
    stop_background(app)


# /health takes no input, and without a broker (none runs here) it rightly answers 503;
# test_simulator checks it.
@schema.exclude(path="/health").parametrize()
@FUZZ_SETTINGS
def test_operation_answers_as_documented(case: schemathesis.Case, fuzzed_app: Flask) -> None:
    case.call_and_validate(app=fuzzed_app, checks=CHECKS)
