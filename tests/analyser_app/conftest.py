from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from analyser_app import create_app

INSTANT = {"TESTING": True, "ANALYSER_MIN_LATENCY": 0.0, "ANALYSER_MAX_LATENCY": 0.0}


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """An analyser_app that answers at once, with any setting overridden."""

    def make(**overrides: Any) -> Flask:
        return create_app({**INSTANT, **overrides})

    return make


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()
