"""`/api/v1/ws`: a WebSocket that streams events as JSON text messages.

Each message has a `type`: `vitals` (with `samples`, the newly stored ones),
`notification.created`, `notification.processing`, `notification.analysed` or
`notification.read` (with `notification`, as the notifications API shows it).
`?types=vitals,notification` limits the stream to those families. The first message is
`{"type": "hello", "live": <whether events are flowing>}`; `{"type": "live", "live": …}`
follows whenever that changes (sent whatever `types` asked for).
"""

from __future__ import annotations

import json
import queue

from flask import Blueprint, request
from simple_websocket import ConnectionClosed, Server

from monitor_app.audit.recorder import record_request
from monitor_app.extensions import sock
from monitor_app.live.hub import CLOSE, TooManyClientsError, event_hub
from shared.audit import AuditAction
from shared.auth.policy import signed_in
from shared.auth.principal import require_principal
from shared.auth.roles import Scope

bp = Blueprint("live", __name__)

EVENT_FAMILIES = frozenset({"vitals", "notification"})
# How often the loop looks whether the client went away while no event arrives.
IDLE_CHECK_SECONDS = 1.0
# RFC 6455 close codes.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


def _requested_types() -> frozenset[str] | None:
    raw = request.args.get("types")
    if not raw:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


@sock.route("/ws", bp=bp)
@signed_in(scope=Scope.PATIENTS_READ)
def stream(ws: Server) -> None:
    """Stream events until the client leaves or the server stops."""
    types = _requested_types()
    if types is not None and not types <= EVENT_FAMILIES:
        ws.close(POLICY_VIOLATION, f"unknown types; expected some of {sorted(EVENT_FAMILIES)}")
        return
    hub = event_hub()
    try:
        subscription = hub.subscribe(types, require_principal())
    except TooManyClientsError:
        ws.close(TRY_AGAIN_LATER, "too many clients on this worker; retry shortly")
        return
    record_request(AuditAction.LIVE_SUBSCRIBED, detail={"types": sorted(types or EVENT_FAMILIES)})
    try:
        ws.send(json.dumps({"type": "hello", "live": hub.connected}))
        while ws.connected:
            try:
                message = subscription.messages.get(timeout=IDLE_CHECK_SECONDS)
            except queue.Empty:
                continue
            if message is CLOSE:
                ws.close(TRY_AGAIN_LATER, "stream ended; reconnect")
                return
            ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        hub.unsubscribe(subscription)
