"""Access-policy tables: who may call each route of an app, checked with real requests.

Each app's policy test declares one table, `{(endpoint, method): allowed(...)}`, written by
hand from what the product promises, not read from the code; these helpers send every route a
request as each kind of caller and say where the answer differs from the table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import websocket
from flask import Flask

from shared.auth.policy import undeclared_routes
from shared.auth.roles import Role, Scope
from tests.auth import client_for, token_for

ANONYMOUS = "anonymous"
ADMIN = "admin"
CLINICIAN = "clinician"
VIEWER = "viewer"
PEOPLE = frozenset({ADMIN, CLINICIAN, VIEWER})
ERROR_KEYS = {"code", "status", "message", "errors"}


def integration(scope: Scope | None = None) -> str:
    """The caller name of an integration whose token holds `scope` (None: no scope at all)."""
    return "integration" if scope is None else f"integration {scope.value}"


CALLERS: tuple[str, ...] = (
    ANONYMOUS,
    ADMIN,
    CLINICIAN,
    VIEWER,
    integration(),
    *(integration(scope) for scope in Scope),
)
EVERYONE = frozenset(CALLERS)


def signed_tokens() -> dict[str, str | None]:
    """A token per caller for the apps that check tokens by their signature alone."""
    tokens: dict[str, str | None] = {ANONYMOUS: None}
    for role in (Role.ADMIN, Role.CLINICIAN, Role.VIEWER):
        tokens[role.value] = token_for(role)
    tokens[integration()] = token_for(Role.INTEGRATION)
    for scope in Scope:
        tokens[integration(scope)] = token_for(Role.INTEGRATION, [scope])
    return tokens


@dataclass(frozen=True)
class Allowed:
    """The callers a route answers; anonymous callers of a `page` may be sent to log in."""

    callers: frozenset[str]
    page: bool = False


def allowed(*groups: str | Iterable[str], page: bool = False) -> Allowed:
    """`allowed(PEOPLE, integration(Scope.PATIENTS_READ))`: the union of callers and groups."""
    callers: set[str] = set()
    for group in groups:
        callers.update({group} if isinstance(group, str) else group)
    unknown = callers - EVERYONE
    if unknown:
        raise ValueError(f"unknown callers {sorted(unknown)}")
    return Allowed(frozenset(callers), page)


def routes(app: Flask) -> set[tuple[str, str]]:
    """(endpoint, method) of every route in the app's URL map."""
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def coverage_problems(app: Flask, policy: Mapping[tuple[str, str], Allowed]) -> dict[str, set]:
    """What keeps `policy` from being the whole story of `app`: routes declaring no access,
    routes the table leaves out, and table rows for routes the app does not have."""
    in_app = routes(app)
    return {
        "undeclared": set(undeclared_routes(app)),
        "not in the table": in_app - set(policy),
        "not in the app": set(policy) - in_app,
    }


NO_COVERAGE_PROBLEMS = {"undeclared": set(), "not in the table": set(), "not in the app": set()}


def route_url(app: Flask, endpoint: str) -> str:
    """The path of `endpoint`, each of its path parameters a fresh UUID (so nothing is found)."""
    (rule,) = app.url_map.iter_rules(endpoint)
    built = app.url_map.bind("localhost").build(
        endpoint, {name: uuid.uuid4() for name in rule.arguments}
    )
    # A WebSocket route is built as ws://localhost/…: only its path is wanted.
    return urlsplit(built).path


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names lowercased
    body: bytes


def request_route(
    app: Flask, token: str | None, endpoint: str, method: str, served: str | None = None
) -> tuple[str, Answer]:
    """Call the route without a body: access is checked before anything is read.

    WebSocket routes are called with a real handshake on `served` (the app behind a server,
    `http://host:port`): the test client has no socket to hand over.
    """
    path = route_url(app, endpoint)
    (rule,) = app.url_map.iter_rules(endpoint)
    if rule.websocket:
        if served is None:
            raise ValueError(f"{endpoint} is a WebSocket: pass the served app's address")
        return path, _handshake(served.replace("http", "ws", 1) + path, token)
    response = client_for(app, token).open(path, method=method)
    response.close()
    headers = {name.lower(): value for name, value in response.headers.items()}
    return path, Answer(response.status_code, headers, response.get_data())


def _handshake(url: str, token: str | None) -> Answer:
    header = [] if token is None else [f"Authorization: Bearer {token}"]
    try:
        ws = websocket.create_connection(url, timeout=10, header=header)
    except websocket.WebSocketBadStatusException as refused:
        headers = {name.lower(): value for name, value in (refused.resp_headers or {}).items()}
        return Answer(refused.status_code, headers, refused.resp_body or b"")
    ws.close()
    return Answer(101, {}, b"")


def mismatches(
    app: Flask,
    tokens: Mapping[str, str | None],
    endpoint: str,
    method: str,
    expected: Allowed,
    served: str | None = None,
) -> list[str]:
    """Where the answers to each caller differ from `expected`; empty if none do."""
    problems: list[str] = []
    for caller in CALLERS:
        path, answer = request_route(app, tokens[caller], endpoint, method, served)
        problem = _problem(caller, answer, expected)
        if problem:
            problems.append(f"{method} {path} as {caller}: {problem}")
    return problems


def _problem(caller: str, answer: Answer, expected: Allowed) -> str | None:
    status = answer.status
    if caller in expected.callers:
        return f"refused with {status}" if status in {401, 403} else None
    if caller == ANONYMOUS:
        if expected.page and status == 302:
            return None if "/login" in answer.headers["location"] else "redirected elsewhere"
        if status != 401:
            return f"expected 401, got {status}"
        challenge = answer.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer"):
            return f"401 without a Bearer challenge: {challenge!r}"
        return _error_body_problem(answer)
    if status != 403:
        return f"expected 403, got {status}"
    return _error_body_problem(answer)


def _error_body_problem(answer: Answer) -> str | None:
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    if answer.headers.get("content-type", "").startswith("application/fhir+json"):
        return _operation_outcome_problem(body)
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"not the JSON error body: {answer.body[:200]!r}"
    if body["code"] != answer.status:
        return f"error body says {body['code']}"
    return None


def _operation_outcome_problem(body: object) -> str | None:
    """The FHIR API's errors are OperationOutcomes (one error issue), not the JSON body."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return f"not an OperationOutcome: {str(body)[:200]!r}"
    if [issue.get("severity") for issue in body.get("issue", [])] != ["error"]:
        return f"not one error issue: {body!r}"
    return None


def signed_token_policy_tests(policy: Mapping[tuple[str, str], Allowed]) -> tuple:
    """The two policy tests of an app that checks tokens by their signature alone (patient_app,
    data_app, analyser_app), for its module to bind to `test_*` names with its `app` fixture:
    every route is declared and in the table, and each answers only whom the table allows."""

    def test_every_route_declares_its_access_and_is_in_the_table(app: Flask) -> None:
        assert coverage_problems(app, policy) == NO_COVERAGE_PROBLEMS

    @pytest.mark.parametrize("route", sorted(policy), ids=lambda route: " ".join(route))
    def test_route_answers_only_whom_the_policy_allows(app: Flask, route: tuple[str, str]) -> None:
        endpoint, method = route
        assert mismatches(app, signed_tokens(), endpoint, method, policy[route]) == []

    return (
        test_every_route_declares_its_access_and_is_in_the_table,
        test_route_answers_only_whom_the_policy_allows,
    )
