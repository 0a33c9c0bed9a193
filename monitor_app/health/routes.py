"""GET /health, for load balancers and operators."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from monitor_app.health import services
from monitor_app.health.schemas import HealthSchema
from monitor_app.live.hub import event_hub
from shared.auth.policy import public_identified
from shared.db import db
from shared.health import report_for_caller
from shared.notifications import events

blp = Blueprint("health", __name__, description="Whether the API can serve.")


@blp.route("/health")
class Health(MethodView):
    @public_identified
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database cannot be read.")
    def get(self) -> dict[str, Any] | tuple[dict[str, Any], int]:
        """Report whether the API can read the database and reach Redis.

        Without Redis the API still serves reads (uncached, unlimited, without live
        updates): `degraded` but 200. Without the database it cannot: 503. Only admins are
        told the components' states; anyone else, the status.
        """
        database = services.database_problem(db.session) or "ok"
        redis = services.redis_problem(events(current_app).redis) or "ok"
        hub = event_hub()
        report = {
            "status": "ok" if database == redis == "ok" else "degraded",
            "database": database,
            "redis": redis,
            "live": {"connected": hub.connected, "clients": hub.client_count},
        }
        return report_for_caller(report), 200 if database == "ok" else 503
