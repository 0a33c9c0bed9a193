"""The queues of notifications waiting for AI analysis: Celery on Redis.

monitor_app and data_app only enqueue (by task name, without importing the worker); the
worker (worker_app) consumes with the same settings.

Two queues: vitals alerts (data_app's, which have no sender) on `{ns}.analysis.alerts`, and
everything sent through the API on `{ns}.analysis`, so that a flood of API notifications cannot
delay a hypoxia alert's analysis. A Redis worker consuming several queues takes the next message
with one BRPOP over all their lists; kombu's default `round_robin` order rotates which list that
BRPOP names first, so a full API queue would still get every other turn. The `priority` order
always names the alert queue first, and Redis's BRPOP pops from the first non-empty list it is
given: while an alert is waiting, no API task is taken. What may still run ahead of an alert is
only what the worker had already taken (its prefetch: concurrency x worker_prefetch_multiplier).
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from celery import Celery
from kombu import Queue

log = logging.getLogger(__name__)

ANALYSE_TASK = "vigil.analyse_notification"
SWEEP_TASK = "vigil.sweep_stale_notifications"


class Origin(StrEnum):
    """Who made a notification, which decides its analysis queue."""

    ALERT = "alert"  # data_app's vitals alerts (no sender)
    API = "api"  # sent by a user or an integration through monitor_app


def queue_name(namespace: str, origin: Origin = Origin.API) -> str:
    if origin is Origin.ALERT:
        return f"{namespace}.analysis.alerts"
    return f"{namespace}.analysis"


def consumed_queues(namespace: str) -> list[str]:
    """The worker's queues, in the order its BRPOP names them: the alert queue first."""
    return [queue_name(namespace, Origin.ALERT), queue_name(namespace, Origin.API)]


def broker_ssl(redis_url: str) -> dict[str, Any] | None:
    """Kombu's TLS options for a rediss:// URL: the server's certificate checked, against
    the URL's ssl_ca_certs if it names one; None for redis://."""
    parts = urlsplit(redis_url)
    if parts.scheme != "rediss":
        return None
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    ca_file = dict(parse_qsl(parts.query)).get("ssl_ca_certs")
    if ca_file:
        options["ssl_ca_certs"] = ca_file
    return options


def celery_config(redis_url: str, namespace: str) -> dict[str, Any]:
    """Settings both sides of the queue must agree on."""
    return {
        "broker_url": redis_url,
        # Kombu reads rediss://'s ssl_* query (shared.config.redis_url puts the checks there)
        # but, given neither those nor this, would take TLS without verifying the server.
        "broker_use_ssl": broker_ssl(redis_url),
        "task_default_queue": queue_name(namespace),
        # What a worker consumes (unless given -Q), in this order; see the module docstring.
        "task_queues": [Queue(name, routing_key=name) for name in consumed_queues(namespace)],
        # JSON only, both ways: a pickled message planted in the queue is refused, never run.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_accept_content": ["json"],
        # No remote control (its pidbox is a broadcast channel any broker user could send
        # commands on): Vigil never inspects or controls its workers over the broker.
        "worker_enable_remote_control": False,
        # Acknowledged only once done: a worker killed mid-task leaves the message to be
        # delivered again (after the visibility timeout) instead of losing it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            "visibility_timeout": 300,
            "global_keyprefix": f"{namespace}:celery:",
            # Each fetch names the queues in task_queues' order, alerts first, never rotated.
            "queue_order_strategy": "priority",
        },
        "broker_connection_retry_on_startup": True,
        # Enqueueing must not hang a request or the consumer when Redis is down: the
        # notification stays pending and the sweeper enqueues it later.
        "broker_connection_timeout": 2,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0.2,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "redis_socket_connect_timeout": 2,
        "redis_socket_timeout": 5,
        "worker_hijack_root_logger": False,
        "task_ignore_result": True,
    }


class AnalysisQueue:
    """Enqueues notifications for analysis; a failure is logged, never raised."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.namespace = namespace
        self.celery = Celery("vigil-enqueue", set_as_current=False)
        self.celery.conf.update(celery_config(redis_url, namespace))

    def enqueue(self, notification_ids: Iterable[uuid.UUID], origin: Origin = Origin.API) -> int:
        """Send one analysis task per id to `origin`'s queue; returns how many were sent."""
        queue = queue_name(self.namespace, origin)
        sent = 0
        for notification_id in notification_ids:
            try:
                self.celery.send_task(ANALYSE_TASK, args=[str(notification_id)], queue=queue)
            except Exception as exc:  # kombu raises several kinds when Redis is unreachable
                log.warning(
                    "could not enqueue analysis; the sweeper will retry",
                    extra={"notification_id": str(notification_id), "error": str(exc)},
                )
            else:
                sent += 1
        return sent
