"""patient_app's request and response schemas."""

from marshmallow import Schema, fields, validate

from .scenarios import SCENARIOS


class SampleSchema(Schema):
    timestamp = fields.String()
    pulse = fields.Integer()
    resp_rate = fields.Integer()
    bp = fields.String(metadata={"example": "120/80"})
    spo2 = fields.Integer()
    temperature = fields.Float()


class SimulatedPatientSchema(Schema):
    uuid = fields.UUID()
    name = fields.String()
    scenario = fields.Function(lambda patient: patient.scenario)
    latest = fields.Nested(SampleSchema, allow_none=True)
    # Over HL7 only: the MRN it is sent under, as a FHIR Identifier (Patient?identifier=).
    identifier = fields.Function(
        lambda patient: (
            patient.identifier
            and {"system": patient.identifier.system, "value": patient.identifier.value}
        )
    )


class ScenarioSchema(Schema):
    scenario = fields.String(required=True, validate=validate.OneOf(SCENARIOS))


class HealthSchema(Schema):
    status = fields.String()
    monitoring = fields.Boolean()
    patients = fields.Integer()
    kafka = fields.Dict()
    hl7 = fields.Dict()
