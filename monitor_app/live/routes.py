"""`/api/v1/ws`: a WebSocket that streams events as JSON text messages.

Each message has a `type`: `vitals` (with `samples`, the newly stored ones),
`notification.created`, `notification.processing`, `notification.analysed` or
`notification.read` (with `notification`, as the notifications API shows it), and
`alarm.raised`, `alarm.upgraded`, `alarm.acknowledged`, `alarm.silenced`, `alarm.escalated`
or `alarm.resolved` (with `alarm`, as the alarms API shows it).
`?types=vitals,notification,alarm` limits the stream to those families. The first message is
`{"type": "hello", "live": <whether events are flowing>}`; `{"type": "live", "live": …}`
follows whenever that changes (sent whatever `types` asked for).

The handshake is signed in like any request (the dashboard's cookie, or a bearer token) and
refused from another site's page. The stream re-checks its session or token every
WS_SESSION_CHECK_SECONDS and closes with 1008 "session ended" once it no longer holds.

The stream takes no messages: what a client sends is discarded, a message over
WS_CLIENT_MESSAGE_BYTES (monitor_app/config.py) closes it with 1009, and a flood of them
with 1008 "this stream takes no messages".
"""

from __future__ import annotations

import json
import logging
import queue
import time

from flask import Blueprint, current_app, request
from simple_websocket import ConnectionClosed, Server
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import Forbidden, ServiceUnavailable

from monitor_app.audit.recorder import record_request
from monitor_app.auth.authenticate import still_signed_in
from monitor_app.extensions import sock
from monitor_app.live.hub import CLOSE, TooManyClientsError, event_hub
from monitor_app.live.seats import seat_limits
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.principal import current_principal, require_principal
from shared.auth.roles import Scope
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


def _discard_client_messages(ws: Server) -> int:
    """Drop what the client sent (small messages: SOCK_SERVER_OPTIONS refuses larger ones);
    unread, they would pile up in the connection for as long as it lasts. How many."""
    count = 0
    while ws.receive(timeout=0) is not None:
        count += 1
    return count


@sock.route("/ws", bp=bp)
@signed_in(scope=Scope.PATIENTS_READ)
def stream(ws: Server) -> None:
    """Stream events until the client leaves or the server stops."""
    types = _requested_types()
    if types is not None and not types <= EVENT_FAMILIES:
        ws.close(POLICY_VIOLATION, f"unknown types; expected some of {sorted(EVENT_FAMILIES)}")
        return
    principal = require_principal()
    hub = event_hub()
    try:
        subscription = hub.subscribe(types, principal, seat_limits(current_app.config))
    except TooManyClientsError as refusal:
        ws.close(TRY_AGAIN_LATER, str(refusal))
        return
    record_request(AuditAction.LIVE_SUBSCRIBED, detail={"types": sorted(types or EVENT_FAMILIES)})
    check_every = current_app.config["WS_SESSION_CHECK_SECONDS"]
    next_check = time.monotonic() + check_every
    try:
        ws.send(json.dumps({"type": "hello", "live": hub.connected}))
        while ws.connected:
            try:
                message = subscription.messages.get(timeout=min(IDLE_CHECK_SECONDS, check_every))
            except queue.Empty:
                message = None
            if time.monotonic() >= next_check:
                # Signed out, gone idle, disabled or revoked since the handshake: stop here.
                try:
                    holds = still_signed_in(principal)
                except SQLAlchemyError:
                    log.warning("could not re-check a stream's session", exc_info=True)
                    ws.close(TRY_AGAIN_LATER, "cannot check the session now; reconnect")
                    return
                if not holds:
                    ws.close(POLICY_VIOLATION, SESSION_ENDED)
                    return
                next_check = time.monotonic() + check_every
            if _discard_client_messages(ws) > CLIENT_MESSAGES_PER_WAKE:
                # Flooding: each wait lets them pile up again (about a second's worth).
                ws.close(POLICY_VIOLATION, CLIENT_FLOOD)
                return
            if message is None:
                continue
            if message is CLOSE:
                ws.close(TRY_AGAIN_LATER, "stream ended; reconnect")
                return
            ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        hub.unsubscribe(subscription)
