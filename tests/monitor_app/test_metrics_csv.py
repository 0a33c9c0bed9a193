"""GET /api/v1/patient/{uuid}/metrics.csv: a patient's samples in a window, as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from monitor_app.auth import services as auth_services
from monitor_app.metrics import export
from shared.audit import AuditAction, AuditEvent
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.identity import User
from shared.models import PatientMetric
from tests.access import ERROR_KEYS
from tests.auth import Account, client_for
from tests.helpers import on_sqlite_only
from tests.monitor_app.conftest import STEP, T0

HEADER = "timestamp,pulse,resp_rate,systolic,diastolic,spo2,temperature,news2_score,news2_band"
# A window holding every sample make_patient inserts (one a minute from T0).
DAY = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}


def csv_url(patient_uuid: str) -> str:
    return f"/api/v1/patient/{patient_uuid}/metrics.csv"


def rows(response) -> list[list[str]]:
    """The CSV's rows after its header, which must be HEADER."""
    assert response.status_code == 200, response.get_data(as_text=True)
    header, *body = csv.reader(io.StringIO(response.get_data(as_text=True)))
    assert ",".join(header) == HEADER
    return body


def timestamps(response) -> list[str]:
    return [row[0] for row in rows(response)]


def window(start: datetime, end: datetime) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


# -- what it holds ------------------------------------------------------------------------------


def test_samples_oldest_first_with_every_column(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada Lovelace", samples=3)

    response = client.get(csv_url(ada.uuid), query_string=DAY)

    assert response.get_data(as_text=True) == (
        f"{HEADER}\r\n"
        "2025-01-31T08:00:00+00:00,60,14,120,80,97,36.6,0,low\r\n"
        "2025-01-31T08:01:00+00:00,61,14,121,80,97,36.6,0,low\r\n"
        "2025-01-31T08:02:00+00:00,62,14,122,80,97,36.6,0,low\r\n"
    )


def test_it_is_a_download_named_without_the_patients_name(
    client: FlaskClient, make_patient: Callable
):
    ada = make_patient("Ada Lovelace", samples=1)

    response = client.get(csv_url(ada.uuid), query_string=DAY)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="vigil-samples-{ada.uuid}-20250131T080000Z-20250201T080000Z.csv"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert "Ada" not in str(response.headers) and "Lovelace" not in response.get_data(as_text=True)


def test_from_is_inclusive_and_to_exclusive(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada", samples=6)
    times = ada.sample_times

    response = client.get(csv_url(ada.uuid), query_string=window(times[1], times[4]))

    assert timestamps(response) == [t.isoformat() for t in times[1:4]]


def test_window_bounds_in_other_time_zones(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada", samples=6)
    paris = timezone(timedelta(hours=1))

    response = client.get(
        csv_url(ada.uuid),
        query_string={
            "from": ada.sample_times[4].astimezone(paris).isoformat(),
            "to": ada.sample_times[5].isoformat().replace("+00:00", "Z"),
        },
    )

    assert [row[1] for row in rows(response)] == ["64"]


def test_only_this_patients_samples(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada", samples=2)
    make_patient("Bea", samples=4)

    assert len(rows(client.get(csv_url(ada.uuid), query_string=DAY))) == 2


@pytest.mark.parametrize(
    "samples", [0, 3], ids=["patient-without-samples", "samples-outside-the-window"]
)
def test_an_empty_window_is_the_header_alone(
    client: FlaskClient, make_patient: Callable, samples: int
):
    ada = make_patient("Ada", samples=samples)

    response = client.get(csv_url(ada.uuid), query_string=window(T0 - STEP * 10, T0))

    assert response.get_data(as_text=True) == f"{HEADER}\r\n"


def test_an_unscored_sample_has_empty_news2_cells(
    app: Flask, client: FlaskClient, make_patient: Callable
):
    ada = make_patient("Ada", samples=1)
    with db.sessionmaker(app).begin() as session:
        sample = session.scalar(select(PatientMetric))
        sample.news2_score, sample.news2_band = None, None

    assert rows(client.get(csv_url(ada.uuid), query_string=DAY))[0][-2:] == ["", ""]


@pytest.mark.parametrize(
    "samples", [5, 6, 7], ids=["last-page-short", "last-page-full", "one-row-over"]
)
def test_every_sample_arrives_once_over_many_pages(
    client: FlaskClient,
    make_patient: Callable,
    monkeypatch: pytest.MonkeyPatch,
    samples: int,
):
    monkeypatch.setattr(export, "PAGE_ROWS", 3)
    ada = make_patient("Ada", samples=samples)

    response = client.get(csv_url(ada.uuid), query_string=DAY, buffered=False)
    chunks = list(response.response)
    response.close()

    # The header, then one chunk a page (a full last page is followed by an empty read).
    assert len(chunks) == 1 + -(-samples // 3)
    body = "".join(chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in chunks)
    assert [line.split(",")[0] for line in body.splitlines()[1:]] == [
        t.isoformat() for t in ada.sample_times
    ]


def test_a_stream_holds_no_connection_between_chunks_nor_after_the_client_leaves(
    app: Flask,
    client: FlaskClient,
    make_patient: Callable,
    monkeypatch: pytest.MonkeyPatch,
    own_contexts: None,
):
    monkeypatch.setattr(export, "PAGE_ROWS", 2)
    ada = make_patient("Ada", samples=7)
    pool = db.engine(app).pool

    response = client.get(csv_url(ada.uuid), query_string=DAY, buffered=False)
    chunks = iter(response.response)
    assert next(chunks).startswith(b"timestamp,")
    assert next(chunks).count(b"\r\n") == 2
    # Halfway: the client is reading, and no connection is checked out for it.
    assert pool.checkedout() == 0
    # The client goes away: the server closes the stream, which ends at once.
    response.close()
    assert list(chunks) == []
    assert pool.checkedout() == 0


# -- who may ------------------------------------------------------------------------------------


def integration_client(app: Flask, make_account: Callable, scopes: tuple[Scope, ...]):
    """A client signed in with an integration's API token holding `scopes`."""
    machine = make_account(Role.INTEGRATION)
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, machine.id)
        _row, token = auth_services.create_api_token(
            session, app.extensions["vigil.token_signer"], user, "export", scopes
        )
    return client_for(app, token)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (Role.ADMIN, 200),
        (Role.CLINICIAN, 200),
        (Role.VIEWER, 200),
        ((Scope.PATIENTS_READ,), 200),
        ((), 403),
        ((Scope.METRICS_READ, Scope.NOTIFICATIONS_READ), 403),
        (None, 401),
    ],
    ids=[
        "admin",
        "clinician",
        "viewer",
        "integration-patients-read",
        "integration-no-scope",
        "integration-other-scopes",
        "signed-out",
    ],
)
def test_who_may_export(
    app: Flask,
    make_account: Callable,
    client_as: Callable,
    make_patient: Callable,
    caller: Role | tuple[Scope, ...] | None,
    status: int,
):
    ada = make_patient("Ada", samples=2)
    if isinstance(caller, tuple):
        asking = integration_client(app, make_account, caller)
    else:
        asking = client_as(None if caller is None else make_account(caller))

    response = asking.get(csv_url(ada.uuid), query_string=DAY)

    assert response.status_code == status
    if status == 200:
        assert len(rows(response)) == 2
    else:
        assert set(response.json) == ERROR_KEYS and response.json["code"] == status


def test_an_unknown_patient_is_404(client: FlaskClient, make_patient: Callable):
    make_patient("Ada", samples=2)
    unknown = uuid.uuid4()

    response = client.get(csv_url(str(unknown)), query_string=DAY)

    assert response.status_code == 404
    assert response.json == {
        "code": 404,
        "status": "Not Found",
        "message": f"No patient with UUID {unknown}.",
        "errors": {},
    }


# -- the audit trail ----------------------------------------------------------------------------


def exports(app: Flask) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == AuditAction.SAMPLES_EXPORTED.value)
    with db.sessionmaker(app)() as session:
        return list(session.scalars(query.order_by(AuditEvent.seq)))


def test_an_export_is_recorded_with_the_patient_and_window(
    app: Flask, client: FlaskClient, admin: Account, make_patient: Callable
):
    ada = make_patient("Ada", samples=2)
    paris = timezone(timedelta(hours=1))
    query = {"from": T0.astimezone(paris).isoformat(), "to": "2025-02-01T08:00:00Z"}

    assert client.get(csv_url(ada.uuid), query_string=query).status_code == 200

    (event,) = exports(app)
    assert (event.user_id, event.role, event.outcome) == (admin.id, "admin", "allowed")
    assert str(event.patient_uuid) == ada.uuid
    assert event.resource.startswith(f"{csv_url(ada.uuid)}?from=")
    # The window as read: in UTC, whatever offset the caller wrote.
    assert event.detail == {
        "method": "GET",
        "status": 200,
        "from": "2025-01-31T08:00:00+00:00",
        "to": "2025-02-01T08:00:00+00:00",
    }


def test_a_refused_export_is_recorded_as_denied(
    app: Flask, make_account: Callable, make_patient: Callable
):
    ada = make_patient("Ada", samples=1)
    asking = integration_client(app, make_account, (Scope.NOTIFICATIONS_READ,))

    assert asking.get(csv_url(ada.uuid), query_string=DAY).status_code == 403

    (event,) = exports(app)
    assert (event.outcome, event.role, str(event.patient_uuid)) == (
        "denied",
        "integration",
        ada.uuid,
    )


# -- spreadsheets -------------------------------------------------------------------------------


def test_a_band_written_like_a_formula_is_not_one(
    app: Flask, client: FlaskClient, make_patient: Callable
):
    ada = make_patient("Ada", samples=1)
    with db.sessionmaker(app).begin() as session:
        session.scalar(select(PatientMetric)).news2_band = "=HYPERLINK(A1)"

    assert rows(client.get(csv_url(ada.uuid), query_string=DAY))[0][-1] == ("'=HYPERLINK(A1)")


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("low", "low"),
        ("low-medium", "low-medium"),
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        (None, None),
    ],
    ids=["band", "hyphenated-band", "equals", "plus", "minus", "at", "tab", "return", "none"],
)
def test_text_cells_never_start_like_a_formula(text: str | None, cell: str | None):
    assert export._text_cell(text) == cell


# -- hostile input ------------------------------------------------------------------------------

LATER = "2025-02-01T08:00:00Z"
EARLIER = "2025-01-31T08:00:00Z"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "from"),
        ({"to": LATER}, "from"),
        ({"from": EARLIER}, "to"),
        ({"from": "", "to": LATER}, "from"),
        ({"from": "2025-01-31T08:00:00", "to": LATER}, "from"),
        ({"from": EARLIER, "to": "2025-02-01T08:00:00"}, "to"),
        ({"from": "yesterday", "to": LATER}, "from"),
        ({"from": EARLIER, "to": "2025-02-30T08:00:00Z"}, "to"),
        ({"from": "1738310400", "to": LATER}, "from"),
        ({"from": LATER, "to": EARLIER}, "from"),
        ({"from": EARLIER, "to": EARLIER}, "from"),
        ({"from": EARLIER, "to": "2025-03-03T08:00:01Z"}, "to"),
        ({"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "to"),
        ({"from": "99999-01-01T00:00:00Z", "to": LATER}, "from"),
        ({"from": EARLIER, "to": "9999-12-31T23:59:59-01:00"}, "to"),
        ({"from": "0001-01-01T00:00:00+01:00", "to": LATER}, "from"),
        ({"from": f"{EARLIER}' OR '1'='1", "to": LATER}, "from"),
        ({"from": EARLIER, "to": "1; DROP TABLE patient_metrics; --"}, "to"),
        ({"from": "9" * 5000, "to": LATER}, "from"),
    ],
    ids=[
        "nothing",
        "from-missing",
        "to-missing",
        "from-empty",
        "from-naive",
        "to-naive",
        "from-garbage",
        "to-impossible-date",
        "from-epoch-seconds",
        "from-after-to",
        "from-equals-to",
        "over-31-days",
        "whole-calendar",
        "five-digit-year",
        "to-past-year-9999-in-utc",
        "from-before-year-1-in-utc",
        "from-sql-quote",
        "to-sql-statement",
        "from-very-long",
    ],
)
@on_sqlite_only
def test_a_bad_window_is_422_and_names_the_field(
    client: FlaskClient, make_patient: Callable, query: dict[str, str], field: str
):
    ada = make_patient("Ada", samples=1)

    response = client.get(csv_url(ada.uuid), query_string=query)

    assert response.status_code == 422
    assert response.content_type == "application/json"
    body = response.json
    assert (set(body), body["code"], body["status"]) == (ERROR_KEYS, 422, "Unprocessable Entity")
    assert field in body["errors"]["query"]


@on_sqlite_only
def test_a_nul_in_the_query_is_refused_before_the_view(client: FlaskClient, make_patient):
    ada = make_patient("Ada", samples=1)

    response = client.get(f"{csv_url(ada.uuid)}?from=2025-01-31T08:00:00Z%00&to={LATER}")

    assert 400 <= response.status_code < 500
    assert set(response.json) == ERROR_KEYS


def test_exactly_31_days_is_allowed(client: FlaskClient, make_patient: Callable):
    ada = make_patient("Ada", samples=2)

    response = client.get(csv_url(ada.uuid), query_string=window(T0, T0 + timedelta(days=31)))

    assert len(rows(response)) == 2


@pytest.mark.parametrize(
    "bad_uuid",
    ["not-a-uuid", "42", "0" * 33, "' OR 1=1 --"],
    ids=["word", "number", "too-long", "sql"],
)
@on_sqlite_only
def test_a_malformed_uuid_is_422(client: FlaskClient, bad_uuid: str):
    response = client.get(csv_url(bad_uuid), query_string=DAY)

    assert response.status_code == 422
    assert response.json["errors"] == {"path": ["Not a valid UUID."]}


@on_sqlite_only
def test_extra_and_repeated_parameters_change_nothing(client: FlaskClient, make_patient):
    ada = make_patient("Ada", samples=3)
    plain = client.get(csv_url(ada.uuid), query_string=DAY).get_data()

    response = client.get(
        f"{csv_url(ada.uuid)}?from={DAY['from'].replace('+', '%2B')}&to={LATER}"
        f"&to=2025-01-31T08:01:00Z&limit=1&patient_uuid={uuid.uuid4()}&format=json"
    )

    # As every query of the API: unknown parameters are ignored, a repeated one's first counts.
    assert response.status_code == 200
    assert response.get_data() == plain
