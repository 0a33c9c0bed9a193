"""patient_app's errors: HTTP exceptions, answered with the shared JSON error body."""

from werkzeug.exceptions import HTTPException


class PatientServiceException(HTTPException):
    """Base of patient_app's errors."""

    code = 500
    description = "The patient simulator failed."


class PatientNotFoundError(PatientServiceException):
    code = 404
    description = "No simulated patient has this uuid."


class UnknownScenarioError(PatientServiceException):
    code = 422
    description = "Unknown scenario."


class KafkaError(PatientServiceException):
    """The broker is unreachable or refused a sample."""

    code = 503
    description = "Kafka is unavailable."
