"""GET FHIR R4 resources: the CapabilityStatement, Patients and their vital-sign Observations.

Plain Flask views (FHIR describes itself in its CapabilityStatement, not OpenAPI) over the
same services, access and audit as the JSON API. Every answer is `application/fhir+json`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for
from flask.views import MethodView
from sqlalchemy.orm import Session
from werkzeug.exceptions import MethodNotAllowed, NotAcceptable, NotFound, RequestURITooLarge

from monitor_app.audit.recorder import add_audit_detail, add_audit_patient, audited
from monitor_app.fhir import services
from monitor_app.fhir.capability import capability_statement
from monitor_app.fhir.cursor import write_cursor, write_patients_cursor
from monitor_app.fhir.outcomes import FHIR_JSON, fhir_response, register_outcomes
from monitor_app.fhir.paging import observation_page
from monitor_app.fhir.params import check_known, observation_search, patient_search, uuid_or_none
from monitor_app.fhir.resources import kinds_of, observation, patient_resource, searchset
from monitor_app.fhir.vitals import Kind
from monitor_app.patients.services import find_patient
from shared.audit import AuditAction
from shared.auth.policy import public, signed_in
from shared.auth.roles import Scope
from shared.db import db
from shared.models import Patient

bp = Blueprint("fhir", __name__)
register_outcomes(bp)

FORMATS = frozenset({"json", FHIR_JSON, "application/json", "application/json+fhir"})
# Far beyond any search this server takes (its values are bounded); gunicorn's own request
# line limit is about as long.
MAX_QUERY_STRING = 4096
OBSERVATION_ID = re.compile(r"([0-9]{1,18})-(" + "|".join(kind.value for kind in Kind) + ")")


@bp.url_value_preprocessor
def name_the_patient(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Name the patient a Patient read or an Observation search asks about in its audit
    record, even when the access check refuses it (this runs before the check)."""
    if endpoint == "fhir.PatientById" and values:
        asked = [values["patient_id"]]
    elif endpoint == "fhir.Observations":
        asked = [
            reference.removeprefix("Patient/")
            for reference in request.args.getlist("patient") + request.args.getlist("subject")
        ]
    else:
        return
    patient_uuid = uuid_or_none(asked[0]) if len(asked) == 1 else None
    if patient_uuid is not None:
        add_audit_patient(patient_uuid)


@bp.before_request
def check_request() -> None:
    """Refuse what no /fhir view can answer: another format, an absurdly long query."""
    if len(request.query_string) > MAX_QUERY_STRING:
        raise RequestURITooLarge(f"The query string is longer than {MAX_QUERY_STRING} bytes.")
    wanted = request.args.get("_format")
    if wanted is not None and wanted not in FORMATS:
        raise NotAcceptable(f"_format {wanted[:40]!r} is not served: JSON only.")
    accept = request.accept_mimetypes
    if wanted is None and accept and accept.best_match([FHIR_JSON, "application/json"]) is None:
        raise NotAcceptable("This server answers application/fhir+json only.")


def base_url() -> str:
    """This server's FHIR base, as the client reached it."""
    return url_for("fhir.Metadata", _external=True).removesuffix("/metadata")


def next_page(resource_type: str, cursor: str) -> str:
    """This search's URL with the next page's cursor (the search's own parameters kept)."""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "_cursor"]
    return f"{base_url()}/{resource_type}?{urlencode([*kept, ('_cursor', cursor)])}"


def visible_patient(session: Session, patient_uuid: uuid.UUID) -> Patient | None:
    """The patient, if the caller may see them (as the JSON API finds them), named in the
    request's audit record; None otherwise."""
    patient = find_patient(session, patient_uuid)
    if patient is not None:
        add_audit_patient(patient.uuid)
    return patient


def patient_or_404(session: Session, patient_uuid: uuid.UUID) -> Patient:
    """The patient a read is about; 404 if there is none, or the caller may not see them."""
    patient = visible_patient(session, patient_uuid)
    if patient is None:
        raise NotFound(f"No Patient/{patient_uuid}.")
    return patient


class Metadata(MethodView):
    @public
    def get(self) -> Response:
        """The CapabilityStatement: public, as FHIR servers' usually is (no patient data)."""
        check_known(request.args, (), request.headers)
        return fhir_response(capability_statement(base_url()))


class PatientById(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.FHIR_PATIENT_READ)
    def get(self, patient_id: str) -> Response:
        """Read a Patient by its uuid."""
        check_known(request.args, (), request.headers)
        patient_uuid = uuid_or_none(patient_id)
        if patient_uuid is None:
            raise NotFound(f"No Patient/{patient_id[:64]}.")
        return fhir_response(patient_resource(patient_or_404(db.session, patient_uuid)))


class Patients(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.FHIR_PATIENTS_SEARCHED)
    def get(self) -> Response:
        """Search Patients by identifier (the MRN) or _id."""
        search = patient_search(request.args, request.headers)
        found, total = services.patients_matching(
            db.session,
            uuids=search.uuids,
            identifier=search.identifier,
            limit=search.count,
            offset=search.offset,
        )
        add_audit_detail(patients=[str(patient.uuid) for patient in found])
        if len(found) == 1:
            add_audit_patient(found[0].uuid)
        served = search.offset + len(found)
        next_url = (
            next_page("Patient", write_patients_cursor(served))
            if found and served < total
            else None
        )
        resources = [patient_resource(patient) for patient in found]
        return fhir_response(searchset(base_url(), request.url, next_url, total, resources))


class Observations(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.FHIR_OBSERVATIONS_SEARCHED)
    def get(self) -> Response:
        """Search one patient's vital-sign and NEWS2 Observations, newest first by default."""
        search = observation_search(request.args, request.headers)
        patient = visible_patient(db.session, search.patient)
        if patient is None:
            # A search finds nothing, rather than failing, for a patient it cannot see.
            return fhir_response(searchset(base_url(), request.url, None, 0, []))
        page = observation_page(db.session, patient.id, search)
        next_url = None
        if page.next_cursor is not None:
            next_url = next_page("Observation", write_cursor(page.next_cursor))
        add_audit_detail(observations=len(page.resources))
        return fhir_response(
            searchset(base_url(), request.url, next_url, page.total, page.resources)
        )


class ObservationById(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @audited(AuditAction.FHIR_OBSERVATION_READ)
    def get(self, observation_id: str) -> Response:
        """Read an Observation by its id, `<sample id>-<kind>`."""
        check_known(request.args, (), request.headers)
        unknown = NotFound(f"No Observation/{observation_id[:64]}.")
        parsed = OBSERVATION_ID.fullmatch(observation_id)
        if parsed is None:
            raise unknown
        sample = services.sample_by_id(db.session, int(parsed[1]))
        kind = Kind(parsed[2])
        if sample is None:
            raise unknown
        # The patient's, as a read of the patient would find them.
        patient_or_404(db.session, sample.patient_uuid)
        if kind not in kinds_of(sample, frozenset({kind})):
            raise unknown  # a sample stored before NEWS2 was scored has none
        return fhir_response(observation(sample, kind))


class Unknown(MethodView):
    """Any other /fhir path or method: an OperationOutcome, not the JSON API's error body."""

    @public
    def get(self, path: str) -> Response:
        """No such FHIR resource type or interaction here."""
        raise NotFound(f"This server has no /fhir/{path[:64]}; see /fhir/metadata.")

    @public
    def post(self, path: str) -> Response:
        """This server only reads."""
        raise MethodNotAllowed(["GET"], "This FHIR server is read-only.")

    put = patch = delete = post


bp.add_url_rule("/metadata", view_func=Metadata.as_view("Metadata"))
bp.add_url_rule("/Patient", view_func=Patients.as_view("Patients"))
bp.add_url_rule("/Patient/<string:patient_id>", view_func=PatientById.as_view("PatientById"))
bp.add_url_rule("/Observation", view_func=Observations.as_view("Observations"))
bp.add_url_rule(
    "/Observation/<string:observation_id>", view_func=ObservationById.as_view("ObservationById")
)
bp.add_url_rule(
    "/<path:path>",
    view_func=Unknown.as_view("Unknown"),
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
)
