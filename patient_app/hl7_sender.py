"""Hl7Sender: sends the simulated patients' samples to an HL7 gateway over MLLP, as a bedside
monitor's gateway does, instead of to Kafka.

Each message waits for its ACK before the next goes (MLLP's rule). A sample the gateway did
not take for want of a connection waits in a bounded backlog and goes, in order, once the
gateway answers again; one it answered AE or AR for is not sent again (it would be refused
again) but counted and logged with the gateway's reason.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from typing import Any

import hl7
from hl7.client import CR, EB, SB, MLLPClient

from shared.sample import vitals_errors
from shared.telemetry import SAMPLES_DELIVERY_FAILED, SAMPLES_PRODUCED

from .oru import HospitalIdentifier, oru_r01

log = logging.getLogger(__name__)

# An ACK is a few hundred bytes; a peer that sends more is not an HL7 gateway.
MAX_ACK_BYTES = 64 * 1024


class GatewayError(OSError):
    """The peer's answer is not an MLLP-framed HL7 ACK to the message sent."""


class BoundedMLLPClient(MLLPClient):
    """python-hl7's client, with a timeout on connecting and reading, and a read that takes the
    whole framed ACK (the library's takes one recv, however much of the answer that is)."""

    def __init__(  # noqa: D107
        self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
    ) -> None:
        # Not the library's __init__: it connects without a timeout.
        connection = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                connection = tls.wrap_socket(connection, server_hostname=host)
            except OSError:
                connection.close()
                raise
        self.socket = connection
        self.encoding = "utf-8"

    def send(self, data: bytes) -> bytes:
        self.socket.sendall(data)
        received = bytearray()
        while not received.endswith(EB + CR):
            chunk = self.socket.recv(4096)
            if not chunk:
                raise GatewayError("the gateway closed the connection before its ACK")
            received += chunk
            if len(received) > MAX_ACK_BYTES:
                raise GatewayError(f"an ACK longer than {MAX_ACK_BYTES} bytes")
        if not received.startswith(SB):
            raise GatewayError("the answer is not MLLP-framed")
        return bytes(received[len(SB) : -len(EB + CR)])


class Hl7Sender:
    """Turns each sample into an ORU^R01 and sends it; the same face as VitalsProducer."""

    transport = "hl7"

    def __init__(
        self,
        host: str,
        port: int,
        identifiers: dict[uuid.UUID, HospitalIdentifier],
        facility: str,
        timeout: float = 5.0,
        backlog: int = 1000,
        retry_after: float = 1.0,
        stall_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.tls = tls
        self.port = port
        self.identifiers = identifiers
        self.facility = facility
        self.timeout = timeout
        self.retry_after = retry_after
        self.stall_timeout = stall_timeout
        # (patient uuid, MSH-10 control id, the message) of each sample not yet answered.
        self._backlog: deque[tuple[str, str, bytes]] = deque()
        self._backlog_limit = backlog
        self._client: BoundedMLLPClient | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._reachable = False
        self._last_progress = time.monotonic()
        self.stats = {"sent": 0, "delivered": 0, "failed": 0, "dropped": 0, "last_error": None}

    @property
    def gateway(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        log.info("hl7 sender started", extra={"gateway": self.gateway})

    def stop(self, timeout: float = 10.0) -> None:
        """Send what waits, if the gateway takes it, then close the connection."""
        with self._lock:
            self._retry_at = 0.0
            self._flush(deadline=time.monotonic() + timeout)
            self._disconnect()
        log.info("hl7 sender stopped", extra={"undelivered": len(self._backlog), **self.stats})

    def send_metrics(self, patient_uuid: uuid.UUID, sample: dict[str, Any]) -> None:
        """Validate `sample`, write it as an ORU^R01 and send it (or keep it for later)."""
        errors = vitals_errors(sample)
        if errors:
            raise ValueError(f"refusing to send an invalid sample: {errors}")
        identifier = self.identifiers[patient_uuid]
        control_id = uuid.uuid4().hex[:20]
        message = oru_r01(sample, identifier, self.facility, control_id=control_id).encode()
        with self._lock:
            if len(self._backlog) >= self._backlog_limit:
                self._backlog.popleft()
                self._count_failure("dropped", "backlog full: the oldest waiting sample dropped")
            self._backlog.append((str(patient_uuid), control_id, message))
            SAMPLES_PRODUCED.inc()
            self._flush()

    def poll(self, timeout: float = 0.0) -> None:
        """Send what waits, if the gateway is back."""
        with self._lock:
            self._flush()

    def health(self) -> dict[str, Any]:
        undelivered = len(self._backlog)
        waiting_for = time.monotonic() - self._last_progress if undelivered else 0.0
        return {
            "hl7": "ok" if self._reachable else "unreachable",
            "gateway": self.gateway,
            "tls": self.tls is not None,
            "undelivered": undelivered,
            "stalled": waiting_for > self.stall_timeout,
            **self.stats,
        }

    def _flush(self, deadline: float | None = None) -> None:
        """Send the backlog in order until it is empty or the gateway cannot be reached."""
        while self._backlog:
            now = time.monotonic()
            if now < self._retry_at or (deadline is not None and now > deadline):
                return
            patient_uuid, control_id, message = self._backlog[0]
            try:
                code, reason = self._exchange(message, control_id)
            except OSError as exc:
                # Unreachable, timed out, or a peer that does not speak MLLP: the sample waits,
                # and the next try comes after a pause so a down gateway costs little.
                self._disconnect()
                self._reachable = False
                self._retry_at = now + self.retry_after
                self.stats["last_error"] = f"{self.gateway}: {exc}"
                log.warning("hl7 gateway unreachable", extra={"error": str(exc)})
                return
            self._backlog.popleft()
            self._reachable = True
            self._last_progress = time.monotonic()
            self._acknowledged(patient_uuid, code, reason)

    def _exchange(self, message: bytes, control_id: str) -> tuple[str, str]:
        """Send `message`; its ACK's code and reason."""
        if self._client is None:
            self._client = BoundedMLLPClient(self.host, self.port, self.timeout, self.tls)
        self.stats["sent"] += 1
        code, acknowledged, reason = _ack(self._client.send_message(message))
        if acknowledged and acknowledged != control_id:
            # Out of step with the peer (an answer to an earlier message): nothing it says
            # about this one can be trusted.
            raise GatewayError(f"an ACK for message {acknowledged[:40]!r}, not {control_id!r}")
        return code, reason

    def _acknowledged(self, patient_uuid: str, code: str, reason: str) -> None:
        if code in ("AA", "CA"):
            self.stats["delivered"] += 1
            return
        # The gateway read the message and will not take it: sending it again would not help.
        self._count_failure("failed", f"{code or 'no MSA-1'}: {reason}", patient_uuid)
        if code not in ("AE", "AR", "CE", "CR"):
            # Not an answer this sender understands: start afresh on a new connection.
            self._disconnect()

    def _count_failure(self, stat: str, reason: str, patient_uuid: str = "") -> None:
        self.stats[stat] += 1
        self.stats["last_error"] = reason
        SAMPLES_DELIVERY_FAILED.inc()
        log.error("sample not delivered", extra={"reason": reason, "patient_uuid": patient_uuid})

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _ack(answer: bytes) -> tuple[str, str, str]:
    """MSA-1 (the acknowledgment code), MSA-2 (the control id of the message it answers) and
    the reason given (ERR-8, else MSA-3)."""
    try:
        message = hl7.parse(answer.decode("utf-8", errors="replace"))
        msa = message.segment("MSA")
    except (KeyError, IndexError, ValueError, hl7.ParseException):
        return "", "", f"an answer that is not an HL7 ACK: {answer[:60]!r}"
    code = str(msa(1)).strip().upper()
    acknowledged = str(msa(2)).strip() if len(msa) > 2 else ""
    reason = ""
    for segment in message:
        if str(segment(0)) == "ERR" and len(segment) > 8:
            reason = str(segment(8))
    return code, acknowledged, (reason or (str(msa(3)) if len(msa) > 3 else ""))[:200]
