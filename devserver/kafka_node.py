"""One Apache Kafka node's configuration and command lines: where the jars and settings are,
the JVM's options, and the per-node settings appended to devserver/kafka/broker.properties."""

from __future__ import annotations

import base64
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import VAR_DIR
from shared.kafka import KafkaConnection

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
BROKER_PROPERTIES = KAFKA_DIR / "broker.properties"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
LIB_DIR = VAR_DIR / "kafka" / "lib"

SERVER_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

# Sized for a 2-core test machine running several nodes at once.
JVM_OPTIONS = (
    "-Xmx512m",
    # One GC thread: the nodes share two cores, and a test broker's heap stays small.
    "-XX:+UseSerialGC",
    # The quick compiler only: a node is ready in about 3.5 s instead of 5 s; tests never run
    # long enough for the optimising one to pay off.
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
)


class KafkaUnavailableError(RuntimeError):
    """The broker's jars cannot be resolved, or Java is missing; the message names the fix."""


def kafka_version(pom: Path = POM) -> str:
    """The Apache Kafka version that `pom` resolves."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    assert match, f"{pom} sets kafka.version"
    return match.group(1)


def class_archive(lib_dir: Path) -> Path:
    """The JVM's archive of the classes a node loads: with it, a node starts in half the time.

    Kept beside the jars it was made from, so a new version's folder starts without one.
    """
    return lib_dir / "kafka.jsa"


def java_command(
    main: str, *args: str, lib_dir: Path, dump_archive: Path | None = None
) -> list[str]:
    """`main` on the broker's class path; `dump_archive` makes this JVM write the class archive
    there when it exits cleanly (a few seconds more to stop)."""
    java = shutil.which("java")
    if java is None:
        raise KafkaUnavailableError(
            "Apache Kafka needs Java 17 or later: apt-get install openjdk-17-jre"
        )
    archive = class_archive(lib_dir)
    if dump_archive is not None:
        # Without -Xlog, each class it leaves out is a warning line in the node's log.
        sharing = [
            f"-XX:ArchiveClassesAtExit={dump_archive}",
            "-Xlog:cds=off",
            "-Xlog:cds+dynamic=off",
        ]
    elif archive.exists():
        sharing = [f"-XX:SharedArchiveFile={archive}"]
    else:
        sharing = []
    return [java, *JVM_OPTIONS, *sharing, "-cp", f"{lib_dir}/*", main, *args]


def new_cluster_id() -> str:
    """A cluster id in Kafka's form: 16 random bytes, URL-safe base64, unpadded."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # the storage tool would read it as an option
            return cluster_id


def size_properties(size: int) -> dict[str, str]:
    """What depends on the cluster's size: as many copies as three nodes or fewer allow."""
    replicas = min(3, size)
    # acks=all then waits for two copies, yet one node of three may be down.
    min_isr = min(2, size)
    return {
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
    }


SECURED_PROPERTIES = KAFKA_DIR / "secured.properties"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
# Set in secured.properties: the super user, and how clients and brokers sign in.
ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
# Passwords go into JAAS lines and the storage tool's --add-scram between quotes or brackets.
_SAFE_SECRET = re.compile(r"[A-Za-z0-9_.-]+")


def parse_properties(text: str) -> dict[str, str]:
    """A properties file's key=value lines (the project's broker files use no other form)."""
    lines = (line.strip() for line in text.splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def read_properties(path: Path) -> dict[str, str]:
    return parse_properties(path.read_text())


@dataclass(frozen=True, slots=True)
class BrokerSecurity:
    """A node that serves only authenticated clients, each restricted by ACLs.

    The settings are devserver/kafka/secured.properties, which docker-compose.yml's broker
    reads too; this adds the passwords. Clients and brokers (to each other) sign in with
    SASL/SCRAM; the credentials are written into the metadata log when the storage is
    formatted, so they exist before the first client connects. The controller listener takes
    PLAIN from the admin only. With a `keystore`, clients may also sign in over TLS
    (SASL_SSL) on a port of their own.
    """

    admin_password: str = field(repr=False)
    # Client identities: name -> password. What each may do is the ACLs' business.
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    # PEM: the node's private key (unencrypted PKCS#8), then its certificate chain.
    keystore: Path | None = None

    def __post_init__(self) -> None:
        for name, secret in {ADMIN: self.admin_password, **self.users}.items():
            assert _SAFE_SECRET.fullmatch(name), f"user name {name!r}: letters, digits, _.- only"
            assert _SAFE_SECRET.fullmatch(secret), f"{name}'s password: letters, digits, _.- only"

    def properties(self) -> dict[str, str]:
        """The node's settings beyond its listeners and their protocols."""
        tls = {}
        if self.keystore is not None:
            tls = {
                "listener.name.sasl_ssl.sasl.enabled.mechanisms": MECHANISM,
                # Only the server side: brokers talk to each other on the SASL_PLAINTEXT one.
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": f"{SCRAM_LOGIN} required;",
                "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
                "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore),
            }
        return {
            **read_properties(SECURED_PROPERTIES),
            **tls,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
                f'{SCRAM_LOGIN} required username="{ADMIN}" password="{self.admin_password}";'
            ),
            # The user_ entry is the controller's list of who may connect: admin alone.
            "listener.name.controller.plain.sasl.jaas.config": (
                f'{PLAIN_LOGIN} required username="{ADMIN}" '
                f'password="{self.admin_password}" user_{ADMIN}="{self.admin_password}";'
            ),
        }

    def format_arguments(self) -> list[str]:
        """StorageTool options that store every identity's SCRAM credentials."""
        arguments = []
        for name, secret in {ADMIN: self.admin_password, **self.users}.items():
            arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={secret}]"]
        return arguments

    def connection(self, bootstrap: str, user: str | None = None) -> KafkaConnection:
        """How `user` (the admin by default) connects to a node at `bootstrap`."""
        user = user or ADMIN
        password = self.admin_password if user == ADMIN else self.users[user]
        return KafkaConnection(bootstrap, "SASL_PLAINTEXT", MECHANISM, user, password)


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One KRaft node (broker and controller) on loopback, with its folder."""

    node_id: int
    port: int
    controller_port: int
    home: Path
    security: BrokerSecurity | None = None
    # The SASL_SSL listener's port, when `security` has a keystore.
    tls_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_address(self) -> str | None:
        return None if self.tls_port is None else f"127.0.0.1:{self.tls_port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        """Its log.dirs: partitions and the metadata log."""
        return self.home / "data"

    def write_config(self, voters: str, size: int) -> Path:
        """broker.properties with this node's own settings after it."""
        client = "PLAINTEXT" if self.security is None else "SASL_PLAINTEXT"
        advertised = [f"{client}://{self.address}"]
        protocols = [f"CONTROLLER:{client}", f"{client}:{client}"]
        if self.tls_address is not None:
            advertised.append(f"SASL_SSL://{self.tls_address}")
            protocols.append("SASL_SSL:SASL_SSL")
        own = {
            "node.id": str(self.node_id),
            "listeners": ",".join([*advertised, f"CONTROLLER://127.0.0.1:{self.controller_port}"]),
            "advertised.listeners": ",".join(advertised),
            "controller.quorum.voters": voters,
            "log.dirs": str(self.data_dir),
            **size_properties(size),
        }
        if self.security is not None:
            own |= {
                "inter.broker.listener.name": client,
                "listener.security.protocol.map": ",".join(protocols),
                **self.security.properties(),
            }
        lines = [f"{key}={value}" for key, value in own.items()]
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.touch(mode=0o600)  # it may hold passwords: the owner's alone
        self.config_file.write_text(
            BROKER_PROPERTIES.read_text() + "\n# This node\n" + "\n".join(lines) + "\n"
        )
        return self.config_file

    def format_command(self, cluster_id: str, config: Path, lib_dir: Path) -> list[str]:
        """The storage tool's command that formats this node's storage (once, before start)."""
        credentials = [] if self.security is None else self.security.format_arguments()
        return java_command(
            STORAGE_TOOL,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
            *credentials,
            lib_dir=lib_dir,
        )

    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()
