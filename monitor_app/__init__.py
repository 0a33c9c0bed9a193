"""Vigil's monitor API: patients, their vital signs and NEWS2, notifications, live updates.

Serve it with `gunicorn 'monitor_app:create_app()'` from the project root.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from monitor_app.alarms.routes import alarm_blp as alarm_responses_blp
from monitor_app.alarms.routes import blp as alarms_blp
from monitor_app.audit.recorder import register_audit
from monitor_app.audit.routes import blp as audit_blp
from monitor_app.auth.authenticate import init_auth
from monitor_app.auth.cli import register_cli
from monitor_app.auth.pages import bp as login_bp
from monitor_app.auth.routes import blp as auth_blp
from monitor_app.auth.sso import bp as sso_bp
from monitor_app.auth.sso import init_sso
from monitor_app.config import API_DOCS, MONITOR_SETTINGS, extension_config
from monitor_app.dashboard.routes import bp as dashboard_bp
from monitor_app.docs import bp as swagger_ui_bp
from monitor_app.extensions import api, sock
from monitor_app.fhir.routes import bp as fhir_bp
from monitor_app.health.routes import blp as health_blp
from monitor_app.history.routes import blp as history_blp
from monitor_app.json_cache import JsonCache
from monitor_app.live.hub import init_event_hub
from monitor_app.live.routes import bp as live_bp
from monitor_app.live.session_watch import init_session_watch
from monitor_app.metrics.routes import blp as metrics_blp
from monitor_app.notifications.routes import blp as notifications_blp
from monitor_app.patients.routes import blp as patients_blp
from monitor_app.rate_limits import init_rate_limits
from shared.app import create_base_app
from shared.auth.openapi import AccessDocs
from shared.auth.policy import PUBLIC, SIGNED_IN, SIGNED_IN_PAGE, declare
from shared.config import RedisRole, redis_url
from shared.db import SchemaMigration, db
from shared.errors import register_error_handlers
from shared.lifecycle import register_background
from shared.notifications import init_notifications
from shared.request_checks import max_content_length


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the monitor API. It connects to nothing, so a pre-forking server can call it."""
    # 1 MiB: a notification, the largest body, is at most 10,200 characters (120 kB escaped).
    settings = (*MONITOR_SETTINGS, max_content_length(1024 * 1024))
    app = create_base_app(__name__, "monitor_app", settings, test_config, defaults=API_DOCS)
    register_database(app)
    register_redis(app)
    register_api(app)
    register_auth(app)
    register_rate_limits(app)
    # After the Api, whose own handlers would otherwise answer with flask-smorest's body.
    register_error_handlers(app)
    return app


def register_database(app: Flask) -> None:
    """Bind the engine lazily; the schema is migrated once the server is serving."""
    db.init_app(app)
    register_background(app, "schema", SchemaMigration(app))


def register_redis(app: Flask) -> None:
    """Cache, events and the analysis queue (and the rate limits' settings); all connect
    lazily to Redis."""
    for key, value in extension_config(app.config).items():
        app.config.setdefault(key, value)
    config = app.config
    app.extensions["vigil.cache"] = JsonCache(
        redis_url(config, RedisRole.CACHE),
        f"{config['REDIS_NAMESPACE']}:cache:",
        config["CACHE_SECONDS"],
    )
    init_notifications(app)
    register_background(app, "event_hub", init_event_hub(app))
    init_session_watch(app)


def register_api(app: Flask) -> None:
    """The documented endpoints, OpenAPI with Swagger UI, the dashboard, the live stream and
    the FHIR API (which describes itself at /fhir/metadata)."""
    # Each operation documents the access its view declares (401, 403, or no security).
    api.init_app(app, spec_kwargs={"extra_plugins": [AccessDocs(app)]})
    prefix = app.config["API_PREFIX"]
    api.register_blueprint(patients_blp, url_prefix=f"{prefix}/patients")
    api.register_blueprint(alarms_blp, url_prefix=f"{prefix}/patients")
    api.register_blueprint(alarm_responses_blp, url_prefix=f"{prefix}/alarms")
    api.register_blueprint(metrics_blp, url_prefix=prefix)
    api.register_blueprint(history_blp, url_prefix=prefix)
    api.register_blueprint(notifications_blp, url_prefix=f"{prefix}/notifications")
    api.register_blueprint(auth_blp, url_prefix=f"{prefix}/auth")
    api.register_blueprint(audit_blp, url_prefix=f"{prefix}/audit")
    api.register_blueprint(health_blp)
    app.register_blueprint(swagger_ui_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(live_bp, url_prefix=prefix)
    app.register_blueprint(fhir_bp, url_prefix="/fhir")
    sock.init_app(app)


def register_auth(app: Flask) -> None:
    """Sign-in, and every route's access: the routes declare theirs; these are libraries'."""
    init_auth(app)
    init_sso(app)
    app.register_blueprint(sso_bp)
    register_audit(app)
    register_cli(app)
    app.register_blueprint(login_bp)
    declare(app, "api-docs.openapi_json", SIGNED_IN)
    declare(app, "api-docs.openapi_swagger_ui", SIGNED_IN_PAGE)
    # Scripts and styles, the login page's among them: no patient data in them.
    declare(app, "swagger_ui.static", PUBLIC)
    declare(app, "dashboard.static", PUBLIC)


def register_rate_limits(app: Flask) -> None:
    """Per user, else per address: after the access check, which proves who the caller is."""
    # Probes, scrapes, docs, the dashboard and the live stream are not what the limit protects;
    # nor is signing out, which must work on a ward PC even while Redis is down.
    exempt = (health_blp, swagger_ui_bp, dashboard_bp, live_bp)
    views = (app.view_functions[name] for name in ("prometheus_metrics", "login.logout"))
    init_rate_limits(app, (*exempt, *views))
