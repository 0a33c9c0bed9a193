"""Live events and cache generations, on Redis.

Whoever changes data (data_app storing samples and raising alerts, monitor_app marking a
notification read, the worker storing an analysis) publishes one event on the namespace's
channel; every monitor_app worker relays it to its WebSocket clients. The same call bumps a
generation counter per kind of data, which monitor_app's cache keys include, so a change made
by any process invalidates every cached read of that kind at once.

Redis being down never fails the caller: the change is already committed to the database;
only the live update is lost (and the cache, being down too, serves nothing stale).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import redis

log = logging.getLogger(__name__)

# Kinds of cached reads: data_app bumps PATIENTS with a batch that brings a new patient.
PATIENTS = "patients"
NOTIFICATIONS = "notifications"

# A publish or a generation read waits at most this long for a Redis that is down.
REDIS_TIMEOUT_SECONDS = 1.0


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


class Events:
    """Publishes events and reads the cache generations of one Vigil namespace."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.redis = redis_client(redis_url)
        self.namespace = namespace
        self.channel = f"{namespace}:events"

    def generation_key(self, kind: str) -> str:
        return f"{self.namespace}:generation:{kind}"

    def publish(
        self, event_type: str, data: Mapping[str, Any], invalidates: Iterable[str] = ()
    ) -> bool:
        """Invalidate the cached reads of `invalidates`, then publish. False if Redis failed."""
        payload = json.dumps({"type": event_type, **data}, default=str)
        return self.publish_encoded(event_type, payload, invalidates)

    def publish_encoded(
        self, event_type: str, payload: str | bytes, invalidates: Iterable[str] = ()
    ) -> bool:
        """`publish` an event already encoded as a JSON object whose `type` is `event_type`."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for kind in invalidates:
                    pipe.incr(self.generation_key(kind))
                pipe.publish(self.channel, payload)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning(
                "could not publish event", extra={"event_type": event_type, "error": str(exc)}
            )
            return False
        return True

    def generation(self, kind: str) -> int:
        """The current generation of `kind`; raises redis.RedisError when Redis is down."""
        return int(self.redis.get(self.generation_key(kind)) or 0)
