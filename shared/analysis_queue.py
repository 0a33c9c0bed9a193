"""The queue of notifications waiting for AI analysis: Celery on Redis.

monitor_app and data_app only enqueue (by task name, without importing the worker); the
worker (worker_app) consumes with the same settings.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from celery import Celery

log = logging.getLogger(__name__)

ANALYSE_TASK = "vigil.analyse_notification"
SWEEP_TASK = "vigil.sweep_stale_notifications"


def queue_name(namespace: str) -> str:
    return f"{namespace}.analysis"


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
        self.celery = Celery("vigil-enqueue", set_as_current=False)
        self.celery.conf.update(celery_config(redis_url, namespace))

    def enqueue(self, notification_ids: Iterable[uuid.UUID]) -> int:
        """Send one analysis task per id; returns how many were sent."""
        sent = 0
        for notification_id in notification_ids:
            try:
                self.celery.send_task(ANALYSE_TASK, args=[str(notification_id)])
            except Exception as exc:  # kombu raises several kinds when Redis is unreachable
                log.warning(
                    "could not enqueue analysis; the sweeper will retry",
                    extra={"notification_id": str(notification_id), "error": str(exc)},
                )
            else:
                sent += 1
        return sent
