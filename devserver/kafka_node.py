"""One Apache Kafka node's configuration and command lines: where the jars and settings are,
the JVM's options, and the per-node settings appended to devserver/kafka/broker.properties."""

from __future__ import annotations

import base64
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.config import VAR_DIR

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


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One KRaft node (broker and controller) on loopback, with its folder."""

    node_id: int
    port: int
    controller_port: int
    home: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
        own = {
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://{self.address},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.address}",
            "controller.quorum.voters": voters,
            "log.dirs": str(self.data_dir),
            **size_properties(size),
        }
        lines = [f"{key}={value}" for key, value in own.items()]
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            BROKER_PROPERTIES.read_text() + "\n# This node\n" + "\n".join(lines) + "\n"
        )
        return self.config_file

    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()
