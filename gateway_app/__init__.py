"""gateway_app: bedside monitors' HL7 v2 (IHE PCD-01 ORU^R01) as Vigil's vitals samples."""

from __future__ import annotations

import ssl
from typing import Any

from flask import Flask

from gateway_app.config import GATEWAY_SETTINGS
from gateway_app.mllp import GatewaySettings, MllpServer
from gateway_app.publisher import Publisher
from gateway_app.refusals import RefusalAudit
from gateway_app.routes import bp as health_bp
from shared.app import create_base_app
from shared.auth.verify import init_token_auth
from shared.config import ConfigError, paired
from shared.db import SchemaMigration, db
from shared.errors import register_error_handlers
from shared.kafka import KafkaConnection, TopicSettings
from shared.lifecycle import register_background
from shared.request_checks import max_content_length
from shared.tls import server_context


def listener_tls(config: dict[str, Any]) -> ssl.SSLContext | None:
    """The MLLP listener's TLS context, from HL7_TLS_CERT_FILE and HL7_TLS_KEY_FILE (and
    HL7_TLS_CLIENT_CA_FILE, for mutual TLS)."""
    pair = paired(config, "HL7_TLS_CERT_FILE", "HL7_TLS_KEY_FILE")
    client_ca_file = config["HL7_TLS_CLIENT_CA_FILE"]
    if pair is None:
        if client_ca_file is not None:
            # Whoever set it believes senders are checked: without TLS, none would be.
            raise ConfigError("HL7_TLS_CLIENT_CA_FILE: set, but TLS is off (HL7_TLS_CERT_FILE)")
        return None
    try:
        return server_context(*pair, client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"HL7_TLS_CERT_FILE, HL7_TLS_KEY_FILE, HL7_TLS_CLIENT_CA_FILE: {exc}"
        ) from None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build gateway_app; the MLLP listener starts when the server starts serving."""
    # Its only routes are GETs (health, metrics): a body is never needed.
    settings = (*GATEWAY_SETTINGS, max_content_length(16 * 1024))
    app = create_base_app(__name__, "gateway_app", settings, test_config)
    config = app.config
    if config["PATIENT_ID_SECRET"] is None:
        raise ConfigError("PATIENT_ID_SECRET: not set, and var/patient-id.secret does not exist")
    publisher = Publisher(
        KafkaConnection.from_config(config),
        config["KAFKA_TOPIC"],
        config["KAFKA_DLQ_TOPIC"],
        TopicSettings.from_config(config),
        config["KAFKA_COMPRESSION"],
    )
    gateway = GatewaySettings(
        host=config["HL7_HOST"],
        port=config["HL7_PORT"],
        facility=config["HL7_FACILITY"],
        id_secret=config["PATIENT_ID_SECRET"],
        allowed_networks=config["HL7_ALLOWED_SENDERS"],
        allowed_facilities=config["HL7_ALLOWED_FACILITIES"],
        max_message_bytes=config["HL7_MAX_MESSAGE_BYTES"],
        idle_timeout=config["HL7_IDLE_TIMEOUT_SECONDS"],
        max_connections=config["HL7_MAX_CONNECTIONS"],
        local_zone=config["HL7_TIMEZONE"],
        tls=listener_tls(config),
    )
    db.init_app(app)
    refusals = RefusalAudit(db.sessionmaker(app), config["HL7_REFUSAL_AUDIT_SECONDS"])
    # The audit trail's table exists before the first sender can be refused.
    register_background(app, "schema", SchemaMigration(app))
    register_background(app, "mllp", MllpServer(gateway, publisher, refusals))
    app.register_blueprint(health_bp)
    init_token_auth(app)
    register_error_handlers(app)
    return app
