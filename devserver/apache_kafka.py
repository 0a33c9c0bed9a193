"""Apache Kafka, the real broker, from Maven Central: KRaft clusters for the tests and the
single node of `make run KAFKA_ENGINE=apache`.

The jars come from devserver/kafka/pom.xml (`make kafka`, or `resolve_kafka` on first use);
every node reads devserver/kafka/broker.properties, as docker-compose.yml's broker does, with
its own settings after it (devserver.kafka_node).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from devserver.kafka_node import (
    BROKER_PROPERTIES,
    LIB_DIR,
    POM,
    SERVER_MAIN,
    BrokerSecurity,
    KafkaNode,
    KafkaUnavailableError,
    class_archive,
    java_command,
    kafka_version,
    new_cluster_id,
)
from devserver.ports import free_port
from devserver.processes import wait_until
from devserver.server import Server
from shared.config import VAR_DIR
from shared.kafka import Connectable, KafkaConnection, admin_client, producer_config

__all__ = [
    "BROKER_PROPERTIES",
    "BrokerSecurity",
    "KafkaCluster",
    "KafkaUnavailableError",
    "broker_ready",
    "kafka_version",
    "resolve_kafka",
    "single_node_command",
]

log = logging.getLogger(__name__)

# Written to by every readiness check: a produce with acks=all proves leadership and the quorum.
READY_TOPIC = "vigil-ready"


def resolve_kafka(lib_dir: Path = LIB_DIR, pom: Path = POM) -> Path:
    """The folder of the broker's jars, fetched with Maven first if this version is missing."""
    if (lib_dir / f"kafka_2.13-{kafka_version(pom)}.jar").exists():
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailableError("Apache Kafka needs Maven for its jars: apt-get install maven")
    # Into a fresh folder, then renamed: a stopped run leaves no half-filled lib behind.
    partial = lib_dir.with_name(lib_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = subprocess.run(  # noqa: S603
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise KafkaUnavailableError(
            f"Maven could not fetch Apache Kafka ({pom}); run `make kafka` to see why:\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    shutil.rmtree(lib_dir, ignore_errors=True)
    partial.rename(lib_dir)
    return lib_dir


def broker_ready(
    bootstrap: Connectable, node_ids: set[int], replicas: int, timeout: float = 5.0
) -> bool:
    """True when every node in `node_ids` is an unfenced broker and an acks=all produce is
    acknowledged (on a secured cluster, `bootstrap` is the admin's connection)."""
    admin = admin_client(bootstrap)
    try:
        cluster = admin.describe_cluster(request_timeout=timeout).result()
    except KafkaException:
        return False
    if {node.id for node in cluster.nodes} != node_ids:
        return False
    futures = admin.create_topics([NewTopic(READY_TOPIC, 1, replicas)], request_timeout=timeout)
    try:
        futures[READY_TOPIC].result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            return False
    producer = Producer(
        producer_config(bootstrap, **{"message.timeout.ms": int(timeout * 1000), "logger": log})
    )
    errors: list[KafkaError] = []
    producer.produce(READY_TOPIC, b"ready", on_delivery=lambda err, _msg: errors.append(err))
    return producer.flush(timeout + 1) == 0 and errors == [None]


class KafkaCluster(Server):
    """`size` Apache Kafka nodes in KRaft combined mode on loopback, for tests.

    Each node keeps its ports for the cluster's life, so one killed and started again comes
    back where clients and the other nodes expect it, on its own data. With `security`, clients
    must sign in and ACLs decide what each may do (`connection` is the admin's way in).
    """

    def __init__(
        self, size: int, data_dir: Path, log_dir: Path, security: BrokerSecurity | None = None
    ) -> None:
        self.size = size
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.security = security
        tls = security is not None and security.keystore is not None
        self.nodes = {
            node_id: KafkaNode(
                node_id,
                free_port(),
                free_port(),
                data_dir / f"node-{node_id}",
                security,
                free_port() if tls else None,
            )
            for node_id in range(1, size + 1)
        }
        self.processes: dict[int, subprocess.Popen] = {}
        # Nodes a test killed on purpose: the others must be up for the cluster to be ready.
        self.killed: set[int] = set()
        self.lib_dir: Path | None = None
        # (node id, file) of the node that writes the class archive as it exits, if one does.
        self.dumping: tuple[int, Path] | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes.values())

    @property
    def tls_bootstrap(self) -> str:
        """The nodes' SASL_SSL listeners (with a keystore in `security`)."""
        return ",".join(node.tls_address for node in self.nodes.values() if node.tls_address)

    @property
    def connection(self) -> KafkaConnection:
        """The admin's connection (a super user); on an open cluster, anyone's."""
        if self.security is None:
            return KafkaConnection(self.bootstrap)
        return self.security.connection(self.bootstrap)

    def log_file(self, node_id: int) -> Path:
        return self.log_dir / f"kafka-{node_id}.log"

    def log(self, node_id: int) -> str:
        path = self.log_file(node_id)
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, node_id: int, command: list[str]) -> subprocess.Popen:
        # A session of its own, like every server the tests start: signals reach only it.
        with self.log_file(node_id).open("ab") as out:
            return subprocess.Popen(  # noqa: S603
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self, timeout: float = 90.0) -> None:
        """Format every node's storage with one cluster id, start them all, wait until ready."""
        self.lib_dir = resolve_kafka()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        voters = ",".join(node.voter for node in self.nodes.values())
        cluster_id = new_cluster_id()
        formats = {}
        for node_id, node in self.nodes.items():
            config = node.write_config(voters, self.size)
            formats[node_id] = self._spawn(
                node_id, node.format_command(cluster_id, config, self.lib_dir)
            )
        for node_id, process in formats.items():
            if process.wait(60) != 0:
                raise RuntimeError(
                    f"formatting node {node_id} failed:\n{self.log(node_id)[-3000:]}"
                )
        for node_id in self.nodes:
            self._launch(node_id)
        self.wait_until_ready(timeout)

    def _launch(self, node_id: int) -> None:
        assert self.lib_dir is not None, "start() the cluster first"
        config = str(self.nodes[node_id].config_file)
        dump = None
        if not class_archive(self.lib_dir).exists():
            # One node makes the archive as it stops (see stop), even if killed and started again.
            if self.dumping is None:
                self.dumping = (node_id, self.lib_dir / f"kafka.jsa.{uuid.uuid4().hex}")
            if self.dumping[0] == node_id:
                dump = self.dumping[1]
        self.processes[node_id] = self._spawn(
            node_id, java_command(SERVER_MAIN, config, lib_dir=self.lib_dir, dump_archive=dump)
        )

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Wait until every node not killed is a live broker and an acks=all produce is
        acknowledged."""

        def ready() -> bool:
            for node_id, process in self.processes.items():
                if node_id not in self.killed and process.poll() is not None:
                    raise RuntimeError(
                        f"Kafka node {node_id} exited with {process.returncode}:\n"
                        + self.log(node_id)[-3000:]
                    )
            return broker_ready(self.connection, set(self.nodes) - self.killed, min(3, self.size))

        wait_until(ready, timeout, interval=0.2, message=f"{self.size} Kafka node(s) to serve")

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash or the OOM killer would: no clean shutdown."""
        process = self.processes[node_id]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        self.killed.add(node_id)

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Start a stopped or killed node again on its data and ports; wait until ready."""
        assert self.processes[node_id].poll() is not None, f"node {node_id} still runs"
        self._launch(node_id)
        self.killed.discard(node_id)
        self.wait_until_ready(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every node at once, so each shuts down cleanly; SIGKILL any still running
        after `timeout` seconds (the last nodes of a cluster may wait for a quorum that is gone)."""
        running = {n: p for n, p in self.processes.items() if p.poll() is None}
        for process in running.values():
            process.terminate()
        for node_id, process in running.items():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka node %s did not stop in %ss; killed", node_id, timeout)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self.dumping is not None:
            # Written whole at exit, then renamed: no JVM ever maps a half-written archive.
            dump = self.dumping[1]
            if dump.exists():
                dump.replace(class_archive(dump.parent))
            self.dumping = None

    def _partition(self, topic: str, partition: int):
        metadata = admin_client(self.connection).list_topics(topic, timeout=10)
        return metadata.topics[topic].partitions[partition]

    def leader_of(self, topic: str, partition: int) -> int:
        """The node id that leads `partition` of `topic`, as the cluster's metadata says."""
        return self._partition(topic, partition).leader

    def in_sync_replicas(self, topic: str, partition: int) -> list[int]:
        """The node ids of the partition's in-sync replicas."""
        return list(self._partition(topic, partition).isrs)


def single_node_command(port: int, home: Path = VAR_DIR / "kafka") -> list[str]:
    """The command that runs one node in the foreground on 127.0.0.1:`port`.

    Its data live in `home`/data, formatted on the first run and kept for the next ones.
    """
    lib_dir = resolve_kafka()
    # The controller's port is this run's own: a static quorum keeps no address in its data.
    node = KafkaNode(1, port, free_port(), home)
    config = node.write_config(node.voter, 1)
    if not node.formatted():
        subprocess.run(node.format_command(new_cluster_id(), config, lib_dir), check=True)  # noqa: S603
    return java_command(SERVER_MAIN, str(config), lib_dir=lib_dir)
