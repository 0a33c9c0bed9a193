"""The FHIR R4 API at /fhir: its CapabilityStatement, Patients, and vital-sign Observations
that follow the R4 vital-signs profiles; searches, pages, access and the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from shared.audit import AuditAction
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.models import Patient, PatientMetric
from tests.auth import Account, client_for
from tests.fhir import LOINC, VITAL_SIGNS, api_token, codes, entries, fhir_json, link, outcome
from tests.helpers import on_sqlite_only, view_statements
from tests.monitor_app.conftest import MadePatient
from tests.monitor_app.test_audit import events, only_event

HEART_RATE = f"{LOINC}|8867-4"
MRN_SYSTEM = "https://hospital.example/mrn"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"


def search(client: FlaskClient, patient: str, **params: object) -> dict:
    response = client.get("/fhir/Observation", query_string={"patient": patient, **params})
    return fhir_json(response)


def fhir_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def give_mrn(app: Flask, patient: MadePatient, value: str, system: str | None = MRN_SYSTEM):
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(Patient)
            .where(Patient.uuid == uuid.UUID(patient.uuid))
            .values(identifier_system=system, identifier_value=value)
        )


def unscore(app: Flask, moment: datetime) -> None:
    """Make the sample taken at `moment` one stored before NEWS2 was scored."""
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(PatientMetric)
            .where(PatientMetric.timestamp == moment)
            .values(news2_score=None, news2_band=None)
        )


# -- the CapabilityStatement ----------------------------------------------------------------


@on_sqlite_only
def test_metadata_is_public_and_lists_what_is_supported(anonymous: FlaskClient) -> None:
    statement = fhir_json(anonymous.get("/fhir/metadata"))

    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert "application/fhir+json" in statement["format"]
    (rest,) = statement["rest"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"Patient", "Observation"}
    params = {t: {p["name"] for p in r["searchParam"]} for t, r in resources.items()}
    assert params == {"Patient": {"_id", "identifier"}, "Observation": {"patient", "code", "date"}}
    assert statement["implementation"]["url"] == "http://localhost/fhir"


# -- Observations ---------------------------------------------------------------------------


def test_the_heart_rate_of_a_sample_is_a_heart_rate_observation(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)

    bundle = search(client, ada.uuid, code=HEART_RATE)

    assert bundle["total"] == 1
    (heart_rate,) = entries(bundle)
    assert heart_rate["meta"]["profile"] == [PROFILE + "heartrate"]
    assert heart_rate["status"] == "final"
    assert heart_rate["category"][0]["coding"][0]["system"] == VITAL_SIGNS
    assert heart_rate["category"][0]["coding"][0]["code"] == "vital-signs"
    assert codes(heart_rate) == {(LOINC, "8867-4")}
    assert heart_rate["subject"] == {"reference": f"Patient/{ada.uuid}"}
    assert heart_rate["effectiveDateTime"] == ada.sample_times[0].isoformat()
    assert heart_rate["valueQuantity"] == {
        "value": 60,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }


def test_a_sample_is_six_observations_each_in_its_profile(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)

    found = {o["id"].split("-", 1)[1]: o for o in entries(search(client, ada.uuid))}

    assert list(found) == ["hr", "rr", "spo2", "temp", "bp", "news2"]
    assert found["rr"]["meta"]["profile"] == [PROFILE + "resprate"]
    assert codes(found["rr"]) == {(LOINC, "9279-1")}
    assert found["rr"]["valueQuantity"]["value"] == 14
    assert found["rr"]["valueQuantity"]["code"] == "/min"
    assert found["spo2"]["meta"]["profile"] == [PROFILE + "oxygensat"]
    assert codes(found["spo2"]) == {(LOINC, "2708-6"), (LOINC, "59408-5")}
    assert found["spo2"]["valueQuantity"]["value"] == 97
    assert found["spo2"]["valueQuantity"]["code"] == "%"
    assert found["temp"]["meta"]["profile"] == [PROFILE + "bodytemp"]
    assert codes(found["temp"]) == {(LOINC, "8310-5")}
    assert found["temp"]["valueQuantity"]["value"] == 36.6
    assert found["temp"]["valueQuantity"]["code"] == "Cel"
    bp = found["bp"]
    assert bp["meta"]["profile"] == [PROFILE + "bp"]
    assert codes(bp) == {(LOINC, "85354-9")}
    assert "valueQuantity" not in bp
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert {code: q["value"] for code, q in components.items()} == {"8480-6": 120, "8462-4": 80}
    assert {q["code"] for q in components.values()} == {"mm[Hg]"}
    news2 = found["news2"]
    assert "meta" not in news2
    assert news2["category"][0]["coding"][0]["code"] == "survey"
    assert codes(news2) == {("https://vigil.example/fhir/CodeSystem/vigil", "news2")}
    assert news2["valueQuantity"]["value"] == 0
    assert news2["valueQuantity"]["code"] == "{score}"
    assert news2["interpretation"] == [{"text": "NEWS2 clinical risk: low"}]


@pytest.mark.parametrize(
    ("code", "kinds"),
    [
        ("8867-4", ["hr"]),
        ("http://loinc.org|9279-1", ["rr"]),
        ("59408-5", ["spo2"]),
        ("http://loinc.org|2708-6", ["spo2"]),
        ("8310-5", ["temp"]),
        ("85354-9", ["bp"]),
        ("https://vigil.example/fhir/CodeSystem/vigil|news2", ["news2"]),
        ("8867-4,8310-5", ["hr", "temp"]),
        ("http://snomed.info/sct|8867-4", []),
        ("|8867-4", []),
        ("8480-6", []),  # a component's code is not the Observation's
        ("0000-0", []),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value) or "none",
)
def test_code_selects_observations(
    client: FlaskClient, make_patient: Callable, code: str, kinds: list[str]
) -> None:
    ada = make_patient("Ada", samples=2)

    bundle = search(client, ada.uuid, code=code)

    found = [o["id"].split("-", 1)[1] for o in entries(bundle)]
    assert found == kinds * 2
    assert bundle["total"] == len(found)


def test_an_observation_is_read_by_its_id(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=3)
    listed = entries(search(client, ada.uuid))

    for resource in listed:
        assert fhir_json(client.get(f"/fhir/Observation/{resource['id']}")) == resource


def test_an_unscored_sample_has_no_news2(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=2)
    unscore(app, ada.sample_times[0])

    bundle = search(client, ada.uuid, code="news2")

    (news2,) = entries(bundle)
    assert bundle["total"] == 1
    assert news2["effectiveDateTime"] == ada.sample_times[1].isoformat()
    older = news2["id"].replace(news2["id"].split("-")[0], str(int(news2["id"].split("-")[0]) - 1))
    outcome(client.get(f"/fhir/Observation/{older}"), 404, "not-found")


# -- date, _sort and pages -------------------------------------------------------------------

DATES = [
    (["ge{2}"], [2, 3, 4, 5]),
    (["gt{2}"], [3, 4, 5]),
    (["le{2}"], [0, 1, 2]),
    (["lt{2}"], [0, 1]),
    (["eq{2}"], [2]),
    (["{2}"], [2]),
    (["ge{1}", "lt{4}"], [1, 2, 3]),
    (["gt{1}", "le{4}"], [2, 3, 4]),
    (["ge{4}", "le{1}"], []),
    (["2025-01-31"], [0, 1, 2, 3, 4, 5]),
    (["eq2025-01"], [0, 1, 2, 3, 4, 5]),
    (["gt2025-01-31"], []),
    (["lt2025-01-31"], []),
    (["le2025"], [0, 1, 2, 3, 4, 5]),
    (["2025-01-31T08:02Z"], [2]),  # to the minute: the whole minute
    (["ge2025-01-31T09:02:00%2B01:00"], [2, 3, 4, 5]),  # an offset: the same instant
    (["lt2025-01-31T08:03:00.000Z"], [0, 1, 2]),
]


@pytest.mark.parametrize(("dates", "expected"), DATES, ids=[" ".join(d) for d, _ in DATES])
def test_date_prefixes_hold_at_their_boundaries(
    client: FlaskClient, make_patient: Callable, dates: list[str], expected: list[int]
) -> None:
    ada = make_patient("Ada", samples=6)
    times = [fhir_time(t) for t in ada.sample_times]
    query = "&".join(f"date={d.format(*times).replace('+', '%2B')}" for d in dates)

    response = client.get(f"/fhir/Observation?patient={ada.uuid}&code=8867-4&{query}")

    found = [o["effectiveDateTime"] for o in entries(fhir_json(response))]
    assert found == [ada.sample_times[i].isoformat() for i in reversed(expected)]


def test_sort_by_date_either_way(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=4)
    times = [t.isoformat() for t in ada.sample_times]

    def listed(**params: str) -> list[str]:
        return [o["effectiveDateTime"] for o in entries(search(client, ada.uuid, **params))]

    assert listed(code="8867-4") == times[::-1]
    assert listed(code="8867-4", _sort="-date") == times[::-1]
    assert listed(code="8867-4", _sort="date") == times


def walk(client: FlaskClient, first: str) -> tuple[list[dict], list[dict]]:
    """Every page of a search from its first URL, following next links: (pages, resources)."""
    pages, resources, url = [], [], first
    while url is not None:
        parts = urlsplit(url)
        bundle = fhir_json(client.get(f"{parts.path}?{parts.query}"))
        pages.append(bundle)
        resources.extend(entries(bundle))
        url = link(bundle, "next")
        assert len(pages) < 100
    return pages, resources


@pytest.mark.parametrize("sort", ["-date", "date"])
def test_pages_walk_every_observation_once(
    app: Flask, client: FlaskClient, make_patient: Callable, sort: str
) -> None:
    ada = make_patient("Ada", samples=40)
    make_patient("Bea", samples=5)
    unscore(app, ada.sample_times[7])  # a sample with five Observations, not six
    every = entries(search(client, ada.uuid, _count=500, _sort=sort))
    assert len(every) == 40 * 6 - 1

    with view_statements(app) as statements:
        pages, walked = walk(client, f"/fhir/Observation?patient={ada.uuid}&_count=17&_sort={sort}")

    assert [o["id"] for o in walked] == [o["id"] for o in every]
    assert len(pages) == -(-len(every) // 17)
    assert {page["total"] for page in pages} == {len(every)}
    assert all(len(entries(page)) == 17 for page in pages[:-1])
    # Keyset pages: each reads one bounded batch of samples, from where the last one stopped.
    reads = [s for s, _ in statements if "FROM patient_metrics" in s and "count(" not in s]
    assert len(reads) == len(pages) and all("LIMIT" in s for s in reads)
    assert all("patient_metrics.timestamp" in s.split("ORDER BY")[0] for s in reads[1:])


def test_pages_of_a_filtered_search_keep_the_filter(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=30)
    start = fhir_time(ada.sample_times[5])

    pages, walked = walk(
        client, f"/fhir/Observation?patient={ada.uuid}&code=8867-4,85354-9&date=ge{start}&_count=7"
    )

    assert len(walked) == 50 and pages[0]["total"] == 50
    assert len({o["id"] for o in walked}) == 50
    assert {o["effectiveDateTime"] for o in walked} == {t.isoformat() for t in ada.sample_times[5:]}
    next_url = link(pages[0], "next")
    assert next_url is not None and "code=8867-4%2C85354-9" in next_url


def test_count_zero_tells_the_total_only(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=3)

    bundle = search(client, ada.uuid, _count=0)

    assert bundle["total"] == 18 and "entry" not in bundle and link(bundle, "next") is None


def test_subject_and_patient_references(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=1)

    for params in ({"patient": f"Patient/{ada.uuid}"}, {"subject": ada.uuid}):
        response = client.get("/fhir/Observation", query_string={**params, "code": "8867-4"})
        assert fhir_json(response)["total"] == 1


# -- Patients ---------------------------------------------------------------------------------


def test_a_patient_is_read_with_its_identifiers(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada Lovelace")
    give_mrn(app, ada, "MRN-1815")

    patient = fhir_json(client.get(f"/fhir/Patient/{ada.uuid}"))

    assert patient["id"] == ada.uuid
    assert patient["name"] == [{"text": "Ada Lovelace"}]
    assert [(i.get("system"), i["value"]) for i in patient["identifier"]] == [
        (MRN_SYSTEM, "MRN-1815"),
        ("urn:ietf:rfc:3986", f"urn:uuid:{ada.uuid}"),
    ]


def test_a_patient_without_an_mrn_has_its_uuid(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada")

    patient = fhir_json(client.get(f"/fhir/Patient/{ada.uuid}"))

    assert patient["identifier"] == [
        {"use": "secondary", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{ada.uuid}"}
    ]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"identifier": f"{MRN_SYSTEM}|MRN-1"}, ["ada"]),
        ({"identifier": "MRN-1"}, ["ada", "cy"]),
        ({"identifier": "|MRN-1"}, ["cy"]),
        ({"identifier": "https://other.example|MRN-1"}, []),
        ({"identifier": "MRN-9"}, []),
        ({"_id": "{ada}"}, ["ada"]),
        ({"_id": "{ada},{bea}"}, ["ada", "bea"]),
        ({"_id": "{bea}", "identifier": "MRN-1"}, []),
        ({"_id": "not-a-uuid"}, []),
    ],
    ids=lambda value: (
        "&".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, dict)
        else ",".join(value)
    ),
)
def test_patients_are_searched_by_mrn_or_id(
    app: Flask, client: FlaskClient, make_patient: Callable, query: dict, found: list[str]
) -> None:
    made = {name: make_patient(name) for name in ("ada", "bea", "cy")}
    give_mrn(app, made["ada"], "MRN-1")
    give_mrn(app, made["bea"], "MRN-2")
    give_mrn(app, made["cy"], "MRN-1", system=None)  # re-admitted from a feed with no system
    uuids = {name: patient.uuid for name, patient in made.items()}
    params = {key: value.format(**uuids) for key, value in query.items()}

    bundle = fhir_json(client.get("/fhir/Patient", query_string=params))

    assert sorted(p["id"] for p in entries(bundle)) == sorted(uuids[name] for name in found)
    assert bundle["total"] == len(found)


def test_patient_search_pages_follow_next_links_to_every_match_once(
    client: FlaskClient, make_patient: Callable
) -> None:
    made = [make_patient(name) for name in ("ada", "bea", "cy", "dee", "eve")]
    ids = ",".join(patient.uuid for patient in made[:4])

    pages, walked = walk(client, f"/fhir/Patient?_id={ids}&_count=3")

    assert [len(entries(page)) for page in pages] == [3, 1]
    assert {page["total"] for page in pages} == {4}
    assert sorted(p["id"] for p in walked) == sorted(patient.uuid for patient in made[:4])
    next_url = link(pages[0], "next")
    assert next_url is not None and "_count=3" in next_url and "_id=" in next_url
    assert link(pages[-1], "next") is None
    # A page that ends exactly at the last match says there is no next one.
    pages, _ = walk(client, f"/fhir/Patient?_id={ids}&_count=2")
    assert [len(entries(page)) for page in pages] == [2, 2]


def test_an_unknown_patient_is_not_found(client: FlaskClient) -> None:
    outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}"), 404, "not-found")
    bundle = search(client, str(uuid.uuid4()))
    assert bundle["total"] == 0 and "entry" not in bundle


# -- who may read -----------------------------------------------------------------------------


@pytest.fixture
def integration_client(app: Flask, make_account: Callable) -> Callable[..., FlaskClient]:
    """A client with an integration's API token holding `scopes`."""
    machine = make_account(Role.INTEGRATION)

    def make(*scopes: Scope) -> FlaskClient:
        return client_for(app, api_token(app, machine.id, *scopes))

    return make


def test_people_and_integrations_with_patients_read_may_read(
    client_as: Callable, make_account: Callable, integration_client: Callable, make_patient
) -> None:
    ada = make_patient("Ada", samples=1)
    readers = [
        client_as(make_account(Role.VIEWER)),
        client_as(make_account(Role.CLINICIAN)),  # of no ward: patients are not by ward
        integration_client(Scope.PATIENTS_READ),
    ]
    for reader in readers:
        assert search(reader, ada.uuid)["total"] == 6
        fhir_json(reader.get(f"/fhir/Patient/{ada.uuid}"))
        # The same patients as the JSON API shows the same caller.
        assert reader.get(f"/api/v1/patients/{ada.uuid}").status_code == 200


@pytest.mark.parametrize(
    "scopes",
    [(), (Scope.METRICS_READ,), (Scope.NOTIFICATIONS_READ,)],
    ids=["no-scope", "metrics-read", "notifications-read"],
)
def test_integrations_without_patients_read_are_forbidden(
    integration_client: Callable, make_patient: Callable, scopes: tuple[Scope, ...]
) -> None:
    ada = make_patient("Ada", samples=1)
    reader = integration_client(*scopes)
    for path in (
        f"/fhir/Patient/{ada.uuid}",
        "/fhir/Patient?identifier=x",
        f"/fhir/Observation?patient={ada.uuid}",
        "/fhir/Observation/1-hr",
    ):
        outcome(reader.get(path), 403, "forbidden")


def test_signed_out_callers_get_a_bearer_challenge(anonymous: FlaskClient, make_patient) -> None:
    ada = make_patient("Ada", samples=1)

    response = anonymous.get(f"/fhir/Observation?patient={ada.uuid}")

    assert "Sign in" in outcome(response, 401, "login")
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_the_json_api_keeps_its_own_error_body(client: FlaskClient) -> None:
    response = client.get(f"/api/v1/patients/{uuid.uuid4()}")
    assert response.status_code == 404
    assert set(response.json) == {"code", "status", "message", "errors"}


# -- the audit trail ----------------------------------------------------------------------------


def test_each_fhir_read_is_audited_with_its_patient(
    app: Flask, client: FlaskClient, admin: Account, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=2)
    observation_id = entries(search(client, ada.uuid, code="8867-4"))[0]["id"]
    fhir_json(client.get(f"/fhir/Patient/{ada.uuid}"))
    fhir_json(client.get(f"/fhir/Patient?_id={ada.uuid}"))
    fhir_json(client.get(f"/fhir/Observation/{observation_id}"))

    for action in (
        AuditAction.FHIR_OBSERVATIONS_SEARCHED,
        AuditAction.FHIR_PATIENT_READ,
        AuditAction.FHIR_PATIENTS_SEARCHED,
        AuditAction.FHIR_OBSERVATION_READ,
    ):
        event = only_event(app, action)
        assert str(event.patient_uuid) == ada.uuid, action
        assert event.user_id == admin.id and event.outcome == "allowed"
        assert event.resource.startswith("/fhir/")
    searched = only_event(app, AuditAction.FHIR_OBSERVATIONS_SEARCHED)
    assert searched.detail == {"method": "GET", "status": 200, "observations": 2}
    patients = only_event(app, AuditAction.FHIR_PATIENTS_SEARCHED)
    assert patients.detail["patients"] == [ada.uuid]


def test_refused_fhir_reads_are_audited_as_denied(
    app: Flask, anonymous: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)
    anonymous.get(f"/fhir/Patient/{ada.uuid}")
    anonymous.get(f"/fhir/Observation?patient=Patient/{ada.uuid}")
    anonymous.get("/fhir/Patient/not-a-uuid")

    for action in (AuditAction.FHIR_PATIENT_READ, AuditAction.FHIR_OBSERVATIONS_SEARCHED):
        (event,) = events(app, action=action.value, patient_uuid=uuid.UUID(ada.uuid))
        assert event.outcome == "denied" and event.detail["status"] == 401
    # An id that is no uuid names no patient (and is still recorded).
    (malformed,) = events(app, action=AuditAction.FHIR_PATIENT_READ.value, patient_uuid=None)
    assert malformed.resource == "/fhir/Patient/not-a-uuid"


@on_sqlite_only
def test_the_capability_statement_is_not_audited(app: Flask, client: FlaskClient) -> None:
    client.get("/fhir/metadata")
    assert events(app) == []


def test_a_page_of_the_largest_count_is_served_whole(
    client: FlaskClient, make_patient: Callable
) -> None:
    # Speed belongs in a benchmark; here, that the bound's page comes back complete.
    ada = make_patient("Ada", samples=100)
    bundle = search(client, ada.uuid, _count=500)
    assert len(entries(bundle)) == 500
