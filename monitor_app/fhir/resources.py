"""Vigil's patients and samples as FHIR R4 resources (JSON-ready dicts, built directly:
a page of 500 Observations is built in a few milliseconds)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from monitor_app.fhir.services import StoredSample
from monitor_app.fhir.vitals import (
    CATEGORY_SYSTEM,
    DEFINITIONS,
    DIASTOLIC,
    KIND_ORDER,
    PROFILE_BASE,
    SYSTOLIC,
    UCUM,
    Code,
    Kind,
    Unit,
)
from shared.models import Patient

Resource = dict[str, Any]
UUID_URI = "urn:ietf:rfc:3986"


def patient_resource(patient: Patient) -> Resource:
    """A Patient: its id is Vigil's uuid; its identifiers the hospital's MRN and the uuid."""
    identifiers = []
    if patient.identifier_value:
        mrn: Resource = {"use": "usual", "value": patient.identifier_value}
        if patient.identifier_system:
            mrn["system"] = patient.identifier_system
        identifiers.append(mrn)
    identifiers.append(
        {"use": "secondary", "system": UUID_URI, "value": f"urn:uuid:{patient.uuid}"}
    )
    return {
        "resourceType": "Patient",
        "id": str(patient.uuid),
        "identifier": identifiers,
        "name": [{"text": patient.name}],
    }


def observation_id(sample_id: int, kind: Kind) -> str:
    """Stable, and decoded without a lookup: `<sample row id>-<kind>`."""
    return f"{sample_id}-{kind.value}"


def kinds_of(sample: StoredSample, wanted: frozenset[Kind]) -> Iterator[Kind]:
    """The wanted Observations a sample has, in their listing order (an unscored sample has
    no NEWS2)."""
    for kind in KIND_ORDER:
        if kind in wanted and (kind is not Kind.NEWS2 or sample.news2_score is not None):
            yield kind


def observation(sample: StoredSample, kind: Kind) -> Resource:
    """One Observation of a sample."""
    definition = DEFINITIONS[kind]
    resource: Resource = {
        "resourceType": "Observation",
        "id": observation_id(sample.id, kind),
    }
    if definition.profile is not None:
        resource["meta"] = {"profile": [PROFILE_BASE + definition.profile]}
    resource |= {
        "status": "final",
        "category": [_category(definition.category)],
        "code": _concept(definition.codes, definition.text),
        "subject": {"reference": f"Patient/{sample.patient_uuid}"},
        "effectiveDateTime": sample.timestamp.isoformat(),
    }
    if kind is Kind.BLOOD_PRESSURE:
        resource["component"] = [
            {
                "code": _concept((SYSTOLIC,), SYSTOLIC.display),
                "valueQuantity": _mm_hg(sample.systolic),
            },
            {
                "code": _concept((DIASTOLIC,), DIASTOLIC.display),
                "valueQuantity": _mm_hg(sample.diastolic),
            },
        ]
    else:
        resource["valueQuantity"] = _quantity(_value(sample, kind), definition.unit)
        if kind is Kind.NEWS2 and sample.news2_band is not None:
            resource["interpretation"] = [{"text": f"NEWS2 clinical risk: {sample.news2_band}"}]
    return resource


def observations(samples: Iterable[StoredSample], wanted: frozenset[Kind]) -> Iterator[Resource]:
    for sample in samples:
        for kind in kinds_of(sample, wanted):
            yield observation(sample, kind)


def _value(sample: StoredSample, kind: Kind) -> float | int:
    if kind is Kind.HEART_RATE:
        return sample.pulse
    if kind is Kind.RESP_RATE:
        return sample.resp_rate
    if kind is Kind.SPO2:
        return sample.spo2
    if kind is Kind.TEMPERATURE:
        return float(sample.temperature)
    if kind is Kind.NEWS2 and sample.news2_score is not None:
        return sample.news2_score
    raise ValueError(f"{kind} has no single value")


def _category(code: str) -> Resource:
    display = "Vital Signs" if code == "vital-signs" else code.capitalize()
    return {"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": display}]}


def _concept(codes: Iterable[Code], text: str) -> Resource:
    return {
        "coding": [{"system": c.system, "code": c.code, "display": c.display} for c in codes],
        "text": text,
    }


def _quantity(value: float | int, unit: Unit) -> Resource:
    return {"value": value, "unit": unit.text, "system": UCUM, "code": unit.code}


def _mm_hg(value: int) -> Resource:
    return _quantity(value, DEFINITIONS[Kind.BLOOD_PRESSURE].unit)


def searchset(
    base: str, self_url: str, next_url: str | None, total: int, resources: Iterable[Resource]
) -> Resource:
    """A searchset Bundle of matches, with its paging links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset", "total": total}
    bundle["link"] = links
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    # FHIR JSON has no empty arrays: a page without matches has no `entry` at all.
    if entries:
        bundle["entry"] = entries
    return bundle
