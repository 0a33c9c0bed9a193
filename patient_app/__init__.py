"""patient_app: simulates ICU patients and streams their vitals to Kafka."""

from __future__ import annotations

import ssl
from typing import Any

from flask import Flask

from shared.app import OPENAPI_DEFAULTS, create_base_app, make_api
from shared.auth.policy import SIGNED_IN, declare
from shared.auth.verify import init_token_auth
from shared.config import ConfigError, paired
from shared.errors import register_error_handlers
from shared.kafka import KafkaConnection, TopicSettings
from shared.lifecycle import register_background
from shared.request_checks import max_content_length
from shared.tls import client_context

from .config import PATIENT_SETTINGS
from .hl7_sender import Hl7Sender
from .monitoring import MetricsService, SampleSender
from .patients import build_patients, give_hospital_identifiers
from .producer import VitalsProducer
from .routes import blp, health_blp

api = make_api()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build patient_app; the scheduler starts when the server starts serving."""
    app = create_base_app(
        __name__,
        "patient_app",
        # The one body it takes is a scenario's name.
        (*PATIENT_SETTINGS, max_content_length(16 * 1024)),
        test_config,
        defaults={**OPENAPI_DEFAULTS, "API_TITLE": "Vigil patient simulator"},
    )
    register_monitoring(app)
    api.init_app(app)
    api.register_blueprint(blp, url_prefix=app.config["API_PREFIX"])
    api.register_blueprint(health_blp)
    init_token_auth(app)
    declare(app, "api-docs.openapi_json", SIGNED_IN)
    register_error_handlers(app)
    return app


def gateway_tls(config: dict[str, Any]) -> ssl.SSLContext | None:
    """The TLS context for the HL7 gateway, if HL7_GATEWAY_TLS, HL7_GATEWAY_CA_FILE or a client
    certificate asks for one."""
    ca_file = config["HL7_GATEWAY_CA_FILE"]
    pair = paired(config, "HL7_GATEWAY_CERT_FILE", "HL7_GATEWAY_KEY_FILE")
    if not (config["HL7_GATEWAY_TLS"] or ca_file is not None or pair is not None):
        return None
    try:
        return client_context(ca_file, *(pair or (None, None)))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"HL7_GATEWAY_CA_FILE, HL7_GATEWAY_CERT_FILE, HL7_GATEWAY_KEY_FILE: {exc}"
        ) from None


def register_monitoring(app: Flask) -> None:
    """The simulated patients, their producer and scheduler (not started here)."""
    config = app.config
    patients = build_patients(
        config["PATIENT_NAME"],
        config["PATIENT_COUNT"],
        config["PATIENT_SCENARIO"],
        config["PATIENT_SEED"],
        config["PATIENT_UUID"],
        deterioration_s=config["PATIENT_DETERIORATION_SECONDS"],
        id_secret=config["PATIENT_ID_SECRET"],
    )
    sender: SampleSender
    if config["PATIENT_PROTOCOL"] == "hl7":
        if config["PATIENT_UUID"] is not None:
            # Over HL7 the patient is named by MRN, and the gateway derives the uuid from it.
            raise ConfigError(
                "PATIENT_UUID: not with PATIENT_PROTOCOL=hl7, where the gateway gives the "
                "patient the uuid of their MRN"
            )
        facility = config["HL7_SENDING_FACILITY"]
        give_hospital_identifiers(patients, facility, config["PATIENT_ID_SECRET"])
        sender = Hl7Sender(
            config["HL7_GATEWAY_HOST"],
            config["HL7_GATEWAY_PORT"],
            {patient.uuid: patient.identifier for patient in patients},
            facility,
            tls=gateway_tls(config),
        )
    else:
        sender = VitalsProducer(
            KafkaConnection.from_config(config),
            config["KAFKA_TOPIC"],
            TopicSettings.from_config(config),
            config["KAFKA_COMPRESSION"],
        )
    register_background(
        app, "monitoring", MetricsService(patients, sender, config["METRICS_INTERVAL"])
    )
