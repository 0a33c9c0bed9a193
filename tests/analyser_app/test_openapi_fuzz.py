"""analyser_app against its own OpenAPI document, with requests schemathesis generates: no
answer may be a server error, and each must be one the operation documents."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask

from analyser_app import create_app
from tests.analyser_app.conftest import INSTANT
from tests.openapi_fuzz import CHECKS, FUZZ_SETTINGS, strict_document

schema = schemathesis.openapi.from_dict(strict_document(create_app(INSTANT)))


@pytest.fixture
def fuzzed_app() -> Flask:
    return create_app(INSTANT)


@schema.parametrize()
@FUZZ_SETTINGS
def test_operation_answers_as_documented(case: schemathesis.Case, fuzzed_app: Flask) -> None:
    case.call_and_validate(app=fuzzed_app, checks=CHECKS)
