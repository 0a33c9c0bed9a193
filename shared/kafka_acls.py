"""Who may do what on Vigil's topics: the ACLs of a broker that authenticates its clients.

Each identity gets the least its app needs, so credentials that leak let their holder do only
that app's part: the simulator's cannot read patients' vitals, write dead letters or move the
consumer group past readings; data_app's cannot invent samples; the gateway's cannot read any.
Identities, topics and ACLs are made by an admin (a super user), never by the apps:
`python -m shared.kafka_acls` with the admin's KAFKA_SASL_* settings does all three (README:
"Securing Kafka").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from shared.config import (
    COMMON_SETTINGS,
    KAFKA_TOPIC_SETTINGS,
    ConfigError,
    Setting,
    load_settings,
    parse_nonempty,
    parse_optional,
)
from shared.kafka import (
    Connectable,
    KafkaConnection,
    TopicSettings,
    admin_client,
    ensure_vigil_topics,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Grant:
    """One thing an identity may do: `operation` on the resource of that type and name."""

    user: str
    operation: AclOperation
    resource: ResourceType
    name: str

    def binding(self) -> AclBinding:
        return AclBinding(
            self.resource,
            self.name,
            ResourcePatternType.LITERAL,
            f"User:{self.user}",
            "*",
            self.operation,
            AclPermissionType.ALLOW,
        )


def vigil_grants(
    vitals_topic: str,
    dlq_topic: str,
    group_id: str,
    producer: str = "patient_app",
    consumer: str = "data_app",
    gateway: str = "gateway_app",
) -> list[Grant]:
    """Everything Vigil's identities may do; the broker refuses the rest. The HL7 gateway
    writes samples and the messages it could not use; it reads nothing.

    WRITE includes DESCRIBE, and since Kafka 2.8 also the idempotent producer's id (KIP-679);
    READ includes DESCRIBE, which the consumer's offset lookups need.
    """
    return [
        Grant(producer, AclOperation.WRITE, ResourceType.TOPIC, vitals_topic),
        Grant(consumer, AclOperation.READ, ResourceType.TOPIC, vitals_topic),
        Grant(consumer, AclOperation.READ, ResourceType.GROUP, group_id),
        Grant(consumer, AclOperation.WRITE, ResourceType.TOPIC, dlq_topic),
        Grant(gateway, AclOperation.WRITE, ResourceType.TOPIC, vitals_topic),
        Grant(gateway, AclOperation.WRITE, ResourceType.TOPIC, dlq_topic),
    ]


def grant(admin_connection: Connectable, grants: list[Grant], timeout: float = 10.0) -> None:
    """Create the ACLs of `grants` as the admin; ACLs that exist already are left as they are."""
    admin = admin_client(admin_connection)
    futures = admin.create_acls([each.binding() for each in grants], request_timeout=timeout)
    for future in futures.values():
        future.result()
    log.info("ACLs created", extra={"acls": len(grants)})


# Twice Kafka's floor for SCRAM-SHA-512 (4096): each sign-in costs the broker this many rounds.
SCRAM_ITERATIONS = 8192


def set_passwords(
    admin_connection: Connectable, passwords: Mapping[str, str], timeout: float = 10.0
) -> None:
    """Give each user in `passwords` that SCRAM-SHA-512 password, creating the user if new.

    Run again with the same passwords, it changes nothing a client notices; with another, the
    old one stops working for new sign-ins.
    """
    if not passwords:
        return
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [
        UserScramCredentialUpsertion(user, info, password.encode())
        for user, password in passwords.items()
    ]
    # Held until every answer is in: a client that is let go fails its pending requests.
    admin = admin_client(admin_connection)
    futures = admin.alter_user_scram_credentials(upserts, request_timeout=timeout)
    for future in futures.values():
        future.result()
    log.info("SCRAM credentials set", extra={"users": sorted(passwords)})


ACL_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    *KAFKA_TOPIC_SETTINGS,
    Setting("KAFKA_DLQ_TOPIC", parse_nonempty, "vitals.dlq"),
    Setting("KAFKA_GROUP_ID", parse_nonempty, "vigil-data"),
    Setting("KAFKA_PRODUCER_USER", parse_nonempty, "patient_app"),
    Setting("KAFKA_CONSUMER_USER", parse_nonempty, "data_app"),
    Setting("KAFKA_GATEWAY_USER", parse_nonempty, "gateway_app"),
    # Unset: the identity's credentials are the broker operator's business (made elsewhere).
    Setting("KAFKA_PRODUCER_PASSWORD", parse_optional(str), None),
    Setting("KAFKA_CONSUMER_PASSWORD", parse_optional(str), None),
    Setting("KAFKA_GATEWAY_PASSWORD", parse_optional(str), None),
)


def provision(settings: Mapping[str, Any]) -> None:
    """Set the identities' passwords (those given), create Vigil's topics and ACLs, signed
    in as the admin that `settings` describe."""
    admin = KafkaConnection.from_config(settings)
    passwords = {
        settings[user]: settings[password]
        for user, password in (
            ("KAFKA_PRODUCER_USER", "KAFKA_PRODUCER_PASSWORD"),
            ("KAFKA_CONSUMER_USER", "KAFKA_CONSUMER_PASSWORD"),
            ("KAFKA_GATEWAY_USER", "KAFKA_GATEWAY_PASSWORD"),
        )
        if settings[password] is not None
    }
    set_passwords(admin, passwords)
    topics = TopicSettings.from_config(settings)
    ensure_vigil_topics(admin, settings["KAFKA_TOPIC"], settings["KAFKA_DLQ_TOPIC"], topics)
    grants = vigil_grants(
        settings["KAFKA_TOPIC"],
        settings["KAFKA_DLQ_TOPIC"],
        settings["KAFKA_GROUP_ID"],
        settings["KAFKA_PRODUCER_USER"],
        settings["KAFKA_CONSUMER_USER"],
        settings["KAFKA_GATEWAY_USER"],
    )
    grant(admin, grants)


def main() -> None:
    """`python -m shared.kafka_acls`: provision from the environment; one line on failure."""
    logging.basicConfig(level=logging.INFO)
    try:
        provision(load_settings(ACL_SETTINGS))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KafkaException as exc:
        print(f"Kafka refused: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
