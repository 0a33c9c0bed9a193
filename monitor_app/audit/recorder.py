"""Records an audit event for every request to a route that declares an action, and for
every request the access check refuses (denied), after the response is made.

Views declare what they do with `@audited(AuditAction.…)` beside their access. The event is
written in a transaction of its own, after the view's; if it cannot be written, the caller
gets a 500 instead of the data, so no read of patient data goes unrecorded. Every read writes
one, so it is one Core insert on a plain connection, not an ORM object flushed by a session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from shared.audit import AuditAction, Outcome, event_values, insert_events
from shared.auth.policy import view_declaration
from shared.auth.principal import current_principal
from shared.db import db
from shared.errors import error_body
from shared.request_checks import storable

log = logging.getLogger(__name__)

ATTRIBUTE = "__vigil_audit__"
F = TypeVar("F", bound=Callable)


def audited(action: AuditAction) -> Callable[[F], F]:
    """Record `action` for each request to this view, allowed or denied."""

    def decorate(view: F) -> F:
        setattr(view, ATTRIBUTE, action)
        return view

    return decorate


def add_audit_detail(**detail: Any) -> None:
    """Say more in the current request's audit record: what a change was, and why."""
    g.audit_detail = {**g.get("audit_detail", {}), **detail}


def add_audit_patient(patient_uuid: uuid.UUID) -> None:
    """Name the patient the current request concerned, where its URL does not."""
    g.audit_patient_uuid = patient_uuid


def register_audit(app: Flask) -> None:
    app.after_request(_record_response)


def _record_response(response: Response) -> Response:
    if request.endpoint is None or request.method == "OPTIONS":
        return response
    action = view_declaration(current_app, request.endpoint, request.method, ATTRIBUTE)
    # Popped whatever happens: the tests' clients share one app context, and so `g`.
    extra = g.pop("audit_detail", {})
    denied = bool(g.get("access_denied"))
    if action is None and not denied:
        return response
    # The view has answered: its session's connection goes back before the audit row takes one.
    db.release()
    try:
        record_request(
            action or AuditAction.REQUEST,
            Outcome.DENIED if denied else Outcome.ALLOWED,
            detail={"method": request.method, "status": response.status_code, **extra},
        )
    except SQLAlchemyError:
        log.exception("could not record the audit event; the response is withheld")
        failed = current_app.json.response(
            error_body(500, "The audit trail could not be written; nothing was returned.")
        )
        failed.status_code = 500
        return failed
    return response


def record_request(action: AuditAction, outcome: Outcome = Outcome.ALLOWED, **fields: Any) -> None:
    """Record an event about the current request (who, from where), committed at once."""
    patient_uuid = (request.view_args or {}).get("patient_uuid") or g.pop(
        "audit_patient_uuid", None
    )
    event = event_values(
        action,
        outcome,
        principal=current_principal(),
        patient_uuid=patient_uuid,
        **request_origin(),
        **fields,
    )
    with db.engine().begin() as connection:
        insert_events(connection, [event])


def record_request_per_patient(
    action: AuditAction, patient_uuids: Iterable[uuid.UUID], **fields: Any
) -> None:
    """Record one event per patient the current request reads, in one transaction: each
    patient's trail (`GET /audit?patient_uuid=`) shows the read."""
    principal, origin = current_principal(), request_origin()
    events = [
        event_values(
            action,
            Outcome.ALLOWED,
            principal=principal,
            patient_uuid=patient_uuid,
            **origin,
            **fields,
        )
        for patient_uuid in sorted(patient_uuids)
    ]
    if events:
        with db.engine().begin() as connection:
            insert_events(connection, events)


def request_origin() -> dict[str, Any]:
    """Where the current request came from, for events a view records itself."""
    # Storable even when the request is refused for holding NUL: its refusal is recorded too.
    return {
        "resource": storable(request.full_path.rstrip("?")),
        "address": request.remote_addr,
        "user_agent": storable(request.user_agent.string),
    }
