"""Vitals alerts are analysed on a queue of their own, ahead of whatever the API has queued:
routing from each app and the sweeper, and a real worker draining a flood of API notifications
while an alert arrives."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select, update

from data_app import create_app as create_data_app
from data_app.services import DataService
from monitor_app import create_app as create_monitor_app
from shared.analysis_queue import Origin, celery_config, consumed_queues, queue_name
from shared.config import DEFAULT_WARD_ID, RedisRole
from shared.db import db, migrate, utcnow
from shared.models import Notification
from shared.notifications import add_notification, analysis_queue
from shared.redis_acl import _RULES
from shared.sample import VitalsSample
from tests.auth import create_account
from tests.bearer import client_with
from tests.helpers import CRITICAL_VITALS as CRITICAL
from tests.test_analysis_pipeline import stack, start_worker  # noqa: F401 (a fixture)

NS = "vigil"
FLOOD = 300
# The test worker's --concurrency (devserver.processes): with worker_prefetch_multiplier 1 it
# holds at most this many tasks, all that may still finish ahead of an alert once it is queued.
WORKER_CONCURRENCY = 4


def critical_samples(count: int = 1) -> list[VitalsSample]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    patient = uuid.uuid4()
    return [
        VitalsSample(
            patient_uuid=patient,
            patient_name="Maria Sokolova",
            timestamp=start + timedelta(seconds=5 * i),
            **CRITICAL,
        )
        for i in range(count)
    ]


def queue_length(admin: redis.Redis, namespace: str, origin: Origin) -> int:
    return admin.llen(f"{namespace}:celery:{queue_name(namespace, origin)}")


# Units: the settings both sides share.


def test_the_worker_consumes_the_alert_queue_first_in_a_fixed_order() -> None:
    config = celery_config("redis://127.0.0.1:6379/0", NS)
    assert [q.name for q in config["task_queues"]] == consumed_queues(NS)
    assert consumed_queues(NS) == [f"{NS}.analysis.alerts", f"{NS}.analysis"]
    # kombu's default, round_robin, would give the API queue every other fetch.
    assert config["broker_transport_options"]["queue_order_strategy"] == "priority"
    assert config["task_default_queue"] == queue_name(NS, Origin.API)


@pytest.mark.parametrize("origin", list(Origin))
def test_every_queue_is_a_key_the_queue_user_may_touch(origin: Origin) -> None:
    config = celery_config("redis://127.0.0.1:6379/0", NS)
    key = config["broker_transport_options"]["global_keyprefix"] + queue_name(NS, origin)
    patterns = [p.format(ns=NS) for p in _RULES[RedisRole.QUEUE][0]]
    assert any(fnmatchcase(key, pattern) for pattern in patterns)
    # ...and no other role's.
    for role, (keys, _channels, _commands) in _RULES.items():
        if role is not RedisRole.QUEUE:
            assert not any(fnmatchcase(key, p.format(ns=NS)) for p in keys), role


# Routing, against the real Redis (no worker: the messages stay where they were sent).


@pytest.fixture
def apps(tmp_path: Path, redis_settings: dict[str, str]) -> Iterator[dict[str, Flask]]:
    """monitor_app, data_app and the worker's app on one database and the test's namespace."""
    settings = {
        **redis_settings,
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
    }
    monitor = create_monitor_app({**settings, "RATELIMIT_ENABLED": False})
    migrate(db.engine(monitor))
    data = create_data_app({**settings, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    try:
        yield {"monitor": monitor, "data": data, "settings": settings}
    finally:
        for app in (monitor, data):
            db.engine(app).dispose()


def test_an_alert_goes_to_the_alert_queue_and_an_api_notification_to_the_other(
    apps, redis_admin, redis_settings
) -> None:
    namespace = redis_settings["REDIS_NAMESPACE"]
    admin = create_account(db.sessionmaker(apps["monitor"]))
    response = client_with(apps["monitor"], admin.token).post(
        "/api/v1/notifications",
        json={"user_id": str(DEFAULT_WARD_ID), "title": "Check", "text": "Pump occluded"},
    )
    assert response.status_code == 201, response.json
    assert queue_length(redis_admin, namespace, Origin.API) == 1
    assert queue_length(redis_admin, namespace, Origin.ALERT) == 0

    DataService(apps["data"]).store(critical_samples())
    assert queue_length(redis_admin, namespace, Origin.ALERT) == 1
    assert queue_length(redis_admin, namespace, Origin.API) == 1


def test_the_sweeper_requeues_each_notification_on_its_own_queue(
    apps, redis_admin, redis_settings
) -> None:
    namespace = redis_settings["REDIS_NAMESPACE"]
    with db.sessionmaker(apps["monitor"]).begin() as session:
        for sender in (None, uuid.uuid4(), uuid.uuid4()):
            add_notification(
                session, user_id=DEFAULT_WARD_ID, title="Lost", text="x", sender_id=sender
            )
        session.execute(
            update(Notification).values(status_changed_at=utcnow() - timedelta(hours=1))
        )
    # One sweep by the worker's app, in a process of its own: imported here, its shared tasks
    # would join every Celery app that later tests make.
    sweep = (
        "from worker_app import create_app\n"
        "from worker_app.tasks import sweep_stale_notifications\n"
        "with create_app().app_context():\n"
        "    print(sweep_stale_notifications())\n"
    )
    env = {**os.environ, **apps["settings"], "AI_API_TOKEN": "unused", "TESTING": "true"}
    done = subprocess.run(  # noqa: S603 (this interpreter, our code)
        [sys.executable, "-c", sweep], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "3"
    assert queue_length(redis_admin, namespace, Origin.ALERT) == 1
    assert queue_length(redis_admin, namespace, Origin.API) == 2


# The flood: a real worker, Redis and analyser.


@pytest.mark.integration
def test_an_alert_is_analysed_ahead_of_a_flood_of_api_notifications(stack, wait_for) -> None:  # noqa: F811
    settings = {**stack["settings"], "TESTING": True}
    monitor = create_monitor_app({**settings, "RATELIMIT_ENABLED": False})
    data = create_data_app({**settings, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    sessions = db.sessionmaker(monitor)
    sender = create_account(sessions).id
    try:
        # Queued the way the API queues them, but without its per-user quota.
        with sessions.begin() as session:
            flood = [
                add_notification(
                    session,
                    user_id=DEFAULT_WARD_ID,
                    title=f"Flood {i}",
                    text="Routine check of infusion line",
                    sender_id=sender,
                ).id
                for i in range(FLOOD)
            ]
        assert analysis_queue(monitor).enqueue(flood) == FLOOD

        def analysed_flood() -> int:
            with sessions() as session:
                return session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.sender_id == sender, Notification.analysed_at.is_not(None))
                )

        start_worker(stack, wait_for)
        # The worker is busy with the flood when the alert arrives.
        wait_for(lambda: analysed_flood() >= 2 * WORKER_CONCURRENCY, timeout=60, message="flood")
        before_alert = analysed_flood()
        DataService(data).store(critical_samples())

        def alert_analysed_at() -> datetime | None:
            with sessions() as session:
                return session.scalar(
                    select(Notification.analysed_at).where(Notification.sender_id.is_(None))
                )

        analysed_at = wait_for(alert_analysed_at, timeout=60, message="the alert's analysis")
        with sessions() as session:
            ahead = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.sender_id == sender, Notification.analysed_at < analysed_at)
            )
        ahead -= before_alert
        print(f"flood notifications analysed after the alert was queued, before it: {ahead}")
        # At most what the worker already held, plus the few finishing while we counted.
        assert ahead <= 3 * WORKER_CONCURRENCY
        assert FLOOD - before_alert - ahead > FLOOD // 2
    finally:
        db.engine(monitor).dispose()
        db.engine(data).dispose()
