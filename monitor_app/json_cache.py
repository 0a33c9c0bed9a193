"""monitor_app's cache in Redis: JSON values only, each with a TTL.

Whoever can write a key can choose what a reader gets, so nothing read back is ever
unpickled (Flask-Caching's RedisCache would unpickle it: code execution for anyone who can
SET a key). A value that is not JSON is a miss, logged once: the miss stores a fresh value
over it. Every key expires, so maxmemory's volatile-lru can evict any of them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.events import redis_client

log = logging.getLogger(__name__)


class JsonCache:
    """GET and SET of JSON values under `prefix`; raises redis.RedisError when Redis is down."""

    def __init__(self, redis_url: str, prefix: str, default_timeout: int) -> None:
        if default_timeout < 1:
            raise ValueError("every cached value needs a TTL of at least 1 s")
        self.redis = redis_client(redis_url)
        self.prefix = prefix
        self.default_timeout = default_timeout

    def get(self, key: str) -> Any:
        """The value under `key`; None when there is none, or it is not JSON."""
        raw = self.redis.get(self.prefix + key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # UnicodeDecodeError included
            log.warning("ignored a cached value that is not JSON", extra={"key": key})
            return None

    def set(self, key: str, value: Any, timeout: int | None = None) -> None:
        """Store `value` (JSON-serialisable) for `timeout` seconds (at least 1)."""
        ttl = max(1, int(timeout or self.default_timeout))
        self.redis.set(self.prefix + key, json.dumps(value, separators=(",", ":")), ex=ttl)
