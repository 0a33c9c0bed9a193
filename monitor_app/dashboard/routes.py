"""`/`: the dashboard page, with what its scripts need to know about this deployment."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for

from shared.auth.policy import signed_in
from shared.auth.principal import require_principal
from shared.auth.roles import Role
from shared.news2 import BANDS, normal_ranges

bp = Blueprint(
    "dashboard",
    __name__,
    static_folder="static",
    static_url_path="/static/dashboard",
    template_folder="templates",
)


@bp.get("/")
@signed_in(page=True)
def index() -> str:
    """The dashboard; the browser loads everything else from the API and the live stream."""
    config = current_app.config
    prefix = config["API_PREFIX"]
    principal = require_principal()
    settings = {
        # Read state is per person: live events say who has read a notification.
        "userId": str(principal.user_id),
        # Only people who may answer alarms see the buttons (the API checks anyway).
        "mayAnswerAlarms": principal.role in (Role.ADMIN, Role.CLINICIAN),
        "api": prefix,
        "websocket": f"{prefix}/ws",
        "login": url_for("login.page"),
        "staleAfterSeconds": config["METRICS_INTERVAL"] * config["STALE_AFTER_INTERVALS"],
        "bands": list(BANDS),
        "normalRanges": normal_ranges(),
    }
    return render_template("dashboard.html", settings=settings, principal=principal)
