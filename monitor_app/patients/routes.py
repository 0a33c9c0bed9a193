"""GET patients, one page or one patient at a time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NoReturn

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters
from sqlalchemy.orm import Session

from monitor_app.audit.recorder import audited
from monitor_app.config import PATIENTS_MAX_PAGE_SIZE, PATIENTS_PAGE_SIZE
from monitor_app.pagination import PaginatedBlueprint, past_last_page
from monitor_app.patients import services
from monitor_app.patients.listing import patient_page
from monitor_app.patients.schemas import PatientDetailSchema, PatientSchema
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.roles import Scope
from shared.db import db
from shared.errors import UNPROCESSABLE
from shared.models import Patient

blp = PaginatedBlueprint(
    "patients", __name__, description="Monitored patients and their newest sample."
)


@blp.route("")
class Patients(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.PATIENTS_LISTED)
    @blp.response(200, PatientSchema(many=True))
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.paginate(page_size=PATIENTS_PAGE_SIZE, max_page_size=PATIENTS_MAX_PAGE_SIZE)
    def get(
        self, pagination_parameters: PaginationParameters
    ) -> tuple[list[services.PatientOverview], dict[str, str]]:
        """List patients by name, each with their newest sample.

        `X-Cache: hit` when the page of patients came from the cache (their newest samples
        are always read afresh).
        """
        page, hit = patient_page(
            db.session,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.item_count
        headers = {"X-Cache": "hit" if hit else "miss"}
        if past_last_page(pagination_parameters):
            return [], headers
        overviews = services.list_patients(
            db.session, page.patients, max_clock_skew=max_clock_skew()
        )
        return overviews, headers


@blp.route("/<uuid:patient_uuid>")
class PatientById(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.PATIENT_READ)
    @blp.response(200, PatientDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self, patient_uuid: uuid.UUID) -> services.PatientOverview:
        """Show a patient with their newest sample and sample count."""
        detail = services.patient_detail(db.session, patient_uuid, max_clock_skew=max_clock_skew())
        if detail is None:
            abort_unknown_patient(patient_uuid)
        return detail


def max_clock_skew() -> timedelta:
    """How far ahead of this server's clock a sample may be and still be shown as newest."""
    return timedelta(seconds=current_app.config["MAX_CLOCK_SKEW_SECONDS"])


def abort_unknown_patient(patient_uuid: uuid.UUID) -> NoReturn:
    """404 with the one message every patient endpoint gives."""
    abort(404, message=f"No patient with UUID {patient_uuid}.")


def patient_or_404(session: Session, patient_uuid: uuid.UUID) -> Patient:
    """The patient a `/patient/<uuid>/…` route is about; 404 if there is none."""
    patient = services.find_patient(session, patient_uuid)
    if patient is None:
        abort_unknown_patient(patient_uuid)
    return patient


def patient_id_or_404(session: Session, patient_uuid: uuid.UUID) -> int:
    """The id of the patient a `/patient/<uuid>/…` route is about; 404 if there is none."""
    patient_id = services.find_patient_id(session, patient_uuid)
    if patient_id is None:
        abort_unknown_patient(patient_uuid)
    return patient_id
