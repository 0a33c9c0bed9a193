"""A real FHIR client (fhirclient, over HTTP) reads Vigil: its CapabilityStatement, a Patient,
and a patient's Observations across pages, with an integration's bearer token."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException, FHIRServer, FHIRUnauthorizedException
from flask import Flask
from werkzeug.serving import make_server

from shared.auth.roles import Role, Scope
from tests.fhir import api_token
from tests.helpers import serving


@pytest.fixture
def base(app: Flask) -> Iterator[str]:
    """The app behind a real threaded HTTP server: its FHIR base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving(server, "fhir-server"):
        yield f"http://127.0.0.1:{server.server_port}/fhir"


@pytest.fixture
def fhir(app: Flask, base: str, make_account: Callable) -> Iterator[FHIRServer]:
    """fhirclient's server, sending an integration's token that holds patients:read."""
    machine = make_account(Role.INTEGRATION)
    server = FHIRServer(None, base_uri=base)
    server.session.headers["Authorization"] = (
        f"Bearer {api_token(app, machine.id, Scope.PATIENTS_READ)}"
    )
    yield server
    server.session.close()


def test_the_client_reads_the_capability_statement(fhir: FHIRServer) -> None:
    fhir.get_capability()

    statement = fhir.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    (rest,) = statement.rest
    assert sorted(r.type for r in rest.resource) == ["Observation", "Patient"]


def test_the_client_reads_a_patient_and_walks_its_heart_rates(
    fhir: FHIRServer, make_patient: Callable
) -> None:
    ada = make_patient("Ada Lovelace", samples=23)

    patient = Patient.read(ada.uuid, fhir)
    search = Observation.where(
        struct={"patient": ada.uuid, "code": "http://loinc.org|8867-4", "_count": "5"}
    )
    pages = list(search.perform_iter(fhir))
    heart_rates = [o for page in pages for o in (e.resource for e in page.entry)]

    assert patient.id == ada.uuid and patient.name[0].text == "Ada Lovelace"
    assert len(pages) == 5 and {page.total for page in pages} == {23}
    assert [o.valueQuantity.value for o in heart_rates] == list(range(60 + 22, 60 - 1, -1))
    assert {o.code.coding[0].code for o in heart_rates} == {"8867-4"}
    assert {o.subject.reference for o in heart_rates} == {f"Patient/{ada.uuid}"}
    assert len({o.id for o in heart_rates}) == 23
    again = Observation.read(heart_rates[0].id, fhir)
    assert again.as_json() == heart_rates[0].as_json()


def test_the_client_reads_blood_pressure_components(
    fhir: FHIRServer, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)

    search = Observation.where(struct={"patient": f"Patient/{ada.uuid}", "code": "85354-9"})
    (bp,) = search.perform_resources_iter(fhir)

    assert [(c.code.coding[0].code, c.valueQuantity.value) for c in bp.component] == [
        ("8480-6", 120),
        ("8462-4", 80),
    ]


def test_the_client_is_told_not_found_and_unauthorized(
    fhir: FHIRServer, base: str, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)
    with pytest.raises(FHIRNotFoundException) as missing:
        Observation.read("1-nonsense", fhir)
    assert missing.value.response.json()["resourceType"] == "OperationOutcome"

    anonymous = FHIRServer(None, base_uri=base)
    with pytest.raises(FHIRUnauthorizedException) as refused:
        Patient.read(ada.uuid, anonymous)
    assert refused.value.response.json()["issue"][0]["code"] == "login"
    anonymous.session.close()


def test_the_next_link_points_back_at_this_server(fhir: FHIRServer, base: str, make_patient):
    ada = make_patient("Ada", samples=3)

    answer = requests.get(
        f"{base}/Observation",
        params={"patient": ada.uuid, "_count": "2"},
        headers={**fhir.session.headers, "Accept": "application/fhir+json"},
        timeout=10,
    )

    assert answer.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    links = {item["relation"]: item["url"] for item in answer.json()["link"]}
    assert links["next"].startswith(f"{base}/Observation?")
    assert links["self"].startswith(f"{base}/Observation?")
