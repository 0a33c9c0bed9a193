"""The per-user quota on creating notifications, beside the general rate limit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from limits.errors import StorageError

from shared.auth.roles import Role
from tests.auth import TEST_TOKEN_LIFETIME, Account, client_for, signer
from tests.monitor_app.test_rate_limits import (  # noqa: F401 (fixtures)
    ERROR_KEYS,
    NOTIFICATIONS,
    database_url,
    make_app,
    notification_for,
)

QUOTA = {"NOTIFICATION_QUOTA": "2 per minute", "RATE_LIMIT": "100 per minute"}


def another_token(account: Account) -> str:
    """A second access token of the same account."""
    token, _claims = signer().access_token(account.id, account.role.value, TEST_TOKEN_LIFETIME)
    assert token != account.token
    return token


def test_the_quota_refuses_the_next_notification_with_retry_after(
    make_app: Callable[..., Flask],  # noqa: F811
    admin: Account,
) -> None:
    client = client_for(make_app(**QUOTA), admin.token)

    answers = [client.post(NOTIFICATIONS, json=notification_for(admin)) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [201, 201, 429]
    refused = answers[2]
    assert set(refused.json) == ERROR_KEYS and refused.json["status"] == "Too Many Requests"
    assert "NOTIFICATION_QUOTA" not in refused.json["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # Below the general limit: other requests are still served.
    assert client.get("/api/v1/auth/me").status_code == 200


def test_another_user_has_a_quota_of_their_own(
    make_app: Callable[..., Flask],  # noqa: F811
    make_account: Callable[..., Account],
) -> None:
    app = make_app(**QUOTA)
    first, second = make_account(Role.CLINICIAN), make_account(Role.CLINICIAN)
    flooding = client_for(app, first.token)
    for _ in range(3):
        flooding.post(NOTIFICATIONS, json=notification_for(first))

    answer = client_for(app, second.token).post(NOTIFICATIONS, json=notification_for(second))

    assert answer.status_code == 201


@pytest.mark.parametrize(
    "escape",
    ["forwarded-for", "another-token"],
)
def test_a_user_cannot_escape_the_quota(
    make_app: Callable[..., Flask],  # noqa: F811
    admin: Account,
    escape: str,
) -> None:
    # Even behind a proxy whose X-Forwarded-For the app believes.
    app = make_app(**QUOTA, PROXY_FIX_X_FOR=1)
    client = client_for(app, admin.token)
    for i in range(2):
        headers = {"X-Forwarded-For": f"10.0.0.{i}"}
        assert (
            client.post(NOTIFICATIONS, json=notification_for(admin), headers=headers).status_code
            == 201
        )

    if escape == "forwarded-for":
        answer = client.post(
            NOTIFICATIONS, json=notification_for(admin), headers={"X-Forwarded-For": "10.0.9.9"}
        )
    else:
        answer = client_for(app, another_token(admin)).post(
            NOTIFICATIONS, json=notification_for(admin)
        )

    assert answer.status_code == 429


def test_the_quota_is_off_with_the_rate_limits(
    make_app: Callable[..., Flask],  # noqa: F811
    admin: Account,
) -> None:
    client = client_for(make_app(**QUOTA, RATELIMIT_ENABLED=False), admin.token)

    answers = [client.post(NOTIFICATIONS, json=notification_for(admin)) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [201, 201, 201]


def test_a_quota_that_cannot_be_counted_refuses_the_notification(
    make_app: Callable[..., Flask],  # noqa: F811
    admin: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis failing between the general limit's check and the quota's.
    app = make_app(**QUOTA)
    strategy = app.extensions["vigil.limiter"].limiter
    general_hit = strategy.hit

    def failing_hit(limit: object, *identifiers: str, **options: object) -> bool:
        if identifiers[:1] == ("quota",):
            raise StorageError(ConnectionError("Redis went away"))
        return general_hit(limit, *identifiers, **options)

    monkeypatch.setattr(strategy, "hit", failing_hit)

    refused = client_for(app, admin.token).post(NOTIFICATIONS, json=notification_for(admin))

    assert refused.status_code == 503, refused.json
    assert set(refused.json) == ERROR_KEYS
    assert int(refused.headers["Retry-After"]) > 0
