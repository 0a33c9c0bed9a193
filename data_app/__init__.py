"""data_app: consumes vitals from Kafka, stores them with their NEWS2 and raises alerts."""

from __future__ import annotations

from typing import Any

from flask import Flask

from data_app.config import DATA_SETTINGS
from data_app.consumer import VitalsConsumer
from data_app.retention import RetentionJob
from data_app.routes import bp as health_bp
from shared.app import create_base_app
from shared.auth.verify import init_token_auth
from shared.db import SchemaMigration, db
from shared.errors import register_error_handlers
from shared.lifecycle import register_background
from shared.notifications import init_notifications
from shared.request_checks import max_content_length


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build data_app; the consumer starts when the server starts serving."""
    # Its only routes are GETs (health, metrics): a body is never needed.
    settings = (*DATA_SETTINGS, max_content_length(16 * 1024))
    app = create_base_app(__name__, "data_app", settings, test_config)
    db.init_app(app)
    init_notifications(app)
    # Order matters: the schema exists before the first batch is stored.
    register_background(app, "schema", SchemaMigration(app))
    register_background(app, "retention", RetentionJob(app))
    register_background(app, "consumer", VitalsConsumer(app))
    app.register_blueprint(health_bp)
    init_token_auth(app)
    register_error_handlers(app)
    return app
