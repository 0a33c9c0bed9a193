"""GET /health, for load balancers and operators."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from monitor_app.health import services
from monitor_app.health.schemas import HealthSchema
from shared.db import db

blp = Blueprint("health", __name__, description="Whether the API can serve.")


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database cannot be read.")
    def get(self) -> dict[str, str] | tuple[dict[str, str], int]:
        """Report whether the API can read the database."""
        problem = services.database_problem(db.session)
        if problem is None:
            return {"status": "ok", "database": "ok"}
        return {"status": "degraded", "database": problem}, 503
