"""GET a patient's samples, as JSON pages or exported as CSV."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from monitor_app.audit.recorder import add_audit_detail, audited
from monitor_app.json_body import json_response
from monitor_app.metrics import export, services
from monitor_app.metrics.schemas import (
    MetricExportArgsSchema,
    MetricQueryArgsSchema,
    MetricSchema,
    shown_samples,
)
from monitor_app.patients.routes import patient_id_or_404
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.roles import Scope
from shared.db import db

blp = Blueprint("metrics", __name__, description="Vital-sign samples of one patient.")


@blp.route("/patient/<uuid:patient_uuid>/metrics")
class PatientMetrics(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.SAMPLES_READ)
    # Schemas are passed built, here as on every route: given a class, webargs builds one
    # (deep-copying its fields) for every request.
    @blp.arguments(MetricQueryArgsSchema(), location="query")
    @blp.response(200, MetricSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict[str, Any], patient_uuid: uuid.UUID) -> Response:
        """List a patient's samples, newest first."""
        patient_id = patient_id_or_404(db.session, patient_uuid)
        rows = services.list_metrics(
            db.session,
            patient_id,
            since=args.get("since"),
            until=args.get("until"),
            limit=args["limit"],
        )
        # MetricSchema documents the page; it is written without a marshmallow dump.
        return json_response(shown_samples(rows))


CSV_DESCRIPTION = (
    "A header row, then one row per sample, oldest first: "
    + ", ".join(export.CSV_COLUMNS)
    + ". Timestamps in ISO-8601 UTC; an unscored sample's NEWS2 cells are empty."
)
CSV_HEADERS = {
    "Content-Disposition": {
        "description": "attachment, with a file name made of the patient's UUID and the "
        "window, never their name.",
        "schema": {"type": "string"},
    }
}


@blp.route("/patient/<uuid:patient_uuid>/metrics.csv")
class PatientMetricsCsv(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.SAMPLES_EXPORTED)
    @blp.arguments(MetricExportArgsSchema(), location="query")
    @blp.response(
        200,
        {"type": "string"},
        content_type="text/csv",
        description=CSV_DESCRIPTION,
        headers=CSV_HEADERS,
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, args: dict[str, Any], patient_uuid: uuid.UUID) -> Response:
        """Export a patient's samples in a window of at most 31 days as CSV, oldest first."""
        patient_id = patient_id_or_404(db.session, patient_uuid)
        since, until = args["since"], args["until"]
        # The URL names the patient; the record says which window, as the view read it.
        add_audit_detail(**{"from": since.isoformat(), "to": until.isoformat()})
        rows = export.stream_samples_csv(db.sessionmaker(), patient_id, since=since, until=until)
        filename = csv_filename(patient_uuid, since, until)
        return Response(
            rows,
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                # A file of patient data: no cache on the way keeps a copy.
                "Cache-Control": "no-store",
            },
        )


def csv_filename(patient_uuid: uuid.UUID, since: datetime, until: datetime) -> str:
    """The export's file name: letters, digits and hyphens before `.csv`, nothing to quote,
    and the patient's UUID rather than their name (a file name shows in download lists)."""
    return f"vigil-samples-{patient_uuid}-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.csv"
