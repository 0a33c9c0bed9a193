"""GET /api/v1/patients and /api/v1/patients/{uuid}."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import on_sqlite_only, view_statements


def test_list_shows_each_patient_with_their_newest_sample(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=3)
    bea = make_patient("Bea")

    response = client.get("/api/v1/patients")

    assert response.status_code == 200
    first, second = response.json
    assert first["uuid"] == ada.uuid
    assert first["name"] == "Ada"
    assert first["created_at"].endswith("+00:00")
    assert first["latest"]["timestamp"] == ada.sample_times[-1].isoformat()
    assert first["latest"]["pulse"] == 62
    assert first["latest"]["bp"] == "122/80"
    assert second == {
        "uuid": bea.uuid,
        "name": "Bea",
        "created_at": second["created_at"],
        "latest": None,
    }


def test_list_is_ordered_by_name_then_uuid(client: FlaskClient, make_patient: Callable) -> None:
    made = [make_patient(name) for name in ("Cy", "Ada", "Bea", "Ada")]
    expected = sorted(made, key=lambda patient: (patient.name, uuid.UUID(patient.uuid)))

    listed = client.get("/api/v1/patients").json

    assert [patient["uuid"] for patient in listed] == [patient.uuid for patient in expected]


def test_list_is_paginated(client: FlaskClient, make_patient: Callable) -> None:
    for name in ("Ada", "Bea", "Cy", "Dee", "Eve"):
        make_patient(name, samples=1)

    response = client.get("/api/v1/patients", query_string={"page": 2, "page_size": 2})

    assert [patient["name"] for patient in response.json] == ["Cy", "Dee"]
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }


def test_empty_list(client: FlaskClient) -> None:
    response = client.get("/api/v1/patients")
    assert response.json == []
    assert json.loads(response.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}


def test_list_queries_do_not_grow_with_the_page(
    app: Flask, client: FlaskClient, make_patient: Callable
) -> None:
    for i in range(8):
        make_patient(f"Patient {i}", samples=2)
    with view_statements(app) as statements:
        response = client.get("/api/v1/patients")

    assert len(response.json) == 8
    assert all(patient["latest"]["pulse"] == 61 for patient in response.json)
    # The total, the page of patients, the newest sample of all of them.
    assert len(statements) == 3, statements


def test_detail(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada", samples=4)
    make_patient("Bea", samples=2)

    response = client.get(f"/api/v1/patients/{ada.uuid}")

    assert response.status_code == 200
    body = response.json
    assert (body["uuid"], body["name"], body["sample_count"]) == (ada.uuid, "Ada", 4)
    assert body["latest"] == {
        "timestamp": ada.sample_times[-1].isoformat(),
        "pulse": 63,
        "resp_rate": 14,
        "bp": "123/80",
        "systolic": 123,
        "diastolic": 80,
        "spo2": 97,
        "temperature": 36.6,
        "news2_score": 0,
        "news2_band": "low",
    }


def test_detail_without_samples(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada")
    body = client.get(f"/api/v1/patients/{ada.uuid}").json
    assert (body["latest"], body["sample_count"]) == (None, 0)


def test_unknown_patient_is_404(client: FlaskClient, make_patient: Callable) -> None:
    make_patient("Ada", samples=1)
    unknown = uuid.uuid4()

    response = client.get(f"/api/v1/patients/{unknown}")

    assert response.status_code == 404
    assert response.json == {
        "code": 404,
        "status": "Not Found",
        "message": f"No patient with UUID {unknown}.",
        "errors": {},
    }


# A UUID with a character too many, the same in every xdist worker (they must collect the
# same test ids).
@pytest.mark.parametrize(
    "bad_uuid", ["not-a-uuid", "123", "0" * 31, "0f8fad5b-d9cb-469f-a165-70867728950ex"]
)
@on_sqlite_only
def test_malformed_uuid_is_422(client: FlaskClient, bad_uuid: str) -> None:
    response = client.get(f"/api/v1/patients/{bad_uuid}")
    assert response.status_code == 422
    assert response.json["status"] == "Unprocessable Entity"
    assert response.json["errors"] == {"path": ["Not a valid UUID."]}


@pytest.mark.parametrize(
    "query", [{"page": 0}, {"page_size": 0}, {"page_size": 201}, {"page": "two"}]
)
@on_sqlite_only
def test_bad_pagination_is_422(client: FlaskClient, query: dict) -> None:
    response = client.get("/api/v1/patients", query_string=query)
    assert response.status_code == 422
    assert set(response.json["errors"]["query"]) == set(query)
