"""analyser_app: Vigil's reference text analyser, a stand-in for an external AI API.

Serve it with `python -m analyser_app` or `gunicorn 'analyser_app:create_app()' --threads 16`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import OPENAPI_DEFAULTS, create_base_app, make_api
from shared.errors import register_error_handlers
from shared.request_checks import max_content_length

from .config import ANALYSER_SETTINGS, check_latency
from .routes import blp, health_blp

api = make_api()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build analyser_app; it connects to nothing and starts no thread."""
    app = create_base_app(
        __name__,
        "analyser_app",
        # 10,000 characters at 12 bytes each, were every one an escaped surrogate pair.
        (*ANALYSER_SETTINGS, max_content_length(256 * 1024)),
        test_config,
        defaults={**OPENAPI_DEFAULTS, "API_TITLE": "Vigil text analyser"},
    )
    # After test_config too, so a test cannot build an app the environment could not.
    check_latency(app.config)
    api.init_app(app)
    api.register_blueprint(blp, url_prefix=app.config["API_PREFIX"])
    api.register_blueprint(health_blp)
    # After the Api, whose own handlers would otherwise answer with flask-smorest's body.
    register_error_handlers(app)
    return app
