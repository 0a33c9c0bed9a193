"""data_app's HTTP surface: health of the consumer."""

from flask import Blueprint, current_app

from shared.auth.policy import public
from shared.lifecycle import background_service

bp = Blueprint("health", __name__)


@bp.get("/health")
@public
def health():
    """Consumer state, counters and lag; 503 when the consumer is not running."""
    consumer = background_service(current_app, "consumer")
    status = dict(consumer.status)
    healthy = consumer.running and status["state"] == "running"
    return {"status": "ok" if healthy else "degraded", "consumer": status}, 200 if healthy else 503
