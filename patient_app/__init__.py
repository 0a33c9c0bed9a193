"""patient_app: simulates ICU patients and streams their vitals to Kafka."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from shared.config import load_settings
from shared.converters import UUIDConverter, uuid_param_schema
from shared.errors import register_error_handlers
from shared.lifecycle import register_background
from shared.logging import configure_logging
from shared.request_id import register_request_id

from .config import PATIENT_SETTINGS
from .monitoring import MetricsService
from .patients import build_patients
from .producer import KafkaService
from .routes import blp, health_blp

api = Api()
api.register_converter(UUIDConverter, uuid_param_schema)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build patient_app; the scheduler starts when the server starts serving."""
    app = Flask(__name__)
    app.config.from_mapping(load_settings(PATIENT_SETTINGS))
    app.config.from_mapping(API_TITLE="Vigil patient simulator", API_VERSION="v1",
                            OPENAPI_VERSION="3.0.3", OPENAPI_URL_PREFIX="/",
                            OPENAPI_JSON_PATH="openapi.json")
    if test_config:
        app.config.from_mapping(test_config)
    configure_logging("patient_app", app.config["LOG_LEVEL"])
    register_request_id(app)
    register_monitoring(app)
    # Malformed uuids in URLs are bad parameters (422), not missing pages.
    app.url_map.converters["uuid"] = UUIDConverter
    api.init_app(app)
    api.register_blueprint(blp, url_prefix=app.config["API_PREFIX"])
    api.register_blueprint(health_blp)
    register_error_handlers(app)
    return app


def register_monitoring(app: Flask) -> None:
    """The simulated patients, their producer and scheduler (not started here)."""
    config = app.config
    patients = build_patients(config["PATIENT_NAME"], config["PATIENT_COUNT"],
                              config["PATIENT_SCENARIO"], config["PATIENT_SEED"],
                              config["PATIENT_UUID"])
    kafka = KafkaService(config["KAFKA_BOOTSTRAP_SERVERS"], config["KAFKA_TOPIC"],
                         config["KAFKA_TOPIC_PARTITIONS"])
    register_background(app, "monitoring",
                        MetricsService(patients, kafka, config["METRICS_INTERVAL"]))
