"""Request ids: taken from X-Request-ID or made here, put in log lines and echoed back."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from shared.logging import request_id_var

HEADER = "X-Request-ID"

# A client's id lands in our logs and headers: accept only a short, plain token.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def register_request_id(app: Flask) -> None:
    """Give every request of `app` an id, visible to logging and returned to the client."""
    app.before_request(_bind_request_id)
    app.after_request(_echo_request_id)
    app.teardown_request(_unbind_request_id)


def _bind_request_id() -> None:
    incoming = request.headers.get(HEADER, "")
    g.request_id = incoming if _ACCEPTABLE.fullmatch(incoming) else uuid.uuid4().hex
    g.request_id_token = request_id_var.set(g.request_id)


def _echo_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id is not None:
        response.headers[HEADER] = request_id
    return response


def _unbind_request_id(_exc: BaseException | None) -> None:
    # Worker threads serve many requests: the next one must not inherit this id.
    token = g.pop("request_id_token", None)
    g.pop("request_id", None)
    if token is not None:
        request_id_var.reset(token)
