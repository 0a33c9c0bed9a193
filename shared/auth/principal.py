"""The caller of the current request, once its credentials are checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import g

from shared.auth.roles import Role, Scope


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, and how they signed in (a token's id, a dashboard session's id)."""

    user_id: uuid.UUID
    role: Role
    email: str | None = None
    scopes: frozenset[Scope] = frozenset()
    ward_ids: frozenset[uuid.UUID] = frozenset()
    token_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def current_principal() -> Principal | None:
    """Who made this request; None on a public route called anonymously."""
    return g.get("principal")


def require_principal() -> Principal:
    """The caller of a route that requires sign-in (the access check ran before the view)."""
    principal = g.get("principal")
    if principal is None:
        raise RuntimeError("no signed-in caller: is this route declared public?")
    return principal
