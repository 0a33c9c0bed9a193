"""gateway_app's HTTP surface: health of the MLLP listener."""

from flask import Blueprint, current_app

from shared.auth.policy import public_identified
from shared.health import report_for_caller
from shared.lifecycle import background_service

bp = Blueprint("health", __name__)


@bp.get("/health")
@public_identified
def health():
    """Whether the gateway listens and Kafka takes its messages (the details to admins; the
    status to anyone): without Kafka every sender is answered AE."""
    server = background_service(current_app, "mllp")
    kafka = server.publisher.health()
    healthy = server.running and kafka["kafka"] == "ok" and not kafka["stalled"]
    status = "ok" if healthy else "degraded" if server.running else "down"
    report = {"status": status, "mllp": dict(server.stats), "kafka": kafka}
    return report_for_caller(report), 200 if healthy else 503
