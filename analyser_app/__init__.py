"""analyser_app: Vigil's reference text analyser, a stand-in for an external AI API.

Serve it with `python -m analyser_app` or `gunicorn 'analyser_app:create_app()' --threads 16`.
The texts it takes describe patients: only an admin or an integration token holding
`analysis:write` (the worker's) may send one; tokens are checked as patient_app checks them.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import OPENAPI_DEFAULTS, create_base_app, make_api
from shared.auth.openapi import BEARER_SCHEME, AccessDocs
from shared.auth.policy import SIGNED_IN, declare
from shared.auth.verify import init_token_auth
from shared.errors import register_error_handlers
from shared.request_checks import max_content_length

from .config import ANALYSER_SETTINGS, check_latency
from .routes import blp, health_blp

api = make_api()

# Every operation but /health takes a bearer token; AccessDocs marks the one that needs none.
API_SPEC_OPTIONS: dict[str, Any] = {
    "components": {"securitySchemes": {"bearerAuth": BEARER_SCHEME}},
    "security": [{"bearerAuth": []}],
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build analyser_app; it connects to nothing and starts no thread."""
    app = create_base_app(
        __name__,
        "analyser_app",
        # 10,000 characters at 12 bytes each, were every one an escaped surrogate pair.
        (*ANALYSER_SETTINGS, max_content_length(256 * 1024)),
        test_config,
        defaults={
            **OPENAPI_DEFAULTS,
            "API_TITLE": "Vigil text analyser",
            "API_SPEC_OPTIONS": API_SPEC_OPTIONS,
        },
    )
    # After test_config too, so a test cannot build an app the environment could not.
    check_latency(app.config)
    # Each operation documents the access its view declares (401, 403, or no security).
    api.init_app(app, spec_kwargs={"extra_plugins": [AccessDocs(app)]})
    api.register_blueprint(blp, url_prefix=app.config["API_PREFIX"])
    api.register_blueprint(health_blp)
    # The public key is loaded here (a missing one stops the app); Redis is asked per request.
    init_token_auth(app)
    declare(app, "api-docs.openapi_json", SIGNED_IN)
    # After the Api, whose own handlers would otherwise answer with flask-smorest's body.
    register_error_handlers(app)
    return app
