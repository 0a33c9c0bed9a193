"""Relays the namespace's Redis channel to the WebSocket clients of this gunicorn worker.

Every process that changes data publishes on one channel (shared/events.py); each monitor_app
worker runs one subscriber thread, so a client sees every event whichever worker serves it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app

from monitor_app.live.seats import SeatLimits
from monitor_app.notifications.services import may_see
from shared.auth.principal import Principal
from shared.background import BackgroundThread, backoff
from shared.config import RedisRole, redis_url
from shared.events import REDIS_TIMEOUT_SECONDS
from shared.telemetry import WEBSOCKET_CLIENTS

log = logging.getLogger(__name__)

# Sent to every client when events start or stop flowing, whatever types it asked for.
LIVE_STATUS = "live"
VITALS = "vitals"
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

    def __init__(self, redis_url: str, channel: str, max_clients: int) -> None:
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

    def _fan_out(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        try:
            event = json.loads(text)
            event_type = str(event.get("type", ""))
        except (ValueError, AttributeError):
            log.warning("ignored a malformed event", extra={"event": text[:200]})
            return
        with self._lock:
            subscriptions = list(self._subscriptions)
        # Parsed once; cut down and serialised once per distinct set of patients.
        cut = _VitalsCutter(event, text) if event_type == VITALS else None
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
                message = pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    self._fan_out(message["data"])
        except redis.RedisError as exc:
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
        self._fan_out(json.dumps({"type": LIVE_STATUS, "live": connected}).encode())


def _event_form(patients: frozenset[uuid.UUID] | None) -> frozenset[str] | None:
    """Patients' uuids as a `vitals` event's samples write them (data_app's str(uuid))."""
    return None if patients is None else frozenset(str(patient) for patient in patients)


class _VitalsCutter:
    """One `vitals` event, as each set of patients is to receive it."""

    def __init__(self, event: dict[str, Any], text: str) -> None:
        self.event = event
        self.text = text
        samples = event.get("samples")
        self.samples = samples if isinstance(samples, list) else []
        self._texts: dict[frozenset[str], str | None] = {}
        # Each patient's samples with their places in the event: a subscription's are found
        # through its patients, not by reading every sample again for every subscription
        # (a thousand dashboards of ten beds each, on a ward of thousands).
        self._by_patient: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for place, sample in enumerate(self.samples):
            patient = _patient_of(sample) if isinstance(sample, dict) else None
            if patient is not None:
                self._by_patient.setdefault(patient, []).append((place, sample))

    def for_patients(self, patients: frozenset[str] | None) -> str | None:
        """The event's text with only `patients`' samples (all: the text as published);
        None when it has none of theirs."""
        if patients is None:
            return self.text
        if patients not in self._texts:
            shown = (
                patients & self._by_patient.keys()
                if len(patients) > len(self._by_patient)
                else (patient for patient in patients if patient in self._by_patient)
            )
            wanted = sorted(entry for patient in shown for entry in self._by_patient[patient])
            if not wanted:
                text = None
            elif len(wanted) == len(self.samples):
                text = self.text
            else:
                text = json.dumps({**self.event, "samples": [sample for _, sample in wanted]})
            self._texts[patients] = text
        return self._texts[patients]


def _patient_of(sample: dict[str, Any]) -> str | None:
    patient = sample.get("patient_uuid")
    return patient if isinstance(patient, str) else None


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
    )
    app.extensions["vigil.event_hub"] = hub
    return hub


def event_hub() -> EventHub:
    return current_app.extensions["vigil.event_hub"]
