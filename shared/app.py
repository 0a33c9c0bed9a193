"""What every Vigil app factory starts with, and the API object of the documented apps."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask_smorest import Api

from shared.config import (
    ConfigError,
    RedisRole,
    Setting,
    load_settings,
    plaintext_redis_hosts,
    redis_url,
)
from shared.converters import UUIDConverter, uuid_param_schema
from shared.logging import configure_logging
from shared.request_checks import FORM_LIMITS, register_request_checks
from shared.request_id import register_request_id
from shared.telemetry import init_telemetry
from shared.web_security import WEB_SETTINGS, init_web_security

log = logging.getLogger(__name__)

OPENAPI_DEFAULTS: dict[str, Any] = {
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
}


def create_base_app(
    import_name: str,
    service: str,
    settings: Iterable[Setting],
    test_config: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Flask:
    """A Flask app with settings, JSON logging, request ids, `/metrics`, the uuid converter,
    the checks of every request's body (shared/request_checks.py), and the security headers
    and proxy settings of shared.web_security.

    Settings come from `defaults`, then the environment (a ConfigError stops here), then
    `test_config`. Nothing here connects anywhere, so a pre-forking server can call it.
    """
    # No static folder: the only files any app serves are Swagger UI's (monitor_app/docs.py).
    app = Flask(import_name, static_folder=None)
    app.config.from_mapping(FORM_LIMITS)
    app.config.from_mapping(defaults or {})
    app.config.from_mapping(load_settings((*settings, *WEB_SETTINGS)))
    if test_config:
        app.config.from_mapping(test_config)
    configure_logging(service, app.config["LOG_LEVEL"])
    check_redis_transport(app.config)
    register_request_id(app)
    init_telemetry(app, service)
    # Before the access check, which every factory adds later: oversized or malformed input
    # is refused before any token is verified or any view runs.
    register_request_checks(app)
    init_web_security(app)
    # Before any rule is added: a malformed uuid is a bad parameter (422), not a missing URL.
    app.url_map.converters["uuid"] = UUIDConverter
    return app


def check_redis_transport(config: Mapping[str, Any]) -> None:
    """Refuse a CA file that no Redis URL uses; log once, at start, each Redis host off this
    machine that is reached without TLS.

    The CA without rediss:// is a ConfigError: whoever set it believes the traffic is
    encrypted. Plain Redis off the machine is only a warning: a private network
    (docker-compose's, a host's own bridge) may carry it safely, and only the operator knows
    whether it is one. Off such a network the passwords, the revocations and the queued
    analyses cross it readable.
    """
    if "REDIS_URL" not in config:
        return
    schemes = {urlsplit(redis_url(config, role)).scheme for role in RedisRole}
    if config.get("REDIS_TLS_CA_FILE") is not None and "rediss" not in schemes:
        raise ConfigError(
            "REDIS_TLS_CA_FILE: set, but no Redis URL is rediss://, so nothing would use it"
        )
    for host in plaintext_redis_hosts(config):
        log.warning(
            "Redis is reached over plain TCP, readable on the network: use rediss:// "
            "unless that network is private (README: Redis)",
            extra={"redis_host": host},
        )


def make_api() -> Api:
    """A flask-smorest Api whose OpenAPI document describes uuid path parameters as UUIDs."""
    api = Api()
    # Registered before init_app, so every app's spec documents the parameters as UUIDs.
    api.register_converter(UUIDConverter, uuid_param_schema)
    return api
