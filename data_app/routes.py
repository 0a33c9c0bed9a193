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
    consumer is not running or its batches keep failing."""
    consumer = background_service(current_app, "consumer")
    status = dict(consumer.status)
    if not consumer.running or status["state"] != "running":
        reason = f"consumer {status['state']}"
    else:
        reason = consumer.degraded_reason()
    if reason is None:
        return report_for_caller({"status": "ok", "consumer": status}), 200
    report = {"status": "degraded", "reason": reason, "consumer": status}
    return report_for_caller(report), 503
