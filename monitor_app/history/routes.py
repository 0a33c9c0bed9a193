"""GET a patient's downsampled history."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from monitor_app.audit.recorder import audited
from monitor_app.history import services
from monitor_app.history.schemas import HistoryQueryArgsSchema, HistorySchema, shown_history
from monitor_app.json_body import json_response
from monitor_app.patients.routes import patient_id_or_404
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.roles import Scope
from shared.db import db

blp = Blueprint(
    "history",
    __name__,
    description="A patient's vital signs over a recent window, for trend charts.",
)


@blp.route("/patient/<uuid:patient_uuid>/history")
class PatientHistory(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.HISTORY_READ)
    @blp.arguments(HistoryQueryArgsSchema(), location="query")
    @blp.response(200, HistorySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict[str, Any], patient_uuid: uuid.UUID) -> Response:
        """Summarise a patient's vital signs per time bucket over a window, oldest first."""
        patient_id = patient_id_or_404(db.session, patient_uuid)
        history = services.patient_history(
            db.session, patient_id, patient_uuid, args["window"], args["until"]
        )
        # HistorySchema documents the body; it is written without a marshmallow dump.
        return json_response(shown_history(history))
