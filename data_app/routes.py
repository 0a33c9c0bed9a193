"""data_app's HTTP surface: health of the consumer."""

from flask import Blueprint, current_app

from shared.auth.policy import public_identified
from shared.health import report_for_caller
from shared.lifecycle import background_service

bp = Blueprint("health", __name__)


@bp.get("/health")
@public_identified
def health():
    """Consumer state, counters and lag (to admins; the status to anyone); 503 when the
    consumer is not running."""
    consumer = background_service(current_app, "consumer")
    status = dict(consumer.status)
    healthy = consumer.running and status["state"] == "running"
    report = {"status": "ok" if healthy else "degraded", "consumer": status}
    return report_for_caller(report), 200 if healthy else 503
