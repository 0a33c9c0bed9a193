"""The CapabilityStatement: what this server does, exactly as its routes do it."""

from __future__ import annotations

from monitor_app.fhir.params import MAX_COUNT
from monitor_app.fhir.resources import Resource

FHIR_VERSION = "4.0.1"
# When this statement last changed, as FHIR asks; not the time of the request.
PUBLISHED = "2026-12-02"

_SEARCH_DOCS = (
    f"_count (default 50, at most {MAX_COUNT}), _sort=date|-date (default -date). Unknown "
    "parameters are refused with 400 unless the request says 'Prefer: handling=lenient'."
)


def _param(name: str, kind: str, documentation: str) -> Resource:
    return {"name": name, "type": kind, "documentation": documentation}


def capability_statement(base: str) -> Resource:
    """The statement for the server whose base URL is `base`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PUBLISHED,
        "publisher": "Vigil",
        "kind": "instance",
        "software": {"name": "Vigil"},
        "implementation": {"description": "Vigil ICU monitoring: FHIR R4 read API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "A bearer token (Authorization: Bearer …) of a person, or "
                    "of an integration holding patients:read; or a dashboard session. "
                    "This statement alone is public."
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            _param("_id", "token", "The patient's uuid; comma for any of them."),
                            _param(
                                "identifier",
                                "token",
                                "The hospital's identifier (MRN): system|value, |value or value.",
                            ),
                        ],
                    },
                    {
                        "type": "Observation",
                        "profile": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            _param(
                                "patient",
                                "reference",
                                "Required: Patient/<uuid> or <uuid> (subject is the same).",
                            ),
                            _param(
                                "code",
                                "token",
                                "LOINC (http://loinc.org|8867-4 or 8867-4); comma for any.",
                            ),
                            _param(
                                "date",
                                "date",
                                "Prefixes eq, ge, gt, le, lt; repeat for a range. " + _SEARCH_DOCS,
                            ),
                        ],
                    },
                ],
            }
        ],
    }
