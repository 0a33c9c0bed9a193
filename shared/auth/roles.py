"""The roles a person or machine client has, and the rights an integration token may carry."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # users, tokens, the audit trail, everything
    CLINICIAN = "clinician"  # patients, notifications, acting on alerts
    VIEWER = "viewer"  # read-only: a wall display
    INTEGRATION = "integration"  # a machine client: only the scopes its token names


class Scope(StrEnum):
    """What an integration's token is allowed; people get their rights from their role."""

    PATIENTS_READ = "patients:read"
    NOTIFICATIONS_READ = "notifications:read"
    NOTIFICATIONS_WRITE = "notifications:write"
    SCENARIO_WRITE = "scenario:write"
    METRICS_READ = "metrics:read"
    # Sending notification texts to the analyser (analyser_app): the worker's token holds it.
    ANALYSIS_WRITE = "analysis:write"


PEOPLE = frozenset({Role.ADMIN, Role.CLINICIAN, Role.VIEWER})


def known_scopes(names: object) -> frozenset[Scope]:
    """The scopes among `names` that Vigil knows; others grant nothing."""
    known = {scope.value: scope for scope in Scope}
    return frozenset(known[name] for name in names if name in known)  # type: ignore[attr-defined]
