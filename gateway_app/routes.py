"""gateway_app's HTTP surface: health of the MLLP listener."""

from flask import Blueprint, current_app

from shared.auth.policy import public_identified
from shared.health import report_for_caller
from shared.lifecycle import background_service

bp = Blueprint("health", __name__)


@bp.get("/health")
@public_identified
def health():
    """Whether the gateway listens (its counters to admins; the status to anyone)."""
    server = background_service(current_app, "mllp")
    report = {"status": "ok" if server.running else "down", "mllp": dict(server.stats)}
    return report_for_caller(report), 200 if server.running else 503
