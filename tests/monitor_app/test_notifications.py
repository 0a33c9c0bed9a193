"""The notifications API: /api/v1/notifications, its cache, queue, events and rate limit."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.identity import User
from shared.models import Notification, NotificationRead
from tests.auth import Account, client_for
from tests.helpers import on_sqlite_only, view_statements

URL = "/api/v1/notifications"
ALICE = "0b6f4a8e-3c1d-4f0e-9a57-7d2c61b0a001"
BOB = "0b6f4a8e-3c1d-4f0e-9a57-7d2c61b0a002"
VALID = {"user_id": ALICE, "title": "SpO2 low", "text": "SpO2 88% on room air."}
STATUS_FIELDS = {
    "id",
    "processing_status",
    "category",
    "confidence",
    "keywords",
    "failure_reason",
    "attempts",
    "status_changed_at",
    "analysed_at",
}


def post(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """Create a notification through the API; returns its JSON."""
    response = client.post(URL, json={**VALID, **fields})
    assert response.status_code == 201, response.json
    return response.json


def change(app: Flask, notification_id: str, **values: Any) -> None:
    """Change a notification behind the API's back, as the analysis worker would."""
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(Notification)
            .where(Notification.id == uuid.UUID(notification_id))
            .values(**values)
        )


def read_by(app: Flask, notification_id: str, user_id: uuid.UUID, read_at: datetime) -> None:
    """Record behind the API's back that `user_id` read the notification at `read_at`."""
    with db.sessionmaker(app).begin() as session:
        seq = session.scalar(
            select(Notification.seq).where(Notification.id == uuid.UUID(notification_id))
        )
        session.add(NotificationRead(notification_seq=seq, user_id=user_id, read_at=read_at))


def ids(response: Any) -> list[str]:
    return [notification["id"] for notification in response.json]


def pagination(response: Any) -> dict[str, Any]:
    return json.loads(response.headers["X-Pagination"])


@pytest.fixture(autouse=True)
def recipients(app: Flask) -> None:
    """Alice and Bob, the clinicians the tests write to: a notification needs a recipient
    that exists."""
    with db.sessionmaker(app).begin() as session:
        for user_id, name in ((ALICE, "alice"), (BOB, "bob")):
            session.add(
                User(id=uuid.UUID(user_id), email=f"{name}@vigil.test", role=Role.CLINICIAN.value)
            )


@pytest.fixture
def redis_client(redis_admin: redis.Redis) -> redis.Redis:
    return redis_admin


@pytest.fixture
def events_until(
    redis_client: redis.Redis, redis_settings: dict[str, str], wait_for: Callable[..., Any]
) -> Iterator[Callable[[str, str], list[dict]]]:
    """Subscribes to the namespace's events now. `until(type, notification_id)` waits for that
    event and returns every event received so far, in order."""
    pubsub = redis_client.pubsub()
    received: list[dict] = []

    def poll() -> str | None:
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            received.append(json.loads(message["data"]))
        return message and message["type"]

    def arrived(event_type: str, notification_id: str) -> bool:
        return any(
            event["type"] == event_type and event["notification"]["id"] == notification_id
            for event in received
        )

    def until(event_type: str, notification_id: str) -> list[dict]:
        def seen() -> bool:
            poll()
            return arrived(event_type, notification_id)

        wait_for(seen, timeout=5, message=f"{event_type} of {notification_id}")
        return received

    pubsub.subscribe(f"{redis_settings['REDIS_NAMESPACE']}:events")
    try:
        # Confirmed: nothing published from here on can be missed.
        wait_for(lambda: poll() == "subscribe", timeout=5, message="the subscription")
        yield until
    finally:
        pubsub.close()


@pytest.fixture
def make_app(database_url: str, redis_settings: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Another monitor app over the test's database, with settings overridden."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(
            {"DATABASE_URL": database_url, "TESTING": True, **redis_settings, **overrides}
        )
        migrate(db.engine(app))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


# -- create ------------------------------------------------------------------------------------


def test_create(client: FlaskClient, admin: Account) -> None:
    response = client.post(
        URL, json={"user_id": ALICE, "title": "  SpO2 low ", "text": "SpO2 88% on room air."}
    )

    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert uuid.UUID(body["id"]).version == 4
    assert body == {
        "id": body["id"],
        "user_id": ALICE,
        "sender_id": str(admin.id),
        "patient_uuid": None,
        "title": "SpO2 low",
        "text": "SpO2 88% on room air.",
        "created_at": body["created_at"],
        "read_at": None,
        "read_by": [],
        "category": None,
        "confidence": None,
        "keywords": None,
        "processing_status": "pending",
        "failure_reason": None,
        "attempts": 0,
        "analysed_at": None,
    }
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None

    shown = client.get(response.headers["Location"])
    assert (shown.status_code, shown.json) == (200, body)


def test_create_for_a_patient(client: FlaskClient, make_patient: Callable) -> None:
    ada = make_patient("Ada")

    body = post(client, user_id=BOB, patient_uuid=ada.uuid)

    assert (body["user_id"], body["patient_uuid"]) == (BOB, ada.uuid)
    assert client.get(f"{URL}/{body['id']}").json["patient_uuid"] == ada.uuid


def test_create_accepts_the_longest_title_and_text(client: FlaskClient) -> None:
    body = post(client, title="t" * 200, text="x" * 10_000, patient_uuid=None)

    assert (body["title"], body["text"]) == ("t" * 200, "x" * 10_000)
    assert body["patient_uuid"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "title": ""}, "title"),
        ({**VALID, "title": " \t\n "}, "title"),
        ({**VALID, "text": "   "}, "text"),
        ({"title": "SpO2 low", "text": "SpO2 88%"}, "user_id"),
        ({**VALID, "user_id": "alice"}, "user_id"),
        ({**VALID, "user_id": 42}, "user_id"),
        ({**VALID, "severity": "high"}, "severity"),
        ({**VALID, "text": "x" * 10_001}, "text"),
        ({**VALID, "title": "t" * 201}, "title"),
        ({**VALID, "patient_uuid": "bed 4"}, "patient_uuid"),
        ({**VALID, "title": None}, "title"),
    ],
    ids=[
        "empty-title",
        "blank-title",
        "blank-text",
        "no-user",
        "malformed-user",
        "numeric-user",
        "unknown-field",
        "long-text",
        "long-title",
        "malformed-patient",
        "null-title",
    ],
)
@on_sqlite_only
def test_create_refuses(
    client: FlaskClient,
    redis_client: redis.Redis,
    redis_settings: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    response = client.post(URL, json=body)

    assert response.status_code == 422
    assert response.json["code"] == 422
    assert response.json["status"] == "Unprocessable Entity"
    assert set(response.json["errors"]) == {"json"}
    assert set(response.json["errors"]["json"]) == {field}
    assert client.get(URL).json == []
    assert not redis_client.keys(f"{redis_settings['REDIS_NAMESPACE']}:celery:*")


def test_create_for_an_unknown_patient(client: FlaskClient, make_patient: Callable) -> None:
    make_patient("Ada")

    response = client.post(URL, json={**VALID, "patient_uuid": str(uuid.uuid4())})

    assert response.status_code == 422
    assert response.json["errors"] == {"json": {"patient_uuid": ["No patient with this UUID."]}}
    assert client.get(URL).json == []


@pytest.mark.parametrize(
    ("kwargs", "code", "errors"),
    [
        # Not JSON at all: the body is read as no fields.
        (
            {"data": "SpO2 low", "content_type": "text/plain"},
            422,
            {
                "json": {
                    "user_id": ["Missing data for required field."],
                    "title": ["Missing data for required field."],
                    "text": ["Missing data for required field."],
                }
            },
        ),
        (
            {"data": json.dumps([VALID]), "content_type": "application/json"},
            422,
            {"json": {"_schema": ["Invalid input type."]}},
        ),
        # Claims to be JSON but does not parse: malformed syntax is a 400.
        (
            {"data": '{"title": ', "content_type": "application/json"},
            400,
            {"json": ["Invalid JSON body."]},
        ),
    ],
    ids=["text-plain", "json-array", "broken-json"],
)
@on_sqlite_only
def test_create_refuses_a_body_that_is_not_a_json_object(
    client: FlaskClient, kwargs: dict[str, str], code: int, errors: dict[str, Any]
) -> None:
    response = client.post(URL, **kwargs)

    assert response.status_code == code
    assert response.json["code"] == code
    assert response.json["errors"] == errors


def test_create_queues_the_analysis(
    client: FlaskClient, redis_client: redis.Redis, redis_settings: dict[str, str]
) -> None:
    namespace = redis_settings["REDIS_NAMESPACE"]
    queue = f"{namespace}:celery:{namespace}.analysis"

    created = post(client)

    lists = [key for key in redis_client.keys(f"{namespace}*") if redis_client.type(key) == b"list"]
    assert lists == [queue.encode()]
    (raw,) = redis_client.lrange(queue, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "vigil.analyse_notification"
    assert message["headers"]["argsrepr"] == repr([created["id"]])
    assert message["properties"]["body_encoding"] == "base64"
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([created["id"]], {})

    second = post(client)

    queued = [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        for raw in redis_client.lrange(queue, 0, -1)
    ]
    assert sorted(queued) == sorted([[created["id"]], [second["id"]]])


def test_create_publishes_an_event(
    client: FlaskClient, events_until: Callable[..., list[dict]]
) -> None:
    created = post(client)

    assert events_until("notification.created", created["id"]) == [
        {"type": "notification.created", "notification": created}
    ]


# -- list --------------------------------------------------------------------------------------


@pytest.fixture
def dataset(
    app: Flask, client: FlaskClient, admin: Account, make_patient: Callable
) -> dict[str, Any]:
    """Five notifications, some analysed, some read by the caller (the admin of `client`);
    names map to ids."""
    patients = {"P": make_patient("Ada").uuid, "Q": make_patient("Bea").uuid}
    rows = [  # (name, user, patient, category, status, created day, read)
        ("a1", ALICE, None, "info", "completed", 1, False),
        ("a2", ALICE, "P", "critical", "completed", 2, True),
        ("b1", BOB, "P", None, "pending", 3, False),
        ("b2", BOB, "Q", "warning", "completed", 4, True),
        ("a3", ALICE, "Q", None, "failed", 5, False),
    ]
    names: dict[str, str] = {}
    for name, user, patient, category, status, day, read in rows:
        created = post(client, user_id=user, patient_uuid=patient and patients[patient], title=name)
        names[name] = created["id"]
        change(
            app,
            created["id"],
            category=category,
            processing_status=status,
            created_at=datetime(2025, 1, day, 10, 0, tzinfo=UTC),
        )
        if read:
            read_by(app, created["id"], admin.id, datetime(2025, 1, day, 11, 0, tzinfo=UTC))
    return {"ids": names, "patients": patients}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, "a3 b2 b1 a2 a1"),
        ({"user_id": ALICE}, "a3 a2 a1"),
        ({"user_id": str(uuid.UUID(int=7))}, ""),
        ({"category": "critical"}, "a2"),
        ({"category": "info"}, "a1"),
        ({"status": "pending"}, "b1"),
        ({"status": "completed"}, "b2 a2 a1"),
        ({"status": "failed"}, "a3"),
        ({"status": "processing"}, ""),
        ({"read": "true"}, "b2 a2"),
        ({"read": "false"}, "a3 b1 a1"),
        ({"patient_uuid": "P"}, "b1 a2"),
        ({"patient_uuid": str(uuid.UUID(int=8))}, ""),
        # From is inclusive, to is exclusive.
        ({"created_from": "2025-01-02T10:00:00Z"}, "a3 b2 b1 a2"),
        ({"created_to": "2025-01-04T10:00:00+00:00"}, "b1 a2 a1"),
        # The same instant in another zone.
        ({"created_from": "2025-01-02T12:00:00+02:00"}, "a3 b2 b1 a2"),
        ({"created_from": "2025-01-02T10:00:00Z", "created_to": "2025-01-02T10:00:00Z"}, ""),
        ({"user_id": ALICE, "read": "false"}, "a3 a1"),
        ({"user_id": BOB, "patient_uuid": "P", "status": "pending"}, "b1"),
        (
            {
                "category": "warning",
                "read": "true",
                "created_from": "2025-01-04T00:00:00Z",
                "created_to": "2025-01-05T00:00:00Z",
            },
            "b2",
        ),
        ({"user_id": ALICE, "patient_uuid": "Q", "read": "true"}, ""),
    ],
)
def test_list_filters(
    client: FlaskClient, dataset: dict[str, Any], query: dict[str, str], expected: str
) -> None:
    query = {
        key: dataset["patients"].get(value, value) if key == "patient_uuid" else value
        for key, value in query.items()
    }

    response = client.get(URL, query_string=query)

    assert response.status_code == 200
    assert ids(response) == [dataset["ids"][name] for name in expected.split()]
    assert pagination(response)["total"] == len(expected.split())


def test_list_shows_the_patient_and_analysis(
    app: Flask, client: FlaskClient, dataset: dict[str, Any]
) -> None:
    change(app, dataset["ids"]["a2"], confidence=0.93, keywords=["spo2", "hypoxia"])

    shown = {n["title"]: n for n in client.get(URL).json}

    assert shown["a2"]["patient_uuid"] == dataset["patients"]["P"]
    assert (shown["a2"]["category"], shown["a2"]["confidence"], shown["a2"]["keywords"]) == (
        "critical",
        0.93,
        ["spo2", "hypoxia"],
    )
    assert shown["a2"]["created_at"] == "2025-01-02T10:00:00+00:00"
    assert shown["a2"]["read_at"] == "2025-01-02T11:00:00+00:00"
    assert shown["a1"]["patient_uuid"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"category": "urgent"},
        {"status": "done"},
        {"created_from": "2025-01-01T00:00:00"},
        {"created_to": "yesterday"},
        {"read": "maybe"},
        {"created_from": "2025-01-02T00:00:00Z", "created_to": "2025-01-01T00:00:00Z"},
        {"user_id": "alice"},
        {"patient_uuid": "bed-4"},
        {"snapshot": "-1"},
        {"page": "0"},
        {"page_size": "201"},
    ],
)
@on_sqlite_only
def test_list_refuses_bad_filters(client: FlaskClient, query: dict[str, str]) -> None:
    response = client.get(URL, query_string=query)

    assert response.status_code == 422
    assert response.json["code"] == 422
    # A window the wrong way round is blamed on its start.
    expected = {"created_from"} if "created_to" in query and len(query) == 2 else set(query)
    assert set(response.json["errors"]["query"]) == expected


# -- pagination --------------------------------------------------------------------------------


def test_list_is_paginated(client: FlaskClient) -> None:
    made = [post(client, title=f"n{i}")["id"] for i in range(5)]

    response = client.get(URL, query_string={"page": 2, "page_size": 2})

    assert ids(response) == [made[2], made[1]]
    assert pagination(response) == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }
    last = client.get(URL, query_string={"page": 3, "page_size": 2})
    assert ids(last) == [made[0]]
    assert pagination(last)["page"] == 3
    assert "next_page" not in pagination(last)
    assert len(client.get(URL, query_string={"page_size": 4}).json) == 4


def test_default_page_size(client: FlaskClient) -> None:
    for i in range(51):
        post(client, title=f"n{i}")

    response = client.get(URL)

    assert len(response.json) == 50
    assert pagination(response)["total_pages"] == 2


def test_empty_list(client: FlaskClient) -> None:
    response = client.get(URL)
    assert response.json == []
    assert pagination(response) == {"total": 0, "total_pages": 0}


def test_snapshot_keeps_pages_stable_while_notifications_arrive(client: FlaskClient) -> None:
    made = [post(client, title=f"n{i}")["id"] for i in range(5)]
    first = client.get(URL, query_string={"page_size": 2})
    snapshot = first.headers["X-Snapshot"]
    assert ids(first) == [made[4], made[3]]

    newer = [post(client, title=f"new{i}")["id"] for i in range(2)]
    second = client.get(URL, query_string={"page": 2, "page_size": 2, "snapshot": snapshot})

    assert ids(second) == [made[2], made[1]]
    assert pagination(second)["total"] == 5
    assert second.headers["X-Snapshot"] == snapshot

    fresh = client.get(URL, query_string={"page_size": 2})
    assert ids(fresh) == [newer[1], newer[0]]
    assert pagination(fresh)["total"] == 7
    assert int(fresh.headers["X-Snapshot"]) > int(snapshot)
    # Without the snapshot, page 2 has shifted by the two newcomers.
    assert ids(client.get(URL, query_string={"page": 2, "page_size": 2})) == [made[4], made[3]]


# -- detail ------------------------------------------------------------------------------------


def test_unknown_notification_is_404(client: FlaskClient) -> None:
    post(client)
    unknown = uuid.uuid4()

    for path in (f"{URL}/{unknown}", f"{URL}/{unknown}/status"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json == {
            "code": 404,
            "status": "Not Found",
            "message": f"No notification with id {unknown}.",
            "errors": {},
        }


@pytest.mark.parametrize("suffix", ["", "/status", "/read"])
# A UUID with a character too many, the same in every xdist worker (they must collect the
# same test ids).
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0f8fad5b-d9cb-469f-a165-70867728950ex"])
@on_sqlite_only
def test_malformed_id_is_422(client: FlaskClient, bad_id: str, suffix: str) -> None:
    path = f"{URL}/{bad_id}{suffix}"
    response = client.post(path) if suffix == "/read" else client.get(path)

    assert response.status_code == 422
    assert response.json["errors"] == {"path": ["Not a valid UUID."]}


# -- mark read ---------------------------------------------------------------------------------


def test_mark_read_is_idempotent(client: FlaskClient, admin: Account) -> None:
    created = post(client)
    other = post(client)

    first = client.post(f"{URL}/{created['id']}/read")

    assert first.status_code == 200
    assert first.json == {
        **created,
        "read_at": first.json["read_at"],
        "read_by": [{"user_id": str(admin.id), "read_at": first.json["read_at"]}],
    }
    read_at = datetime.fromisoformat(first.json["read_at"])
    assert read_at >= datetime.fromisoformat(created["created_at"])

    again = client.post(f"{URL}/{created['id']}/read")
    assert (again.status_code, again.json) == (200, first.json)
    assert client.get(f"{URL}/{other['id']}").json["read_at"] is None


def test_mark_read_announces_once(
    client: FlaskClient, events_until: Callable[..., list[dict]]
) -> None:
    created = post(client)
    detail = f"{URL}/{created['id']}"

    read = client.post(f"{detail}/read").json
    client.get(detail)
    assert client.get(detail).headers["X-Cache"] == "hit"
    client.post(f"{detail}/read")
    # Unchanged, so the cached reads stay valid.
    assert client.get(detail).headers["X-Cache"] == "hit"
    # Events arrive in order: once the sentinel is in, a second read event would be too.
    sentinel = post(client)

    assert events_until("notification.created", sentinel["id"])[1:] == [
        {"type": "notification.read", "notification": read},
        {"type": "notification.created", "notification": sentinel},
    ]


def test_mark_read_of_an_unknown_notification_is_404(client: FlaskClient) -> None:
    unknown = uuid.uuid4()

    response = client.post(f"{URL}/{unknown}/read")

    assert response.status_code == 404
    assert response.json["message"] == f"No notification with id {unknown}."


def test_marked_read_is_never_served_unread_from_the_cache(client: FlaskClient) -> None:
    created = post(client)
    other = post(client)
    unread = {"read": "false"}
    detail = f"{URL}/{created['id']}"
    # Both reads cached while it was unread.
    for _ in range(2):
        listed = client.get(URL, query_string=unread)
        shown = client.get(detail)
    assert (listed.headers["X-Cache"], shown.headers["X-Cache"]) == ("hit", "hit")
    assert ids(listed) == [other["id"], created["id"]]
    assert shown.json["read_at"] is None

    read_at = client.post(f"{detail}/read").json["read_at"]

    shown = client.get(detail)
    assert (shown.headers["X-Cache"], shown.json["read_at"]) == ("miss", read_at)
    listed = client.get(URL, query_string=unread)
    assert listed.headers["X-Cache"] == "miss"
    assert ids(listed) == [other["id"]]
    assert pagination(listed)["total"] == 1
    assert ids(client.get(URL, query_string={"read": "true"})) == [created["id"]]


# -- cache -------------------------------------------------------------------------------------


def test_repeated_list_is_served_from_the_cache(client: FlaskClient) -> None:
    post(client)

    first = client.get(URL, query_string={"page_size": 10})
    second = client.get(URL, query_string={"page_size": 10})

    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert second.json == first.json
    for header in ("X-Pagination", "X-Snapshot", "Content-Type"):
        assert second.headers.getlist(header) == first.headers.getlist(header)
    # Another query is another cached response.
    assert client.get(URL, query_string={"page_size": 11}).headers["X-Cache"] == "miss"


def test_creating_invalidates_the_cached_list(client: FlaskClient) -> None:
    first = post(client)
    client.get(URL)
    assert client.get(URL).headers["X-Cache"] == "hit"

    second = post(client)

    response = client.get(URL)
    assert response.headers["X-Cache"] == "miss"
    assert ids(response) == [second["id"], first["id"]]
    assert pagination(response)["total"] == 2


# -- status ------------------------------------------------------------------------------------


def test_status_of_a_pending_notification(client: FlaskClient) -> None:
    created = post(client)

    response = client.get(f"{URL}/{created['id']}/status")

    assert response.status_code == 200
    body = response.json
    assert set(body) == STATUS_FIELDS
    assert body == {
        "id": created["id"],
        "processing_status": "pending",
        "category": None,
        "confidence": None,
        "keywords": None,
        "failure_reason": None,
        "attempts": 0,
        "status_changed_at": body["status_changed_at"],
        "analysed_at": None,
    }
    assert datetime.fromisoformat(body["status_changed_at"]).utcoffset() is not None


def test_status_of_analysed_and_failed_notifications(app: Flask, client: FlaskClient) -> None:
    done, failed = post(client)["id"], post(client)["id"]
    moment = datetime(2025, 2, 1, 9, 30, tzinfo=UTC)
    change(
        app,
        done,
        processing_status="completed",
        category="warning",
        confidence=0.75,
        keywords=["tachycardia"],
        attempts=1,
        status_changed_at=moment,
        analysed_at=moment,
    )
    change(
        app,
        failed,
        processing_status="failed",
        failure_reason="analyser timed out",
        attempts=3,
        status_changed_at=moment,
    )

    assert client.get(f"{URL}/{done}/status").json == {
        "id": done,
        "processing_status": "completed",
        "category": "warning",
        "confidence": 0.75,
        "keywords": ["tachycardia"],
        "failure_reason": None,
        "attempts": 1,
        "status_changed_at": moment.isoformat(),
        "analysed_at": moment.isoformat(),
    }
    assert client.get(f"{URL}/{failed}/status").json == {
        "id": failed,
        "processing_status": "failed",
        "category": None,
        "confidence": None,
        "keywords": None,
        "failure_reason": "analyser timed out",
        "attempts": 3,
        "status_changed_at": moment.isoformat(),
        "analysed_at": None,
    }


# -- database work -----------------------------------------------------------------------------


def test_list_queries_do_not_grow_with_the_page(
    app: Flask,
    client: FlaskClient,
    make_patient: Callable,
    redis_client: redis.Redis,
    redis_settings: dict[str, str],
) -> None:
    for i in range(30):
        post(client, patient_uuid=make_patient(f"Patient {i}").uuid)
    generation = f"{redis_settings['REDIS_NAMESPACE']}:generation:notifications"

    counts = {}
    for page_size in (5, 30):
        # A new generation: neither the response nor the memoized total is cached.
        redis_client.incr(generation)
        with view_statements(app) as statements:
            response = client.get(URL, query_string={"page_size": page_size})
        assert response.headers["X-Cache"] == "miss"
        assert len(response.json) == page_size
        assert all(n["patient_uuid"] for n in response.json)
        counts[page_size] = len(statements)

    # The snapshot, the total, the page, its patients, its readers (one selectinload each).
    assert counts == {5: 5, 30: 5}


def test_later_pages_reuse_the_cached_total(app: Flask, client: FlaskClient) -> None:
    for i in range(4):
        post(client, title=f"n{i}")
    first = client.get(URL, query_string={"page_size": 2})

    with view_statements(app) as statements:
        second = client.get(
            URL, query_string={"page_size": 2, "page": 2, "snapshot": first.headers["X-Snapshot"]}
        )

    assert pagination(second)["total"] == 4
    # Only the page and its readers (a selectinload, even of none): the total was memoized
    # by the first page and none has a patient.
    assert len(statements) == 2, statements


# -- rate limit and Redis down -----------------------------------------------------------------


def test_rate_limit(make_app: Callable[..., Flask], admin: Account) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATE_LIMIT="3 per minute")
    client = client_for(app, admin.token)

    answers = [client.get(URL) for _ in range(4)]

    assert [response.status_code for response in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Remaining"] == "2"
    limited = answers[-1]
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.json["code"] == 429
    assert limited.json["status"] == "Too Many Requests"
    assert set(limited.json) == {"code", "status", "message", "errors"}
    assert client.post(URL, json=VALID).status_code == 429
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5


def test_rate_limit_settings_are_per_app(make_app: Callable[..., Flask], admin: Account) -> None:
    make_app(RATELIMIT_ENABLED=True, RATE_LIMIT="1000 per minute")
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATE_LIMIT="2 per minute",
        REDIS_NAMESPACE=f"test-{uuid.uuid4().hex[:10]}",
    )
    client = client_for(app, admin.token)

    answers = [client.get(URL).status_code for _ in range(3)]

    assert answers == [200, 200, 429]


def test_serves_without_redis(
    make_app: Callable[..., Flask], admin: Account, unreachable_redis: dict[str, str]
) -> None:
    # Unlimited: with the limits on, changes wait for Redis (test_rate_limits).
    app = make_app(**unreachable_redis, RATELIMIT_ENABLED=False)
    client = client_for(app, admin.token)

    created = client.post(URL, json=VALID)
    assert created.status_code == 201
    notification_id = created.json["id"]

    listed = client.get(URL)
    assert listed.status_code == 200
    assert ids(listed) == [notification_id]
    assert "X-Cache" in listed.headers
    shown = client.get(f"{URL}/{notification_id}")
    assert (shown.status_code, shown.json["processing_status"]) == (200, "pending")
    assert client.get(f"{URL}/{notification_id}/status").json["processing_status"] == "pending"
    read = client.post(f"{URL}/{notification_id}/read")
    assert (read.status_code, read.json["read_at"] is not None) == (200, True)
    assert ids(client.get(URL, query_string={"read": "false"})) == []
