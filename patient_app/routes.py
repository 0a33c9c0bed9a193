"""HTTP: the simulated patients, their latest samples and scenarios; health."""

from __future__ import annotations

import uuid

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.auth.policy import allow, public_identified, signed_in
from shared.auth.roles import Role, Scope
from shared.errors import UNPROCESSABLE
from shared.health import report_for_caller
from shared.lifecycle import background_service

from .monitoring import MetricsService
from .schemas import HealthSchema, ScenarioSchema, SimulatedPatientSchema

blp = Blueprint("patients", __name__, description="Simulated patients")
health_blp = Blueprint("health", __name__, description="Service health")


def metrics_service() -> MetricsService:
    return background_service(current_app, "monitoring")


@blp.route("/patient")
class ThisPatient(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @blp.response(200, SimulatedPatientSchema)
    def get(self):
        """This process's (first) patient: identity and latest sample."""
        return metrics_service().patient()


@blp.route("/patients")
class SimulatedPatients(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @blp.response(200, SimulatedPatientSchema(many=True))
    def get(self):
        """Every patient this process simulates."""
        return list(metrics_service().patients.values())


@blp.route("/patients/<uuid:patient_uuid>")
class SimulatedPatientById(MethodView):
    @signed_in(scope=Scope.PATIENTS_READ)
    @blp.response(200, SimulatedPatientSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE, description="A malformed uuid.")
    def get(self, patient_uuid: uuid.UUID):
        """One simulated patient."""
        return metrics_service().patient(patient_uuid)


@blp.route("/patients/<uuid:patient_uuid>/scenario")
class PatientScenario(MethodView):
    @allow(Role.ADMIN, scope=Scope.SCENARIO_WRITE)
    @blp.arguments(ScenarioSchema)
    @blp.response(200, SimulatedPatientSchema)
    @blp.alt_response(400, response="BAD_REQUEST", description="A body that is not JSON.")
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, body: dict, patient_uuid: uuid.UUID):
        """Switch a patient's scenario (normal, sepsis, hypoxia, deteriorating, …)."""
        return metrics_service().set_scenario(patient_uuid, body["scenario"])


@health_blp.route("/health")
class Health(MethodView):
    @public_identified
    @health_blp.response(200, HealthSchema)
    @health_blp.alt_response(
        503, schema=HealthSchema, description="Kafka (or the HL7 gateway) unreachable"
    )
    def get(self):
        """Whether the scheduler runs and Kafka (or the HL7 gateway) is reachable (the details
        to admins only)."""
        service = metrics_service()
        transport = service.sender.transport
        report = service.sender.health()
        healthy = service.running and report[transport] == "ok" and not report["stalled"]
        body = {
            "status": "ok" if healthy else "degraded",
            "monitoring": service.running,
            "patients": len(service.patients),
            transport: report,
        }
        return report_for_caller(body), 200 if healthy else 503
