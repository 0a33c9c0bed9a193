"""Access declared where each route is, and checked before every request.

A view says who may call it with `@allow(...)` or `@public`; routes a library adds (the
OpenAPI document, Swagger UI, `/metrics`) are declared with `declare`. A route that declares
nothing is still protected: only admins may call it, and the policy test names it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, redirect, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, HTTPException, Unauthorized

from shared.auth.principal import Principal
from shared.auth.roles import PEOPLE, Role, Scope

log = logging.getLogger(__name__)

ATTRIBUTE = "__vigil_access__"
F = TypeVar("F", bound=Callable)


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route: these roles, integrations holding `scope`, or anyone if public.

    `page` routes send an anonymous browser to the login page instead of answering 401.
    `identify` on a public route checks the credentials a caller sends, so that the view may
    tell an admin more than anyone else.
    """

    roles: frozenset[Role] = frozenset()
    scope: Scope | None = None
    public: bool = False
    page: bool = False
    identify: bool = False

    def allows(self, principal: Principal | None) -> bool:
        if self.public:
            return True
        if principal is None:
            return False
        if principal.role in self.roles:
            return True
        return (
            principal.role is Role.INTEGRATION
            and self.scope is not None
            and self.scope in principal.scopes
        )


PUBLIC = Access(public=True)
PUBLIC_IDENTIFIED = Access(public=True, identify=True)
ADMIN_ONLY = Access(frozenset({Role.ADMIN}))
SIGNED_IN = Access(PEOPLE)
SIGNED_IN_PAGE = Access(PEOPLE, page=True)


def allow(*roles: Role, scope: Scope | None = None, page: bool = False) -> Callable[[F], F]:
    """Declare that `roles` (and integrations whose token holds `scope`) may call the view."""
    return _declaring(Access(frozenset(roles), scope, page=page))


def signed_in(*, scope: Scope | None = None, page: bool = False) -> Callable[[F], F]:
    """Any signed-in person (admin, clinician, viewer), and integrations holding `scope`."""
    return _declaring(Access(PEOPLE, scope, page=page))


def public(view: F) -> F:
    """Anyone, signed in or not: health probes, the login page, the sign-in endpoint."""
    return _declaring(PUBLIC)(view)


def public_identified(view: F) -> F:
    """Anyone, but the caller's credentials are checked: /health, which tells the status to
    anyone and the details only to admins. Credentials that do not hold (or cannot be
    checked now) make the caller anonymous, never an error."""
    return _declaring(PUBLIC_IDENTIFIED)(view)


def _declaring(access: Access) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        setattr(view, ATTRIBUTE, access)
        return view

    return decorate


def declare(app: Flask, endpoint: str, access: Access) -> None:
    """Declare the access of a route the app did not write itself (often a bound method,
    which takes no attributes: it is wrapped)."""
    view = app.view_functions[endpoint]

    @functools.wraps(view)
    def declared(*args, **kwargs):
        return view(*args, **kwargs)

    setattr(declared, ATTRIBUTE, access)
    app.view_functions[endpoint] = declared


def access_for(app: Flask, endpoint: str, method: str) -> Access | None:
    """What `endpoint` declares for `method`; None if it declares nothing."""
    return view_declaration(app, endpoint, method, ATTRIBUTE)


def view_declaration(app: Flask, endpoint: str, method: str, attribute: str) -> Any:
    """An attribute a decorator set on the view of `endpoint` for `method` (on a MethodView's
    method, else on the class), or None."""
    view = app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        declared = getattr(handler, attribute, None) if handler is not None else None
        return declared or getattr(view_class, attribute, None)
    return getattr(view, attribute, None)


Authenticate = Callable[[], Principal | None]


def register_access(
    app: Flask, authenticate: Authenticate, *, login_endpoint: str | None = None
) -> None:
    """Check every request against its route's declared access, before the view runs.

    `authenticate` returns the caller, None if no credentials came, or raises Unauthorized
    for credentials that do not hold. Pages send anonymous callers to `login_endpoint`.
    """

    @app.before_request
    def check_access():
        # No caller until one is proven (the tests' clients share one app context).
        g.principal = None
        g.access_denied = False
        # Unknown URLs and methods fall through to their 404 / 405.
        if request.endpoint is None or request.method == "OPTIONS":
            return None
        access = access_for(current_app, request.endpoint, request.method) or ADMIN_ONLY
        if access.public:
            if access.identify:
                g.principal = _identified(authenticate)
            return None
        principal = authenticate()
        g.principal = principal
        if access.allows(principal):
            return None
        # For the audit trail: this request was refused by the access check itself.
        g.access_denied = True
        if principal is None:
            if access.page and login_endpoint is not None:
                return redirect(url_for(login_endpoint, next=request.full_path.rstrip("?")))
            raise unauthorized("Sign in first: this route needs credentials.")
        raise Forbidden("Your role may not do this.")


def _identified(authenticate: Authenticate) -> Principal | None:
    """The caller if their credentials hold; None if they do not, or if they cannot be
    checked now (a probe must get its answer while the database or Redis is down)."""
    try:
        return authenticate()
    except HTTPException:
        return None
    except Exception:
        log.warning(
            "could not check the caller's credentials: answering as to anyone", exc_info=True
        )
        return None


def unauthorized(message: str) -> Unauthorized:
    """401 with the bearer challenge, in the shared JSON error body."""
    return Unauthorized(message, www_authenticate=WWWAuthenticate("bearer", {"realm": "vigil"}))


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, if the request has one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def undeclared_routes(app: Flask) -> Iterable[tuple[str, str]]:
    """(endpoint, method) of every route that declares no access."""
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            if access_for(app, rule.endpoint, method) is None:
                yield rule.endpoint, method
