"""Relays the namespace's Redis channel to the WebSocket clients of this gunicorn worker.

Every process that changes data publishes on one channel (shared/events.py); each monitor_app
worker runs one subscriber thread, so a client sees every event whichever worker serves it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app

from monitor_app.live.seats import SeatLimits
from monitor_app.live.vitals import VITALS, VitalsCutter, VitalsGatherer
from monitor_app.notifications.services import may_see
from shared.auth.principal import Principal
from shared.background import BackgroundThread, backoff
from shared.config import RedisRole, redis_url
from shared.events import REDIS_TIMEOUT_SECONDS
from shared.telemetry import WEBSOCKET_CLIENTS

log = logging.getLogger(__name__)

# Sent to every client when events start or stop flowing, whatever types it asked for.
LIVE_STATUS = "live"
# Sent to a client's queue to end its stream (it fell too far behind, or we are stopping).
CLOSE = object()


class TooManyClientsError(RuntimeError):
    """This worker already streams to as many clients as it may (of this kind, or of this
    user); the message says which."""


@dataclass(eq=False)
class Subscription:
    """One client's queue of JSON texts, the types it asked for, and who it is: a client
    receives only the notifications its user may see. With `patients` (their uuids as the
    events write them), its `vitals` events hold only those patients' samples."""

    types: frozenset[str] | None
    viewer: Principal | None = None
    patients: frozenset[str] | None = None
    messages: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=1000))
    # Held while an event is chosen and queued, and while `patients` changes: an event
    # queued after the change was cut down for the new patients.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wants(self, event_type: str, event: dict[str, Any]) -> bool:
        if event_type == LIVE_STATUS:
            return True
        family = event_type.split(".", 1)[0]
        if self.types is not None and family not in self.types:
            return False
        if family == "notification":
            return self._may_see(event.get("notification"))
        return True

    def _may_see(self, notification: Any) -> bool:
        if self.viewer is None or not isinstance(notification, dict):
            return False
        try:
            recipient = uuid.UUID(str(notification["user_id"]))
            sender = notification.get("sender_id")
            sender_id = None if sender is None else uuid.UUID(str(sender))
        except (KeyError, ValueError):
            return False
        return may_see(self.viewer, recipient, sender_id)


class EventHub(BackgroundThread):
    """A background service: one Redis subscription, fanned out to local subscribers."""

    def __init__(
        self, redis_url: str, channel: str, max_clients: int, coalesce_seconds: float = 0.0
    ) -> None:
        super().__init__("event-hub")
        self.redis_url = redis_url
        self.channel = channel
        # Without the app's own (see seats.py): this many clients, whoever they are.
        self.seats = SeatLimits(max_clients)
        self.connected = False
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        # Connections in a row that failed; the wait before the next grows with it.
        self._failures = 0
        # Touched by the hub's own thread only.
        self._gathered = VitalsGatherer(coalesce_seconds)

    # -- subscribers ------------------------------------------------------------------------
    def subscribe(
        self,
        types: frozenset[str] | None = None,
        viewer: Principal | None = None,
        seats: SeatLimits | None = None,
        patients: frozenset[uuid.UUID] | None = None,
    ) -> Subscription:
        with self._lock:
            refusal = self._refusal(viewer, seats)
            if refusal is not None:
                raise TooManyClientsError(refusal)
            subscription = Subscription(types, viewer, _event_form(patients))
            self._subscriptions.add(subscription)
            WEBSOCKET_CLIENTS.inc()
            return subscription

    def refusal(self, viewer: Principal | None, seats: SeatLimits | None = None) -> str | None:
        """Why `viewer` would be refused a seat now; None if it would get one."""
        with self._lock:
            return self._refusal(viewer, seats)

    def _refusal(self, viewer: Principal | None, seats: SeatLimits | None) -> str | None:
        return (seats or self.seats).refusal(viewer, (s.viewer for s in self._subscriptions))

    def resubscribe(
        self, subscription: Subscription, patients: frozenset[uuid.UUID] | None, notice: str
    ) -> None:
        """Show `patients` (None: the whole ward) from now on; `notice` is queued first, so
        the client knows where the new subscription starts."""
        with subscription.lock:
            subscription.patients = _event_form(patients)
            self._queue(subscription, notice)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.discard(subscription)
                WEBSOCKET_CLIENTS.dec()

    @property
    def client_count(self) -> int:
        return len(self._subscriptions)

    def _receive(self, raw: bytes) -> None:
        """Gather a `vitals` event, or pass any other on after those gathered before it."""
        parsed = _parsed(raw)
        if parsed is None:
            return
        event_type, event, text = parsed
        if self._gathered.takes(event_type, event):
            self._gathered.add(event, text, time.monotonic())
            return
        self._send_gathered()
        self._deliver(event_type, event, text)

    def _send_gathered(self) -> None:
        cut = self._gathered.take()
        if cut is not None:
            self._deliver(VITALS, cut.event, cut=cut)

    def _fan_out(self, raw: bytes) -> None:
        """Pass one published event on to the subscribers, as it is."""
        parsed = _parsed(raw)
        if parsed is not None:
            self._deliver(*parsed)

    def _deliver(
        self,
        event_type: str,
        event: dict[str, Any],
        text: str | None = None,
        cut: VitalsCutter | None = None,
    ) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        # Parsed once; cut down and serialised once per distinct set of patients.
        if cut is None and event_type == VITALS:
            cut = VitalsCutter(event, text)
        elif cut is None and text is None:
            text = json.dumps(event)
        for subscription in subscriptions:
            with subscription.lock:
                if not subscription.wants(event_type, event):
                    continue
                message = text if cut is None else cut.for_patients(subscription.patients)
                if message is not None:
                    self._queue(subscription, message)

    def _queue(self, subscription: Subscription, message: str) -> None:
        try:
            subscription.messages.put_nowait(message)
        except queue.Full:
            # A client this far behind is better off reconnecting and re-reading the API.
            viewer = subscription.viewer
            log.warning(
                "dropped a live stream that fell behind",
                extra={"user_id": None if viewer is None else str(viewer.user_id)},
            )
            self.unsubscribe(subscription)
            _drain(subscription.messages)
            subscription.messages.put_nowait(CLOSE)

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """End every client's stream, then the subscription."""
        self._stop.set()
        with self._lock:
            subscriptions, self._subscriptions = list(self._subscriptions), set()
            WEBSOCKET_CLIENTS.dec(len(subscriptions))
        for subscription in subscriptions:
            subscription.messages.put(CLOSE)
        super().stop(timeout)

    def _setup(self) -> None:
        self._failures = 0

    def _work(self) -> float:
        """One connection: relay its events until stopped; after a Redis error, back off."""
        client = redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=5,
            health_check_interval=10,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            if not self.connected:
                log.info("live events connected", extra={"channel": self.channel})
                self._set_connected(True)
            self._failures = 0
            while not self._stop.is_set():
                wait = self._gathered.wait(1.0, time.monotonic())
                message = pubsub.get_message(timeout=wait)
                if message is not None and message["type"] == "message":
                    self._receive(message["data"])
                if self._gathered.due(time.monotonic()):
                    self._send_gathered()
        except redis.RedisError as exc:
            # What arrived before the connection broke is still news.
            self._send_gathered()
            if self.connected or self._failures == 0:
                log.warning("live events lost Redis; reconnecting", extra={"error": str(exc)})
            if self.connected:
                self._set_connected(False)
            self._failures += 1
            return backoff(self._failures)
        finally:
            pubsub.close()
            client.close()
        return 0.0

    def _teardown(self) -> None:
        self.connected = False

    def _set_connected(self, connected: bool) -> None:
        """Tell the clients, who were greeted with the old state, that it changed."""
        self.connected = connected
        self._deliver(LIVE_STATUS, {"type": LIVE_STATUS, "live": connected})


def _parsed(raw: bytes) -> tuple[str, dict[str, Any], str] | None:
    """A published event's type, content and text; None (logged) if it is not one."""
    text = raw.decode("utf-8", "replace")
    try:
        event = json.loads(text)
        event_type = str(event.get("type", ""))
    except (ValueError, AttributeError):
        log.warning("ignored a malformed event", extra={"event": text[:200]})
        return None
    return event_type, event, text


def _event_form(patients: frozenset[uuid.UUID] | None) -> frozenset[str] | None:
    """Patients' uuids as a `vitals` event's samples write them (data_app's str(uuid))."""
    return None if patients is None else frozenset(str(patient) for patient in patients)


def _drain(messages: queue.Queue) -> None:
    while True:
        try:
            messages.get_nowait()
        except queue.Empty:
            return


def init_event_hub(app: Flask) -> EventHub:
    config = app.config
    hub = EventHub(
        redis_url(config, RedisRole.EVENTS),
        f"{config['REDIS_NAMESPACE']}:events",
        config["WS_MAX_CLIENTS"],
        config["WS_VITALS_COALESCE_SECONDS"],
    )
    app.extensions["vigil.event_hub"] = hub
    return hub


def event_hub() -> EventHub:
    return current_app.extensions["vigil.event_hub"]
