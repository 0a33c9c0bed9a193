"""patient_app settings."""

from shared.config import (
    AUTH_PUBLIC_KEY_SETTING,
    COMMON_SETTINGS,
    KAFKA_TOPIC_SETTINGS,
    REDIS_SETTINGS,
    Setting,
    parse_api_prefix,
    parse_bool,
    parse_float,
    parse_int,
    parse_nonempty,
    parse_optional,
    parse_path,
    parse_port,
    parse_uuid,
)

from .id_secret import ID_SECRET_SETTING
from .scenarios import DEFAULT_DETERIORATION_S, SCENARIOS
from .ward import MAX_PATIENTS

PROTOCOLS = ("kafka", "hl7")


def parse_protocol(raw: str) -> str:
    value = raw.strip().lower()
    if value not in PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(PROTOCOLS)}, got {raw!r}")
    return value


def parse_scenario(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SCENARIOS:
        raise ValueError(f"expected one of {', '.join(SCENARIOS)}, got {raw!r}")
    return value


PATIENT_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    AUTH_PUBLIC_KEY_SETTING,
    # Revoked tokens and disabled accounts are looked up there (shared/auth/revocation.py).
    *REDIS_SETTINGS,
    Setting("API_PREFIX", parse_api_prefix, "/api/v1"),
    Setting("METRICS_INTERVAL", parse_float(exclusive_minimum=0, maximum=3600), 5.0),
    # Without PATIENT_UUID the uuid is derived from the name under PATIENT_ID_SECRET, so a
    # restart keeps the patient and the name alone does not tell the id.
    Setting("PATIENT_UUID", parse_optional(parse_uuid), None),
    ID_SECRET_SETTING,
    Setting("PATIENT_NAME", parse_nonempty, "Demo Patient"),
    Setting("PATIENT_COUNT", parse_int(1, MAX_PATIENTS), 1),
    Setting("PATIENT_SCENARIO", parse_scenario, "normal"),
    Setting("PATIENT_SEED", parse_optional(parse_int()), None),
    # How long "deteriorating" takes to reach its end state; short for demos and tests.
    Setting(
        "PATIENT_DETERIORATION_SECONDS",
        parse_float(exclusive_minimum=0, maximum=86400),
        DEFAULT_DETERIORATION_S,
    ),
    *KAFKA_TOPIC_SETTINGS,
    # kafka: samples straight to the vitals topic; hl7: as a bedside monitor's gateway sends
    # them, ORU^R01 over MLLP to gateway_app, which puts them on the same topic.
    Setting("PATIENT_PROTOCOL", parse_protocol, "kafka"),
    Setting("HL7_GATEWAY_HOST", parse_nonempty, "127.0.0.1"),
    Setting("HL7_GATEWAY_PORT", parse_port, 2575),
    # TLS to the gateway: its certificate checked against this CA (else the system's), its
    # name against HL7_GATEWAY_HOST. A CA file alone turns TLS on.
    Setting("HL7_GATEWAY_TLS", parse_bool, False),
    Setting("HL7_GATEWAY_CA_FILE", parse_optional(parse_path), None),
    # For a gateway that asks for client certificates (mutual TLS): both or neither.
    Setting("HL7_GATEWAY_CERT_FILE", parse_optional(parse_path), None),
    Setting("HL7_GATEWAY_KEY_FILE", parse_optional(parse_path), None),
    # MSH-4, and the assigning authority of the simulated patients' MRNs.
    Setting("HL7_SENDING_FACILITY", parse_nonempty, "VIGIL-SIM"),
)
