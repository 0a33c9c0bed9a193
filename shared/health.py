"""What every app's /health tells whom.

Anyone (a load balancer, a probe, a stranger) learns the status: whether to send traffic.
The report's details (database errors, hosts, consumer counters, client counts) describe the
deployment to an attacker, so only admins see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.auth.principal import current_principal


def report_for_caller(report: Mapping[str, Any]) -> dict[str, Any]:
    """The whole report for an admin; only its `status` for anyone else."""
    principal = current_principal()
    if principal is not None and principal.is_admin:
        return dict(report)
    return {"status": report["status"]}
