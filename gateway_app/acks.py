"""HL7 acknowledgements (original mode): AA, AE or AR, with the reason in MSA-3 and ERR.

python-hl7's `create_ack` builds the MSH and MSA from the message answered; the reason is
escaped by the same library, so no text from a sender can break the answer's structure.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from enum import StrEnum

import hl7
from hl7.util import generate_message_control_id

from shared.hl7_text import escape

APPLICATION = "VIGIL"
# The version an answer to something that was not HL7 speaks (nothing tells the sender's).
DEFAULT_VERSION = "2.6"
REASON_LIMIT = 200


class AckCode(StrEnum):
    ACCEPT = "AA"
    ERROR = "AE"  # understood, not usable: the sender should not resend it unchanged
    REJECT = "AR"  # not taken at all: not HL7, not ours to take, or not from whom we take


class ErrorCode(StrEnum):
    """HL7 table 0357, as ERR-3 carries it."""

    REQUIRED_FIELD_MISSING = "101^Required field missing"
    DATA_TYPE_ERROR = "102^Data type error"
    UNSUPPORTED_MESSAGE_TYPE = "200^Unsupported message type"
    APPLICATION_INTERNAL_ERROR = "207^Application internal error"


def acknowledge(
    message: hl7.Message,
    code: AckCode,
    facility: str,
    reason: str | None = None,
    error: ErrorCode = ErrorCode.APPLICATION_INTERNAL_ERROR,
) -> hl7.Message:
    """The ACK of `message`: its control id in MSA-2, and for AE/AR the reason."""
    with warnings.catch_warnings():
        # python-hl7 stamps MSH-7 with datetime.utcnow(), deprecated from Python 3.12 on.
        warnings.simplefilter("ignore", DeprecationWarning)
        ack = message.create_ack(
            str(code),
            message_id=generate_message_control_id(),
            application=APPLICATION,
            facility=facility,
        )
    if code is AckCode.ACCEPT or not reason:
        return ack
    # MSA-3 (the text, kept for senders of versions before 2.5) and an ERR segment.
    text = ack.escape(_printable(_clip(reason)))
    msh, msa = str(ack.segment("MSH")), str(ack.segment("MSA"))
    return hl7.parse(f"{msh}\r{msa}|{text}\r{_err(error, text)}")


def reject_unreadable(facility: str, reason: str) -> str:
    """An AR for bytes that are not an HL7 message: no MSH to answer, so a fresh one."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    text = escape(_clip(reason))
    msh = (
        f"MSH|^~\\&|{APPLICATION}|{escape(facility)}|||{now}||ACK|"
        f"{generate_message_control_id()}|P|{DEFAULT_VERSION}"
    )
    return f"{msh}\rMSA|{AckCode.REJECT}||{text}\r{_err(ErrorCode.DATA_TYPE_ERROR, text)}"


def _err(error: ErrorCode, text: str) -> str:
    # ERR-3 the error code, ERR-4 its severity (E: error), ERR-8 the message for a person.
    return f"ERR|||{error}^HL70357|E||||{text}"


def _clip(reason: str) -> str:
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


def _printable(text: str) -> str:
    # A CR would end the segment; other control characters have no place in a reason.
    return "".join(c if c.isprintable() else " " for c in text)
