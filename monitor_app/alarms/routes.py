"""A patient's alarm limits: read them, or change some of them with a reason."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from monitor_app.alarms import services
from monitor_app.alarms.schemas import AlarmLimitsChangeSchema, AlarmLimitsSchema
from monitor_app.audit.recorder import add_audit_detail, audited
from monitor_app.patients.routes import patient_or_404
from shared.alarm_limits import Bound, Parameter
from shared.audit import AuditAction
from shared.auth.policy import allow, signed_in
from shared.auth.principal import require_principal
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.errors import UNPROCESSABLE

blp = Blueprint(
    "alarms",
    __name__,
    description="Per-patient alarm limits: adult ICU defaults, changed by clinicians.",
)


# Not cached: one primary-key read, and a change must show at once on every worker.
@blp.route("/<uuid:patient_uuid>/alarm-limits")
class PatientAlarmLimits(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.ALARM_LIMITS_READ)
    @blp.response(200, AlarmLimitsSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, patient_uuid: uuid.UUID) -> services.EffectiveLimits:
        """Show the patient's effective alarm limits, defaults included."""
        patient = patient_or_404(db.session, patient_uuid)
        return services.patient_limits(db.session, patient)

    # Changing what alarms is a clinical decision: not a viewer's, nor an integration's.
    @allow(Role.ADMIN, Role.CLINICIAN)
    @audited(AuditAction.ALARM_LIMITS_CHANGED)
    @blp.arguments(AlarmLimitsChangeSchema)
    @blp.response(200, AlarmLimitsSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def put(self, data: dict[str, Any], patient_uuid: uuid.UUID) -> services.EffectiveLimits:
        """Change the limits the body names, with a reason; the others keep their values."""
        patient = patient_or_404(db.session, patient_uuid)
        reason = data.pop("reason")
        changes = {
            Parameter(name): {Bound(bound): value for bound, value in bounds.items()}
            for name, bounds in data.items()
            if bounds
        }
        try:
            limits = services.change_limits(
                db.session, patient, changes, reason, require_principal().user_id
            )
        except services.InconsistentLimitsError as error:
            abort(422, message="The limits contradict each other.", errors={"json": error.errors})
        db.session.commit()
        add_audit_detail(reason=reason, changes=data)
        return limits
