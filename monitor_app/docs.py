"""Swagger UI's scripts and styles, served by the app itself so /docs works offline."""

from __future__ import annotations

from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

from monitor_app.config import SWAGGER_UI_ASSETS_URL

bp = Blueprint(
    "swagger_ui",
    __name__,
    static_folder=str(swagger_ui_path),
    static_url_path=SWAGGER_UI_ASSETS_URL,
)
