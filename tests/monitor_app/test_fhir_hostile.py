"""Hostile and malformed requests to the FHIR API: each is a clear 4xx OperationOutcome,
never a 500, never another patient's data."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor_app import create_app
from monitor_app.fhir.cursor import Cursor, write_cursor
from shared.db import db, migrate
from tests.auth import Account, client_for
from tests.fhir import entries, fhir_json, link, outcome
from tests.helpers import on_sqlite_only

PATIENT = "0b7c6a3e-2f0a-4d3b-9d8e-5a1f2c3b4d5e"
OBSERVATIONS = "/fhir/Observation"


def garbled(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


OBSERVATION_SEARCHES = [
    # (query string, status, issue code)
    ("", 400, "too-costly"),
    ("code=8867-4", 400, "too-costly"),
    ("patient=abc", 400, "invalid"),
    ("patient=Patient/' OR 1=1 --", 400, "invalid"),
    (f"patient={PATIENT}&patient={PATIENT}", 400, "invalid"),
    (f"patient={PATIENT},{PATIENT}", 400, "invalid"),
    (f"patient={PATIENT}&subject={PATIENT}", 400, "invalid"),
    (f"patient=Practitioner/{PATIENT}", 400, "invalid"),
    (f"patient={PATIENT}&_count=100000", 400, "invalid"),
    (f"patient={PATIENT}&_count=501", 400, "invalid"),
    (f"patient={PATIENT}&_count=-1", 400, "invalid"),
    (f"patient={PATIENT}&_count=1e3", 400, "invalid"),
    (f"patient={PATIENT}&_count=", 400, "invalid"),
    (f"patient={PATIENT}&_count=%D9%A1%D9%A2", 400, "invalid"),  # Arabic-Indic digits
    (f"patient={PATIENT}&_count=99999999999999999999999999999", 400, "invalid"),
    (f"patient={PATIENT}&_count=10&_count=20", 400, "invalid"),
    (f"patient={PATIENT}&date=xx2025-01-31", 400, "invalid"),
    (f"patient={PATIENT}&date=ne2025-01-31", 400, "invalid"),
    (f"patient={PATIENT}&date=sa2025-01-31", 400, "invalid"),
    (f"patient={PATIENT}&date=ap2025-01-31", 400, "invalid"),
    (f"patient={PATIENT}&date=2025-13-01", 400, "invalid"),
    (f"patient={PATIENT}&date=2025-02-30", 400, "invalid"),
    (f"patient={PATIENT}&date=2025-01-31T25:00:00Z", 400, "invalid"),
    (f"patient={PATIENT}&date=2025-01-31T08:00:00", 400, "invalid"),  # no offset
    (f"patient={PATIENT}&date=2025-01-31T08:00:00+01:00", 400, "invalid"),  # '+' unencoded
    (f"patient={PATIENT}&date=9999-12-31", 400, "invalid"),
    (f"patient={PATIENT}&date=0000-01-01", 400, "invalid"),
    (f"patient={PATIENT}&date=ge", 400, "invalid"),
    (f"patient={PATIENT}&date=", 400, "invalid"),
    (f"patient={PATIENT}&date=' OR '1'='1", 400, "invalid"),
    (f"patient={PATIENT}&date=2025-01-31T08:00:00.1234567Z", 400, "invalid"),
    (f"patient={PATIENT}" + "&date=ge2025" * 5, 400, "invalid"),
    (f"patient={PATIENT}&code=8867-4,,8310-5", 400, "invalid"),
    (f"patient={PATIENT}&code=|", 400, "invalid"),
    (f"patient={PATIENT}&code=http://loinc.org|", 400, "invalid"),
    (f"patient={PATIENT}&code=" + "," * 1000, 400, "too-costly"),
    (f"patient={PATIENT}&code=" + ",".join(["8867-4"] * 21), 400, "too-costly"),
    (f"patient={PATIENT}&code=" + "8" * 300, 400, "too-long"),
    (f"patient={PATIENT}&_sort=name", 400, "not-supported"),
    (f"patient={PATIENT}&_sort=date,-date", 400, "not-supported"),
    (f"patient={PATIENT}&foo=1", 400, "not-supported"),
    (f"patient={PATIENT}&code:text=heart", 400, "not-supported"),
    (f"patient={PATIENT}&_elements=id", 400, "not-supported"),
    (f"patient={PATIENT}&_cursor=!!!", 400, "invalid"),
    (f"patient={PATIENT}&_cursor=" + garbled("not a cursor"), 400, "invalid"),
    (f"patient={PATIENT}&_cursor=" + "A" * 5000, 414, "too-long"),
    (f"patient={PATIENT}&_cursor=" + "A" * 300, 400, "too-long"),
    (
        f"patient={PATIENT}&_cursor=" + garbled(f"2~{PATIENT}~d~2025-01-31T08:00:00+00:00~0"),
        400,
        "invalid",
    ),
    (
        f"patient={PATIENT}&_cursor=" + garbled(f"1~{PATIENT}~d~2025-01-31T08:00:00~0"),
        400,
        "invalid",
    ),
    (
        f"patient={PATIENT}&_cursor=" + garbled(f"1~{PATIENT}~d~2025-01-31T08:00:00+00:00~6"),
        400,
        "invalid",
    ),
    (
        f"patient={PATIENT}&_cursor=" + garbled(f"1~{PATIENT}~x~2025-01-31T08:00:00+00:00~0"),
        400,
        "invalid",
    ),
    (
        f"patient={PATIENT}&_cursor=" + garbled(f"1~{PATIENT}~d~2025-01-31T08:00:00+00:00~-1"),
        400,
        "invalid",
    ),
    (f"patient={PATIENT}&_cursor=" + garbled(f"1~{PATIENT}~d~x~0~extra"), 400, "invalid"),
    (f"patient={PATIENT}&_format=xml", 406, "not-supported"),
    (f"patient={PATIENT}&_format=application/fhir%2Bxml", 406, "not-supported"),
    (f"patient={PATIENT}&" + "x" * 5000, 414, "too-long"),
    (f"patient={PATIENT}%00", 422, "invalid"),
]


@on_sqlite_only
@pytest.mark.parametrize(
    ("query", "status", "code"),
    OBSERVATION_SEARCHES,
    ids=[f"{i:02d}-{q[:60]}" for i, (q, _, _) in enumerate(OBSERVATION_SEARCHES)],
)
def test_bad_observation_searches_are_refused(
    client: FlaskClient, query: str, status: int, code: str
) -> None:
    response = client.get(f"{OBSERVATIONS}?{query}")
    assert outcome(response, status, code)


PATIENT_SEARCHES = [
    ("", 400, "too-costly"),
    ("name=Ada", 400, "not-supported"),
    ("identifier=", 400, "invalid"),
    ("identifier=a|", 400, "invalid"),
    ("identifier=MRN-1&identifier=MRN-2", 400, "invalid"),
    ("identifier=MRN-1,MRN-2", 400, "not-supported"),
    ("_id=" + ",".join([PATIENT] * 21), 400, "too-costly"),
    ("identifier=MRN-1&_count=-5", 400, "invalid"),
    ("identifier=" + "x" * 300, 400, "too-long"),
    ("identifier=MRN-1&_cursor=!!!", 400, "invalid"),
    ("identifier=MRN-1&_cursor=" + garbled("1~p~-1"), 400, "invalid"),
    ("identifier=MRN-1&_cursor=" + garbled("1~p~100001"), 400, "invalid"),
    ("identifier=MRN-1&_cursor=" + garbled("1~p~1e3"), 400, "invalid"),
    ("identifier=MRN-1&_cursor=" + garbled("2~p~1"), 400, "invalid"),
    ("identifier=MRN-1&_cursor=" + garbled("1~p~1~1"), 400, "invalid"),
    # An Observation search's cursor is not a Patient search's.
    (
        "identifier=MRN-1&_cursor=" + garbled(f"1~{PATIENT}~d~2025-01-31T08:00:00+00:00~0"),
        400,
        "invalid",
    ),
]


@on_sqlite_only
@pytest.mark.parametrize(
    ("query", "status", "code"),
    PATIENT_SEARCHES,
    ids=[f"{i:02d}-{q[:40]}" for i, (q, _, _) in enumerate(PATIENT_SEARCHES)],
)
def test_bad_patient_searches_are_refused(
    client: FlaskClient, query: str, status: int, code: str
) -> None:
    assert outcome(client.get(f"/fhir/Patient?{query}"), status, code)


BAD_PATHS = [
    "/fhir/Patient/not-a-uuid",
    "/fhir/Patient/" + PATIENT[:-1],
    f"/fhir/Patient/{PATIENT}/_history",
    "/fhir/Patient/..%2F..%2Fapi%2Fv1%2Fpatients",
    "/fhir/Observation/abc",
    "/fhir/Observation/1",
    "/fhir/Observation/1-xx",
    "/fhir/Observation/-1-hr",
    "/fhir/Observation/1-hr-hr",
    "/fhir/Observation/1-HR",
    "/fhir/Observation/0-hr",
    "/fhir/Observation/99999999999999999999-hr",
    "/fhir/Observation/%D9%A1-hr",  # an Arabic-Indic one
    "/fhir/Observation/1%27%20OR%20%271%27%3D%271-hr",
    "/fhir/Encounter",
    "/fhir/Encounter/1",
]


@on_sqlite_only
@pytest.mark.parametrize("path", BAD_PATHS)
def test_unknown_or_malformed_ids_are_not_found(client: FlaskClient, path: str) -> None:
    assert outcome(client.get(path), 404, "not-found")


@on_sqlite_only
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/fhir/Patient"),
        ("PUT", f"/fhir/Patient/{PATIENT}"),
        ("DELETE", "/fhir/Observation/1-hr"),
        ("PATCH", "/fhir/Observation/1-hr"),
        ("POST", "/fhir/metadata"),
    ],
    ids=lambda value: value.replace("/", "_"),
)
def test_writes_are_not_supported(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={"resourceType": "Patient"})
    assert outcome(response, 405, "not-supported")


@on_sqlite_only
@pytest.mark.parametrize(
    "accept",
    ["application/xml", "application/fhir+xml", "text/html", "text/csv;q=1, image/*;q=0.5"],
)
def test_other_formats_are_not_acceptable(client: FlaskClient, accept: str) -> None:
    response = client.get(f"/fhir/Patient/{PATIENT}", headers={"Accept": accept})
    assert outcome(response, 406, "not-supported")


@on_sqlite_only
@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Accept": "application/fhir+json"}, ""),
        ({"Accept": "application/json"}, ""),
        ({"Accept": "*/*"}, ""),
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, ""),  # a browser's
        ({}, "?_format=json"),
        ({}, "?_format=application/fhir%2Bjson"),
        ({"Accept": "application/xml"}, "?_format=json"),  # _format wins, as FHIR says
    ],
    ids=["fhir-json", "json", "any", "browser", "format-json", "format-fhir-json", "override"],
)
def test_json_is_served_however_it_is_asked_for(
    client: FlaskClient, headers: dict, query: str
) -> None:
    fhir_json(client.get(f"/fhir/metadata{query}", headers=headers))


def test_unknown_parameters_are_ignored_when_asked(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=2)
    url = f"{OBSERVATIONS}?patient={ada.uuid}&code=8867-4&_summary=true&foo=bar"

    outcome(client.get(url), 400, "not-supported")
    outcome(client.get(url, headers={"Prefer": "handling=strict"}), 400, "not-supported")
    for prefer in ("handling=lenient", "return=minimal, handling=lenient"):
        bundle = fhir_json(client.get(url, headers={"Prefer": prefer}))
        assert bundle["total"] == 2


def _cursor_of(bundle: dict) -> str:
    next_url = link(bundle, "next")
    assert next_url is not None
    return parse_qs(urlsplit(next_url).query)["_cursor"][0]


def test_a_cursor_never_reaches_another_patient(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada, bea = make_patient("Ada", samples=5), make_patient("Bea", samples=5)
    cursor = _cursor_of(fhir_json(client.get(f"{OBSERVATIONS}?patient={ada.uuid}&_count=2")))

    # Ada's cursor on Bea's search, and on Ada's in the other order: refused.
    for query in (f"patient={bea.uuid}", f"patient={ada.uuid}&_sort=date"):
        diagnostics = outcome(client.get(f"{OBSERVATIONS}?{query}&_cursor={cursor}"), 400)
        assert "another search" in diagnostics


def test_a_hand_made_cursor_only_moves_within_the_patient(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=5)
    make_patient("Bea", samples=5)
    made = Cursor(uuid.UUID(ada.uuid), True, ada.sample_times[2], 0)

    bundle = fhir_json(
        client.get(f"{OBSERVATIONS}?patient={ada.uuid}&code=8867-4&_cursor={write_cursor(made)}")
    )

    found = [o["effectiveDateTime"] for o in entries(bundle)]
    assert found == [t.isoformat() for t in ada.sample_times[1::-1]]
    assert {o["subject"]["reference"] for o in entries(bundle)} == {f"Patient/{ada.uuid}"}


def test_an_observation_id_of_another_kind_of_row_reveals_nothing(
    client: FlaskClient, make_patient: Callable
) -> None:
    ada = make_patient("Ada", samples=1)
    (heart_rate,) = entries(fhir_json(client.get(f"{OBSERVATIONS}?patient={ada.uuid}&code=8867-4")))
    sample_id = int(heart_rate["id"].split("-")[0])

    for other in (sample_id + 1, sample_id + 1000):
        outcome(client.get(f"/fhir/Observation/{other}-hr"), 404, "not-found")


@on_sqlite_only
def test_the_rate_limit_answers_with_an_operation_outcome(
    database_url: str, redis_settings: dict[str, str], admin: Account
) -> None:
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMIT": "2 per minute",
        }
    )
    migrate(db.engine(app))
    try:
        limited = client_for(app, admin.token)
        answers = [limited.get(f"/fhir/Patient/{PATIENT}") for _ in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        outcome(answers[2], 429, "throttled")
        assert int(answers[2].headers["Retry-After"]) >= 1
    finally:
        db.engine(app).dispose()


@on_sqlite_only
def test_the_json_api_and_fhir_keep_their_own_error_bodies(client: FlaskClient, app: Flask) -> None:
    outcome(client.get("/fhir/Patient?identifier="), 400)
    answer = client.get("/api/v1/patient/not-a-uuid/metrics")
    assert answer.status_code == 422
    assert set(answer.json) == {"code", "status", "message", "errors"}
