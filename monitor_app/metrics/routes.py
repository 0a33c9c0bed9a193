"""GET a patient's samples."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from monitor_app.audit.recorder import audited
from monitor_app.metrics import services
from monitor_app.metrics.schemas import MetricQueryArgsSchema, MetricSchema, dump_samples
from monitor_app.patients.routes import patient_or_404
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.roles import Scope
from shared.db import db

blp = Blueprint("metrics", __name__, description="Vital-sign samples of one patient.")


@blp.route("/patient/<uuid:patient_uuid>/metrics")
class PatientMetrics(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.SAMPLES_READ)
    @blp.arguments(MetricQueryArgsSchema, location="query")
    @blp.response(200, MetricSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict[str, Any], patient_uuid: uuid.UUID) -> Response:
        """List a patient's samples, newest first."""
        patient = patient_or_404(db.session, patient_uuid)
        rows = services.list_metrics(
            db.session,
            patient.id,
            since=args.get("since"),
            until=args.get("until"),
            limit=args["limit"],
        )
        # A Response passes through @blp.response unserialised; MetricSchema documents it.
        return current_app.json.response(dump_samples(rows))
