"""The audit trail's record of senders the gateway refused: from where, as which facility, why.

A refused sender that keeps sending must neither fill the audit trail nor hold the listener on
database writes: each peer address gets at most one record per `interval`, and that record
counts the refusals since the last one. Records are written off the listener's event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.audit import AuditAction, Outcome, record

log = logging.getLogger(__name__)

# Peers remembered for the throttle; past this, the longest-quiet are forgotten (a forgotten
# peer's next refusal is recorded at once, so forgetting loses no record, only a count).
MAX_PEERS = 10_000


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused message, as the audit record tells it."""

    address: str
    reason: str
    facility: str
    application: str
    control_id: str
    # Refusals of this address since its last record, not recorded one by one.
    unrecorded: int = 0


@dataclass(slots=True)
class _Peer:
    recorded_at: float
    unrecorded: int = 0


class RefusalAudit:
    """Which refusals to record, and their recording. `admit` runs on the listener's loop
    only (so the peers need no lock); `write` runs in a worker thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.clock = clock
        self._peers: dict[str, _Peer] = {}

    def admit(self, refusal: Refusal) -> Refusal | None:
        """The refusal to record now (with the count of those held back), or None when this
        address was recorded less than `interval` ago."""
        now = self.clock()
        peer = self._peers.get(refusal.address)
        if peer is not None and now - peer.recorded_at < self.interval:
            peer.unrecorded += 1
            return None
        held_back = peer.unrecorded if peer is not None else 0
        self._peers.pop(refusal.address, None)
        self._peers[refusal.address] = _Peer(now)  # last in the dict: the most recent
        while len(self._peers) > MAX_PEERS:
            del self._peers[next(iter(self._peers))]
        return replace(refusal, unrecorded=held_back)

    def write(self, refusal: Refusal) -> None:
        """One audit record of `refusal`; a database that fails is logged, never raised."""
        detail = {
            "reason": refusal.reason,
            "sending_facility": refusal.facility[:64],
            "sending_application": refusal.application[:64],
            "control_id": refusal.control_id[:64],
            "unrecorded_before": refusal.unrecorded,
        }
        try:
            with self.sessions.begin() as session:
                record(
                    session,
                    AuditAction.HL7_SENDER_REFUSED,
                    Outcome.DENIED,
                    resource="hl7:ORU^R01",
                    address=refusal.address,
                    detail=detail,
                )
        except SQLAlchemyError as exc:
            log.error("refusal not audited", extra={"peer": refusal.address, "error": str(exc)})
