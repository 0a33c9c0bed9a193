"""MllpServer: HL7 v2 over MLLP, on an asyncio loop in a thread of its own.

Each message is answered before the next is read: AA once Kafka has the sample, AE (and a
dead letter with the original bytes) for HL7 that cannot become one, AR for what is not HL7
or not from an allowed sender. A connection that sends garbage, or too much, is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import threading
from dataclasses import dataclass
from datetime import tzinfo

import hl7
from hl7.mllp import InvalidBlockError, start_hl7_server

from gateway_app.acks import AckCode, ErrorCode, acknowledge, reject_unreadable
from gateway_app.pcd01 import (
    Header,
    Unsupported,
    Unusable,
    header,
    patient_uuid_for,
    read_observations,
)
from gateway_app.publisher import Publisher
from gateway_app.refusals import Refusal, RefusalAudit
from shared.sample import vitals_errors

log = logging.getLogger(__name__)

# A TLS handshake takes a round trip or two; a client that has not finished one by then is
# only holding a connection open.
HANDSHAKE_TIMEOUT_S = 10.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str
    port: int
    facility: str
    id_secret: str
    allowed_networks: tuple[Network, ...]
    allowed_facilities: frozenset[str]  # empty: any facility from an allowed address
    max_message_bytes: int
    idle_timeout: float
    max_connections: int
    local_zone: tzinfo
    tls: ssl.SSLContext | None = None  # None: plain MLLP


class MllpServer:
    def __init__(
        self,
        settings: GatewaySettings,
        publisher: Publisher,
        refusals: RefusalAudit | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        # Where refused senders are recorded; None only where there is no audit trail (tests).
        self.refusals = refusals
        self.stats = {"connections": 0, "accepted": 0, "errors": 0, "rejected": 0}
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.port is not None

    def start(self) -> None:
        self.publisher.start()
        self._thread = threading.Thread(target=self._run, name="mllp", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the MLLP server did not start")

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self.publisher.stop(timeout)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        # python-hl7's server asks asyncio for the current loop: this thread's.
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                start_hl7_server(
                    self._connected,
                    self.settings.host,
                    self.settings.port,
                    limit=self.settings.max_message_bytes,
                    encoding="utf-8",
                    encoding_errors="replace",
                    # A client that fails the handshake never reaches _connected: asyncio
                    # closes it, and the listener goes on. One that never finishes it is
                    # dropped as an idle one would be, if sooner.
                    **self._tls_options(),
                )
            )
        except OSError:
            log.exception("cannot listen for MLLP", extra={"port": self.settings.port})
            self._ready.set()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "listening for HL7 over MLLP",
            extra={"port": self.port, "tls": self.settings.tls is not None},
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._close()

    def _tls_options(self) -> dict:
        if self.settings.tls is None:
            return {}
        handshake = min(self.settings.idle_timeout, HANDSHAKE_TIMEOUT_S)
        return {"ssl": self.settings.tls, "ssl_handshake_timeout": handshake}

    def _close(self) -> None:
        """Stop listening, end every connection's task, then let their closes run."""
        loop = self._loop
        self._server.close()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    async def _connected(self, reader, writer) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        address = str(peer[0])
        self.stats["connections"] += 1
        if self._open >= self.settings.max_connections:
            log.warning("too many HL7 connections; closing one", extra={"peer": address})
            writer.close()
            return
        self._open += 1
        try:
            await self._serve(reader, writer, address)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("HL7 connection failed", extra={"peer": address})
        finally:
            self._open -= 1
            writer.close()

    async def _serve(self, reader, writer, address: str) -> None:
        allowed_address = self._address_allowed(address)
        while True:
            try:
                block = await asyncio.wait_for(reader.readblock(), self.settings.idle_timeout)
            except TimeoutError:
                return  # idle, or a message that never ends
            except asyncio.IncompleteReadError:
                return  # the sender closed the connection
            except (ValueError, InvalidBlockError) as exc:
                # Over the size limit (ValueError), or bytes outside an MLLP block.
                reason = "too large" if not isinstance(exc, InvalidBlockError) else "not MLLP"
                self.stats["rejected"] += 1
                writer.write(_frame(reject_unreadable(self.settings.facility, reason)))
                await writer.drain()
                return
            answer, keep_open = await self._answer(block, address, allowed_address)
            writer.writeblock(answer.encode("utf-8"))
            await writer.drain()
            if not keep_open:
                return

    async def _answer(self, block: bytes, address: str, allowed_address: bool) -> tuple[str, bool]:
        facility = self.settings.facility
        text = block.decode("utf-8", errors="replace").replace("\r\n", "\r").replace("\n", "\r")
        try:
            message = hl7.parse(text)
            head = header(message)
        except Exception as exc:  # noqa: BLE001  (the parser raises many kinds on garbage)
            if not allowed_address:
                # A stranger's bytes are not kept: the dead-letter topic is not theirs to fill.
                return await self._refuse(None, None, address, "address not allowed"), False
            self.stats["rejected"] += 1
            await self._dead_letter(None, block, f"not HL7: {type(exc).__name__}", address)
            return reject_unreadable(facility, "not an HL7 message"), False
        if not allowed_address:
            return await self._refuse(message, head, address, "address not allowed"), False
        if not self._facility_allowed(head.sending_facility):
            return await self._refuse(message, head, address, "facility not allowed"), False
        try:
            observations = read_observations(message, self.settings.local_zone)
        except Unsupported as exc:
            self.stats["rejected"] += 1
            error = ErrorCode.UNSUPPORTED_MESSAGE_TYPE
            return str(acknowledge(message, AckCode.REJECT, facility, str(exc), error)), True
        except Unusable as exc:
            return await self._error(message, block, str(exc), address), True
        patient_uuid = patient_uuid_for(
            observations.identifier_system, observations.identifier_value, self.settings.id_secret
        )
        sample = observations.sample(patient_uuid)
        if errors := vitals_errors(sample):
            reason = f"out of bounds: {json.dumps(errors, sort_keys=True)}"
            return await self._error(message, block, reason, address), True
        try:
            await asyncio.wrap_future(
                self.publisher.publish(patient_uuid, json.dumps(sample).encode())
            )
        except Exception as exc:  # noqa: BLE001  (any failure: the sender must resend)
            self.stats["errors"] += 1
            log.error("sample not delivered", extra={"error": str(exc)})
            reason = "not stored (the broker did not confirm it); resend"
            return str(acknowledge(message, AckCode.ERROR, facility, reason)), True
        self.stats["accepted"] += 1
        return str(acknowledge(message, AckCode.ACCEPT, facility)), True

    async def _refuse(
        self, message: hl7.Message | None, head: Header | None, address: str, reason: str
    ) -> str:
        """AR to a sender not allowed, and (throttled per address) an audit record of it."""
        self.stats["rejected"] += 1
        facility = head.sending_facility if head is not None else ""
        log.warning("HL7 from a sender not allowed", extra={"peer": address, "reason": reason})
        if self.refusals is not None:
            refusal = self.refusals.admit(
                Refusal(
                    address=address,
                    reason=reason,
                    facility=facility,
                    application=head.sending_application if head is not None else "",
                    control_id=head.control_id if head is not None else "",
                )
            )
            if refusal is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.refusals.write, refusal)
        # The answer says only that it was refused: which rule refused it is not theirs to learn.
        if message is None:
            return reject_unreadable(self.settings.facility, "sender not allowed")
        return str(
            acknowledge(message, AckCode.REJECT, self.settings.facility, "sender not allowed")
        )

    async def _error(self, message: hl7.Message, block: bytes, reason: str, address: str) -> str:
        self.stats["errors"] += 1
        await self._dead_letter(None, block, reason, address)
        return str(acknowledge(message, AckCode.ERROR, self.settings.facility, reason))

    async def _dead_letter(self, key: str | None, block: bytes, reason: str, peer: str) -> None:
        try:
            await asyncio.wrap_future(self.publisher.dead_letter(key, block, reason, peer))
        except Exception as exc:  # noqa: BLE001
            log.error("dead letter not delivered", extra={"error": str(exc), "reason": reason})

    def _address_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.settings.allowed_networks)

    def _facility_allowed(self, facility: str) -> bool:
        allowed = self.settings.allowed_facilities
        return not allowed or facility in allowed


def _frame(text: str) -> bytes:
    return b"\x0b" + text.encode("utf-8") + b"\x1c\x0d"
