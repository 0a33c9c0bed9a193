"""Settings of the monitor API: the shared ones, its database and its URL prefix."""

from __future__ import annotations

from typing import Any

from shared.app import OPENAPI_DEFAULTS
from shared.config import (
    COMMON_SETTINGS,
    Setting,
    default_database_url,
    parse_api_prefix,
    parse_nonempty,
)

MONITOR_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    Setting("DATABASE_URL", parse_nonempty, default_database_url,
            "SQLAlchemy URL of the Vigil database (SQLite file or PostgreSQL)."),
    Setting("API_PREFIX", parse_api_prefix, "/api/v1",
            "Path under which the patient and metric endpoints are served."),
)

# Page sizes are part of the documented API contract, fixed when the views are declared.
PATIENTS_PAGE_SIZE = 50
PATIENTS_MAX_PAGE_SIZE = 200
METRICS_LIMIT = 100
METRICS_MAX_LIMIT = 1000

# Where the app serves Swagger UI's own files, so /docs needs no CDN.
SWAGGER_UI_ASSETS_URL = "/docs/assets"

# flask-smorest reads these from app.config.
API_DOCS: dict[str, Any] = {
    **OPENAPI_DEFAULTS,
    "API_TITLE": "Vigil monitor API",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": f"{SWAGGER_UI_ASSETS_URL}/",
    # Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "Read-only view of ICU patients and their vital signs. Timestamps are "
                "ISO-8601 in UTC. Every error answers with the JSON body "
                "`{code, status, message, errors}`."
            ),
        },
    },
}
