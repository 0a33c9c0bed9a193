"""data_app's HTTP surface: health of the consumer."""

from flask import Blueprint, current_app

from shared.auth.policy import public
from shared.lifecycle import background_service

bp = Blueprint("health", __name__)


@bp.get("/health")
@public
def health():
    """Consumer state, counters and lag; 503 when the consumer is not running or its batches
    keep failing."""
    consumer = background_service(current_app, "consumer")
    status = dict(consumer.status)
    if not consumer.running or status["state"] != "running":
        reason = f"consumer {status['state']}"
    else:
        reason = consumer.degraded_reason()
    if reason is None:
        return {"status": "ok", "consumer": status}
    return {"status": "degraded", "reason": reason, "consumer": status}, 503
