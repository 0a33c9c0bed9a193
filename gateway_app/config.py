"""gateway_app settings."""

from __future__ import annotations

import ipaddress
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from patient_app.id_secret import ID_SECRET_SETTING
from shared.config import (
    AUTH_PUBLIC_KEY_SETTING,
    COMMON_SETTINGS,
    DATABASE_SETTING,
    KAFKA_TOPIC_SETTINGS,
    REDIS_SETTINGS,
    Setting,
    parse_float,
    parse_int,
    parse_nonempty,
    parse_optional,
    parse_path,
    parse_port,
)


def parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR networks; at least one."""
    try:
        networks = tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"expected addresses or networks, {exc}") from None
    if not networks:
        raise ValueError("name at least one address or network")
    return networks


def parse_names(raw: str) -> frozenset[str]:
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def parse_zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as Europe/Berlin, got {raw!r}") from None


GATEWAY_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    AUTH_PUBLIC_KEY_SETTING,
    *REDIS_SETTINGS,
    DATABASE_SETTING,
    Setting("KAFKA_DLQ_TOPIC", parse_nonempty, "vitals.dlq"),
    *KAFKA_TOPIC_SETTINGS,
    Setting("HL7_HOST", parse_nonempty, "127.0.0.1"),
    # 2575: the port IANA registered for HL7 over MLLP.
    Setting("HL7_PORT", parse_port, 2575),
    # MSH-3/4 of the gateway's answers: this receiving facility's name.
    Setting("HL7_FACILITY", parse_nonempty, "VIGIL"),
    # Only senders from these networks are taken (others get AR); loopback unless told.
    Setting("HL7_ALLOWED_SENDERS", parse_networks, parse_networks("127.0.0.1/32,::1/128")),
    # And, if set, only these sending facilities (MSH-4).
    Setting("HL7_ALLOWED_FACILITIES", parse_names, frozenset()),
    Setting("HL7_MAX_MESSAGE_BYTES", parse_int(1024, 1024 * 1024), 64 * 1024),
    Setting("HL7_IDLE_TIMEOUT_SECONDS", parse_float(exclusive_minimum=0, maximum=3600), 300.0),
    Setting("HL7_MAX_CONNECTIONS", parse_int(1, 10000), 256),
    # HL7 over TLS: both, or neither (plain MLLP, for a network the hospital trusts).
    Setting("HL7_TLS_CERT_FILE", parse_optional(parse_path), None),
    Setting("HL7_TLS_KEY_FILE", parse_optional(parse_path), None),
    # And, if set, every sender shows a certificate this CA signed (mutual TLS).
    Setting("HL7_TLS_CLIENT_CA_FILE", parse_optional(parse_path), None),
    # Refused senders are recorded in the audit trail (DATABASE_URL's), one record per address
    # in this many seconds at most, counting those in between.
    Setting("HL7_REFUSAL_AUDIT_SECONDS", parse_float(exclusive_minimum=0, maximum=86400), 60.0),
    # The zone of a sender's times that carry no UTC offset.
    Setting("HL7_TIMEZONE", parse_zone, ZoneInfo("UTC")),
    # Patients' uuids are derived from their MRN under it.
    ID_SECRET_SETTING,
)
