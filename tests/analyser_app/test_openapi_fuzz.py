"""analyser_app against its own OpenAPI document, with requests schemathesis generates, each
with the worker's token: no answer may be a server error, and each must be one the operation
documents."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask

from analyser_app import create_app
from tests.analyser_app.conftest import INSTANT, worker_token
from tests.auth import bearer
from tests.openapi_fuzz import CHECKS, FUZZ_SETTINGS, strict_document

schema = schemathesis.openapi.from_dict(strict_document(create_app(INSTANT)))
WORKER_TOKEN = worker_token()


@schema.auth()
class WorkerToken:
    """Every generated request carries the worker's kind of token (analysis:write)."""

    def get(self, _case: schemathesis.Case, _context: schemathesis.AuthContext) -> str:
        return WORKER_TOKEN

    def set(self, case: schemathesis.Case, data: str, _context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), **bearer(data)}


@pytest.fixture
def fuzzed_app(redis_settings: dict[str, str]) -> Flask:
    """Tokens are checked against the test's Redis namespace."""
    return create_app({**INSTANT, **redis_settings})


@schema.parametrize()
@FUZZ_SETTINGS
def test_operation_answers_as_documented(case: schemathesis.Case, fuzzed_app: Flask) -> None:
    case.call_and_validate(app=fuzzed_app, checks=CHECKS)
