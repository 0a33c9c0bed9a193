"""Who may take one of a worker's WebSocket seats.

Each stream holds one of the worker's threads for as long as it is open, so a worker has a
few seats. Without more rules one viewer account, or one integration token, could take them
all and leave the central station without its live view; so:

- one user holds at most `per_user` of a worker's seats;
- `clinical` of them are kept for clinicians and admins, whom the station is for;
- the seats never take more than half of the worker's threads, whatever WS_MAX_CLIENTS
  says: HTTP requests (the dashboard's reads, `/health`) keep the other half.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.auth.principal import Principal
from shared.auth.roles import Role

log = logging.getLogger(__name__)

CLINICAL_ROLES = frozenset({Role.CLINICIAN, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class SeatLimits:
    """A worker's seats: how many in all, per user, and kept for clinicians and admins."""

    total: int
    per_user: int | None = None
    clinical: int = 0

    def refusal(self, viewer: Principal | None, seated: Iterable[Principal | None]) -> str | None:
        """Why `viewer` may not take a seat beside the `seated` clients; None if it may."""
        seated = list(seated)
        if len(seated) >= self.total:
            return "too many clients on this worker; retry shortly"
        if viewer is not None and self.per_user is not None:
            own = sum(1 for other in seated if other and other.user_id == viewer.user_id)
            if own >= self.per_user:
                return f"at most {self.per_user} streams per user on this worker; close one"
        if not _clinical(viewer):
            others = sum(1 for other in seated if not _clinical(other))
            if others >= self.total - self.clinical:
                return "the remaining seats are kept for clinicians; retry shortly"
        return None


def _clinical(principal: Principal | None) -> bool:
    return principal is not None and principal.role in CLINICAL_ROLES


def seat_limits(config: Mapping[str, Any]) -> SeatLimits:
    """The app's seats, within the threads of the worker serving it (SERVER_THREADS, which
    the gunicorn hooks set; a server that does not say is not limited by it)."""
    total = config["WS_MAX_CLIENTS"]
    threads = config.get("SERVER_THREADS")
    if threads is not None:
        total = min(total, _seats_within(total, threads))
    return SeatLimits(
        total=total,
        per_user=config["WS_MAX_CLIENTS_PER_USER"],
        clinical=min(config["WS_CLINICIAN_SEATS"], total),
    )


@functools.cache
def _seats_within(configured: int, threads: int) -> int:
    """Half the threads (none of a single-threaded worker's), at most `configured`; said once
    when it is fewer."""
    seats = threads // 2
    if seats < configured:
        log.warning(
            "WebSocket seats lowered to half the worker's threads",
            extra={"ws_max_clients": configured, "threads": threads, "seats": seats},
        )
    return min(seats, configured)
