"""`/api/v1/ws`: a WebSocket that streams events as JSON text messages.

Each message has a `type`: `vitals` (with `samples`, the newly stored ones: those stored
within WS_VITALS_COALESCE_SECONDS of each other are sent as one message, in order),
`notification.created`, `notification.processing`, `notification.analysed` or
`notification.read` (with `notification`, as the notifications API shows it), and
`alarm.raised`, `alarm.upgraded`, `alarm.acknowledged`, `alarm.silenced`, `alarm.escalated`
or `alarm.resolved` (with `alarm`, as the alarms API shows it).
`?types=vitals,notification,alarm` limits the stream to those families. The first message is
`{"type": "hello", "live": <whether events are flowing>}`; `{"type": "live", "live": …}`
follows whenever that changes (sent whatever `types` asked for).

`?patients=<uuid>,<uuid>` (at most WS_MAX_PATIENTS) subscribes to those patients: `vitals`
events then hold only their samples, and one that holds none is not sent; without it the
stream shows the whole ward. Alarms and notifications are sent whatever the subscription:
the station must not miss one. A client changes its subscription by sending
`{"subscribe": {"patients": [<uuid>, …]}}` (`null`: the whole ward), answered with
`{"type": "subscribed", "patients": [...] or null}`, after which every event is cut for the
new one; changes take effect at most once a second, the latest winning. A list that is
malformed, too long, or names an unknown patient closes the stream with 1008 and the reason
(monitor_app/live/patients.py). Each patient subscribed to is recorded in the audit trail.

The server pings each client every WS_PING_SECONDS (simple-websocket's heartbeat) and drops
one that has not answered the last ping by the next, with 1008 "Ping/Pong timeout".

The handshake is signed in like any request (the dashboard's cookie, or a bearer token) and
refused from another site's page. The worker re-checks its streams' sessions and tokens
every WS_SESSION_CHECK_SECONDS, in one round for them all (monitor_app/live/session_watch.py),
and a stream closes with 1008 "session ended" once its own no longer holds.

Other client messages are discarded; one longer than a subscribe message for WS_MAX_PATIENTS
patients (monitor_app/config.py ws_client_message_bytes) closes the stream with 1009, and a
flood of messages with 1008 "this stream takes no messages".
"""

from __future__ import annotations

import json
import logging
import queue
import time
import uuid
from dataclasses import dataclass

from flask import Blueprint, current_app, request
from simple_websocket import ConnectionClosed, Server
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import Forbidden, ServiceUnavailable

from monitor_app.audit.recorder import record_request, record_request_per_patient
from monitor_app.auth.authenticate import Credential, request_credential
from monitor_app.extensions import sock
from monitor_app.live.hub import CLOSE, Subscription, TooManyClientsError, event_hub
from monitor_app.live.patients import (
    Subscribe,
    SubscriptionError,
    check_known,
    patients_from_query,
    subscribe_message,
)
from monitor_app.live.seats import seat_limits
from monitor_app.live.session_watch import session_watch
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.principal import current_principal, require_principal
from shared.auth.roles import Scope
from shared.request_deadline import lift_deadline
from shared.web_security import same_origin

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__)

EVENT_FAMILIES = frozenset({"vitals", "notification", "alarm"})
# How often the loop looks whether the client went away while no event arrives.
IDLE_CHECK_SECONDS = 1.0
# RFC 6455 close codes.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
SESSION_ENDED = "session ended"
# Client messages are discarded; more than this many between two wakes of the stream (at
# most IDLE_CHECK_SECONDS apart) close it: a real client sends none.
CLIENT_MESSAGES_PER_WAKE = 100
CLIENT_FLOOD = "this stream takes no messages"
# A client's subscription changes at most this often (each checks the patients and writes
# the audit trail); one sent sooner waits, and a newer one replaces it.
SUBSCRIBE_EVERY_SECONDS = 1.0
AUDIT_DOWN = "cannot record the subscription now; reconnect"


@bp.before_request
def refuse_other_sites() -> None:
    """A browser sends the dashboard's cookie with a WebSocket opened by any site's page;
    the Origin it sets tells them apart (clients that are not browsers send none)."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.host):
        raise Forbidden("This stream may only be opened from Vigil's own pages.")


@bp.before_request
def refuse_without_a_seat() -> None:
    """No seat for this caller: 503 at the handshake. A stream refused after the upgrade
    (1013, below, when two handshakes race for the last seat) leaves simple-websocket's
    reader thread behind until the next ping, waiting for the client's close."""
    principal = current_principal()
    if principal is None:
        return  # the view's sign-in check answers
    refusal = event_hub().refusal(principal, seat_limits(current_app.config))
    if refusal is not None:
        raise ServiceUnavailable(refusal, retry_after=5)


def _requested_types() -> frozenset[str] | None:
    raw = request.args.get("types")
    if not raw:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


@dataclass(slots=True)
class ClientMessages:
    """What a client sent since the stream last looked: how many, and its newest subscribe
    message."""

    count: int = 0
    subscribe: Subscribe | None = None


def _read_client_messages(ws: Server, limit: int) -> ClientMessages:
    """Read what the client sent (small messages: SOCK_SERVER_OPTIONS refuses larger ones);
    unread, they would pile up in the connection for as long as it lasts. Stops at a flood
    (more than CLIENT_MESSAGES_PER_WAKE). Raises SubscriptionError at a bad subscribe."""
    read = ClientMessages()
    while read.count <= CLIENT_MESSAGES_PER_WAKE:
        text = ws.receive(timeout=0)
        if text is None:
            break
        read.count += 1
        read.subscribe = subscribe_message(text, limit) or read.subscribe
    return read


def _audit(
    types: frozenset[str] | None,
    patients: frozenset[uuid.UUID] | None,
    before: frozenset[uuid.UUID] | None = frozenset(),
) -> None:
    """Record a subscription: the whole ward, or each patient it adds to `before`."""
    detail = {"types": sorted(types or EVENT_FAMILIES)}
    if patients is None:
        if before is not None:
            record_request(AuditAction.LIVE_SUBSCRIBED, detail=detail)
        return
    added = patients - before if before is not None else patients
    if added:
        record_request_per_patient(
            AuditAction.LIVE_SUBSCRIBED, added, detail={**detail, "patients": len(patients)}
        )


def _subscribed_notice(patients: frozenset[uuid.UUID] | None) -> str:
    listed = None if patients is None else sorted(str(patient) for patient in patients)
    return json.dumps({"type": "subscribed", "patients": listed})


@sock.route("/ws", bp=bp)
@signed_in(scope=Scope.PATIENTS_READ)
def stream(ws: Server) -> None:
    """Stream events until the client leaves or the server stops."""
    # Signed in and upgraded: a stream lasts as long as the client watches.
    lift_deadline()
    types = _requested_types()
    if types is not None and not types <= EVENT_FAMILIES:
        ws.close(POLICY_VIOLATION, f"unknown types; expected some of {sorted(EVENT_FAMILIES)}")
        return
    max_patients = current_app.config["WS_MAX_PATIENTS"]
    try:
        patients = patients_from_query(request.args.get("patients"), max_patients)
    except SubscriptionError as refusal:
        ws.close(POLICY_VIOLATION, str(refusal))
        return
    principal = require_principal()
    credential = request_credential(principal)
    if credential is None:
        ws.close(POLICY_VIOLATION, SESSION_ENDED)
        return
    hub, watch = event_hub(), session_watch()
    try:
        subscription = hub.subscribe(
            types, principal, seat_limits(current_app.config), patients=patients
        )
    except TooManyClientsError as refusal:
        ws.close(TRY_AGAIN_LATER, str(refusal))
        return
    watch.watch(credential)
    try:
        if _admitted(ws, types, patients):
            _serve(ws, subscription, credential, types, patients)
    except ConnectionClosed:
        pass
    finally:
        watch.unwatch(credential)
        hub.unsubscribe(subscription)


def _admitted(
    ws: Server,
    types: frozenset[str] | None,
    patients: frozenset[uuid.UUID] | None,
    before: frozenset[uuid.UUID] | None = frozenset(),
) -> bool:
    """Whether the stream may show `patients` (None: the whole ward) instead of `before`:
    each is a known patient, and the trail records it. If not, the stream is closed with why.
    """
    try:
        if patients is not None:
            check_known(patients)
        _audit(types, patients, before)
    except SubscriptionError as refusal:
        ws.close(POLICY_VIOLATION, str(refusal))
        return False
    except SQLAlchemyError:
        log.warning("could not check or record a stream's subscription", exc_info=True)
        ws.close(TRY_AGAIN_LATER, AUDIT_DOWN)
        return False
    return True


def _serve(
    ws: Server,
    subscription: Subscription,
    credential: Credential,
    types: frozenset[str] | None,
    patients: frozenset[uuid.UUID] | None,
) -> None:
    """Send the subscription's events, re-check the session, and apply subscribe messages."""
    hub, watch = event_hub(), session_watch()
    max_patients = current_app.config["WS_MAX_PATIENTS"]
    check_every = current_app.config["WS_SESSION_CHECK_SECONDS"]
    pending: Subscribe | None = None
    next_change = time.monotonic()
    ws.send(json.dumps({"type": "hello", "live": hub.connected}))
    while ws.connected:
        try:
            message = subscription.messages.get(timeout=min(IDLE_CHECK_SECONDS, check_every))
        except queue.Empty:
            message = None
        # Signed out, gone idle, disabled or revoked since the handshake: stop here.
        try:
            holds = watch.holds(credential, check_every)
        except SQLAlchemyError:
            log.warning("could not re-check the streams' sessions", exc_info=True)
            ws.close(TRY_AGAIN_LATER, "cannot check the session now; reconnect")
            return
        if not holds:
            ws.close(POLICY_VIOLATION, SESSION_ENDED)
            return
        try:
            sent = _read_client_messages(ws, max_patients)
        except SubscriptionError as refusal:
            ws.close(POLICY_VIOLATION, str(refusal))
            return
        if sent.count > CLIENT_MESSAGES_PER_WAKE:
            # Flooding: each wait lets them pile up again (about a second's worth).
            ws.close(POLICY_VIOLATION, CLIENT_FLOOD)
            return
        pending = sent.subscribe or pending
        if pending is not None and time.monotonic() >= next_change:
            if not _admitted(ws, types, pending.patients, before=patients):
                return
            patients = pending.patients
            hub.resubscribe(subscription, patients, _subscribed_notice(patients))
            pending, next_change = None, time.monotonic() + SUBSCRIBE_EVERY_SECONDS
        if message is None:
            continue
        if message is CLOSE:
            ws.close(TRY_AGAIN_LATER, "stream ended; reconnect")
            return
        ws.send(message)
