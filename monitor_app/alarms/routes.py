"""Alarms: the ward's list, a patient's history, acknowledging and silencing one; and a
patient's alarm limits, read or changed with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters

from monitor_app.alarms import responses, services
from monitor_app.alarms.schemas import (
    AlarmLimitsChangeSchema,
    AlarmLimitsSchema,
    AlarmQueryArgsSchema,
    silence_schema,
)
from monitor_app.audit.recorder import add_audit_detail, add_audit_patient, audited
from monitor_app.config import ALARMS_MAX_PAGE_SIZE, ALARMS_PAGE_SIZE, SILENCE_LIMIT_SECONDS
from monitor_app.pagination import PaginatedBlueprint, past_last_page
from monitor_app.patients.routes import patient_id_or_404, patient_or_404
from shared.alarm_limits import Bound, Parameter
from shared.alarm_records import AlarmSchema, dump_view
from shared.audit import AuditAction
from shared.auth.policy import allow, signed_in
from shared.auth.principal import require_principal
from shared.auth.roles import Role, Scope
from shared.db import db, utcnow
from shared.errors import UNPROCESSABLE
from shared.notifications import events

blp = PaginatedBlueprint(
    "alarms",
    __name__,
    description="Per-patient alarm limits (adult ICU defaults, changed by clinicians) and "
    "each patient's alarm history.",
)
alarm_blp = PaginatedBlueprint(
    "alarm-responses",
    __name__,
    description="The ward's alarms, newest first: acknowledged by a clinician, or silenced "
    "for up to two minutes.",
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
        patient_id = patient_id_or_404(db.session, patient_uuid)
        return services.patient_limits(db.session, patient_id, patient_uuid)

    # Changing what alarms is a clinical decision: not a viewer's, nor an integration's.
    @allow(Role.ADMIN, Role.CLINICIAN)
    @audited(AuditAction.ALARM_LIMITS_CHANGED)
    @blp.arguments(AlarmLimitsChangeSchema())
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


@blp.route("/<uuid:patient_uuid>/alarms")
class PatientAlarms(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.PATIENT_ALARMS_READ)
    @blp.response(200, AlarmSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.paginate(page_size=ALARMS_PAGE_SIZE, max_page_size=ALARMS_MAX_PAGE_SIZE)
    def get(
        self, patient_uuid: uuid.UUID, pagination_parameters: PaginationParameters
    ) -> list[dict[str, Any]]:
        """The patient's alarms, newest first, resolved ones included: their event history."""
        patient_or_404(db.session, patient_uuid)
        return _page(responses.AlarmFilters(patient_uuid=patient_uuid), pagination_parameters)


# Not cached: an alarm list must be current on every worker the moment anything changes.
@alarm_blp.route("")
class Alarms(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.ALARMS_LISTED)
    @alarm_blp.arguments(AlarmQueryArgsSchema(), location="query")
    @alarm_blp.response(200, AlarmSchema(many=True))
    @alarm_blp.alt_response(422, response=UNPROCESSABLE)
    @alarm_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @alarm_blp.paginate(page_size=ALARMS_PAGE_SIZE, max_page_size=ALARMS_MAX_PAGE_SIZE)
    def get(
        self, query: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> list[dict[str, Any]]:
        """List alarms newest first, filtered by state, priority, kind or patient."""
        return _page(responses.AlarmFilters(**query), pagination_parameters)


@alarm_blp.route("/<uuid:alarm_id>/acknowledge")
class AcknowledgeAlarm(MethodView):
    # A person answers for an alarm: a clinician, or an admin covering; never a token's
    # integration nor a viewer.
    @allow(Role.ADMIN, Role.CLINICIAN)
    @audited(AuditAction.ALARM_ACKNOWLEDGED)
    @alarm_blp.response(200, AlarmSchema)
    @alarm_blp.alt_response(403, response="FORBIDDEN")
    @alarm_blp.alt_response(404, response="NOT_FOUND")
    @alarm_blp.alt_response(409, response="CONFLICT")
    @alarm_blp.alt_response(422, response=UNPROCESSABLE)
    @alarm_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, alarm_id: uuid.UUID) -> dict[str, Any]:
        """Acknowledge the alarm as the signed-in clinician: it stops escalating, and a
        latched alarm whose value has recovered ends."""
        user_id = require_principal().user_id
        return _respond(
            alarm_id, lambda: responses.acknowledge(db.session, alarm_id, user_id, utcnow())
        )


@alarm_blp.route("/<uuid:alarm_id>/silence")
class SilenceAlarm(MethodView):
    @allow(Role.ADMIN, Role.CLINICIAN)
    @audited(AuditAction.ALARM_SILENCED)
    @alarm_blp.arguments(silence_schema(SILENCE_LIMIT_SECONDS))
    @alarm_blp.response(200, AlarmSchema)
    @alarm_blp.alt_response(400, response="BAD_REQUEST")
    @alarm_blp.alt_response(404, response="NOT_FOUND")
    @alarm_blp.alt_response(409, response="CONFLICT")
    @alarm_blp.alt_response(422, response=UNPROCESSABLE)
    @alarm_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data: dict[str, Any], alarm_id: uuid.UUID) -> dict[str, Any]:
        """Silence the alarm's sound for `seconds`; it still shows, and a high one still
        escalates until acknowledged."""
        seconds, most = data["seconds"], current_app.config["ALARM_SILENCE_MAX_SECONDS"]
        if seconds > most:
            abort(
                422,
                message=f"An alarm is silenced for at most {most} s.",
                errors={"json": {"seconds": [f"Must be at most {most}."]}},
            )
        return _respond(
            alarm_id, lambda: responses.silence(db.session, alarm_id, seconds, utcnow())
        )


def _respond(alarm_id: uuid.UUID, act: Callable[[], responses.Response]) -> dict[str, Any]:
    """Run a response to an alarm, commit it, then tell the live stream and the audit trail."""
    try:
        result = act()
    except responses.AlarmNotFoundError:
        abort(404, message=f"No alarm with id {alarm_id}.")
    except responses.AlarmEndedError:
        abort(409, message="The alarm has ended: there is nothing left to respond to.")
    except responses.UnknownAccountError:
        abort(403, message="Only a person with an account here may acknowledge alarms.")
    db.session.commit()
    record = result.record
    add_audit_patient(record["patient_uuid"])
    add_audit_detail(alarm=str(alarm_id), condition=record["condition"], state=record["state"])
    view = dump_view(record)
    for kind in result.events:
        events(current_app).publish(f"alarm.{kind}", {"alarm": view})
    return record


def _page(filters: responses.AlarmFilters, pagination: PaginationParameters) -> list:
    pagination.item_count = responses.count_alarms(db.session, filters)
    if past_last_page(pagination):
        return []
    return responses.list_alarms(
        db.session, filters, offset=pagination.first_item, limit=pagination.page_size
    )
