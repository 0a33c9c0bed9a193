"""docker-compose.yml's broker, run here as compose runs it: deploy/kafka/start-broker.sh on
this machine's Apache Kafka jars, with the files and environment compose gives the `kafka`
service, then the `kafka-setup` service's command with its environment. Nobody gets in without
signing in, and each app's identity, configured as compose configures it, does only its part.

Only what cannot run without a container engine is translated: the image's /opt/kafka/bin
scripts are small ones running the same classes, and the node's addresses and data folder are
loopback ports and a temporary folder (checked to be the only settings changed).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from flask import Flask

from data_app.config import DATA_SETTINGS
from devserver.apache_kafka import resolve_kafka
from devserver.kafka_node import (
    SERVER_MAIN,
    STORAGE_TOOL,
    java_command,
    parse_properties,
    read_properties,
)
from devserver.ports import free_port
from devserver.processes import wait_until
from gateway_app.config import GATEWAY_SETTINGS
from patient_app.config import PATIENT_SETTINGS
from patient_app.producer import VitalsProducer
from shared.config import Setting, load_settings
from shared.kafka import KafkaConnection
from shared.kafka_acls import ACL_SETTINGS
from tests.compose import ROOT, TEST_SECRETS, compose_config
from tests.helpers import (
    consumer_of,
    data_app_on,
    simulator_sample,
    stored_rows,
    topic_size,
)
from tests.secured_kafka import forged_sample, produce_one

pytestmark = [pytest.mark.apache_kafka, pytest.mark.integration]

# The image's paths that the broker's command, script and healthcheck name.
IMAGE_KAFKA_HOME = "/opt/kafka"
RUN_DIR = "/tmp/vigil-kafka"
# The image's scripts that start-broker.sh and the healthcheck run, and the class each runs.
IMAGE_TOOLS = {
    "kafka-storage.sh": STORAGE_TOOL,
    "kafka-server-start.sh": SERVER_MAIN,
    "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
}
# The only settings of deploy/kafka/node.properties that differ here: where it listens and
# keeps its data.
LOCAL_SETTINGS = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
TOPIC = "vitals"
DEAD_LETTERS = "vitals.dlq"


def image_tools(home: Path) -> Path:
    """A KAFKA_HOME whose bin/ runs what the image's scripts run, on this machine's jars."""
    lib_dir = resolve_kafka()
    (home / "bin").mkdir(parents=True)
    for name, main in IMAGE_TOOLS.items():
        script = home / "bin" / name
        script.write_text(
            f'#!/bin/sh\nexec {shlex.join(java_command(main, lib_dir=lib_dir))} "$@"\n'
        )
        script.chmod(0o755)
    return home


def local_node_properties(text: str, port: int, controller_port: int, data_dir: Path) -> str:
    """node.properties with loopback ports for kafka:9092 and :9093, and `data_dir`."""
    text = re.sub(r"(?:kafka)?:9092\b", f"127.0.0.1:{port}", text)
    text = re.sub(r"(?:kafka)?:9093\b", f"127.0.0.1:{controller_port}", text)
    return re.sub(r"^log\.dirs=.*$", f"log.dirs={data_dir}", text, flags=re.MULTILINE)


def service_environment(service: dict, bootstrap: str) -> dict[str, str]:
    """The service's environment as compose gives it, with the broker at `bootstrap`."""
    environment = {key: str(value) for key, value in service["environment"].items()}
    if "KAFKA_BOOTSTRAP_SERVERS" in environment:
        environment["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return environment


def connection_of(settings: tuple[Setting, ...], service: dict, bootstrap: str) -> KafkaConnection:
    """The Kafka connection the app of `service` makes from its compose settings."""
    environment = service_environment(service, bootstrap)
    return KafkaConnection.from_config(load_settings(settings, environment, dotenv=False))


@dataclass
class ComposeBroker:
    """The compose `kafka` service running here, and how to reach it."""

    compose: dict
    home: Path
    config_dir: Path
    run_dir: Path
    port: int
    log_file: Path
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def service(self) -> dict:
        return self.compose["services"]["kafka"]

    def script_environment(self, **changes: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            **service_environment(self.service, self.bootstrap),
            "KAFKA_HOME": str(self.home),
            "VIGIL_KAFKA_CONFIG_DIR": str(self.config_dir),
            "VIGIL_KAFKA_RUN_DIR": str(self.run_dir),
            **changes,
        }

    def command(self) -> list[str]:
        """The service's command, naming the script where this machine has it."""
        script = "/etc/vigil/kafka/start-broker.sh"
        return [
            str(self.config_dir / "start-broker.sh") if a == script else a
            for a in self.service["command"]
        ]

    def start(self) -> None:
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                self.command(),
                env=self.script_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.healthy, 120, interval=0.5, message="the compose broker's healthcheck")

    def healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        return self.healthcheck().returncode == 0

    def healthcheck(self) -> subprocess.CompletedProcess:
        """The service's healthcheck command (CMD-SHELL), run against this broker."""
        kind, command = self.service["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        command = (
            command.replace(IMAGE_KAFKA_HOME, str(self.home))
            .replace(RUN_DIR, str(self.run_dir))
            .replace("localhost:9092", self.bootstrap)
        )
        return subprocess.run(["sh", "-c", command], capture_output=True, timeout=60, check=False)  # noqa: S603, S607

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""

    def setup(self, **changes: str) -> subprocess.CompletedProcess:
        """The `kafka-setup` service's command with its environment (and `changes`)."""
        service = self.compose["services"]["kafka-setup"]
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("KAFKA_", "VIGIL_"))
        }
        environment |= service_environment(service, self.bootstrap) | changes
        command = service["command"]
        assert command[0] == "python"
        return subprocess.run(  # noqa: S603
            [sys.executable, *command[1:]],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def admin(self) -> KafkaConnection:
        return connection_of(ACL_SETTINGS, self.compose["services"]["kafka-setup"], self.bootstrap)

    def identity(self, service: str) -> KafkaConnection:
        if service.startswith("patient"):
            settings = PATIENT_SETTINGS
        else:
            settings = {"data": DATA_SETTINGS, "gateway": GATEWAY_SETTINGS}[service]
        return connection_of(settings, self.compose["services"][service], self.bootstrap)


@pytest.fixture(scope="module")
def compose_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeBroker]:
    """The compose broker, started by its script, with `kafka-setup` run once."""
    compose = compose_config()
    kafka = compose["services"]["kafka"]
    root = tmp_path_factory.mktemp("compose-kafka")
    config_dir = root / "etc-vigil-kafka"
    config_dir.mkdir()
    port, controller_port = free_port(), free_port()
    for mount in kafka["volumes"]:
        if mount["type"] != "bind":
            continue
        text = Path(mount["source"]).read_text()
        name = Path(mount["target"]).name
        if name == "node.properties":
            local = local_node_properties(text, port, controller_port, root / "data")
            changed = {
                key
                for key, value in parse_properties(local).items()
                if parse_properties(text).get(key) != value
            }
            assert changed == LOCAL_SETTINGS
            text = local
        (config_dir / name).write_text(text)
    broker = ComposeBroker(
        compose,
        image_tools(root / "opt-kafka"),
        config_dir,
        root / "run",
        port,
        root / "kafka.log",
    )
    try:
        broker.start()
        result = broker.setup()
        assert result.returncode == 0, result.stderr
        yield broker
    finally:
        broker.stop()


def test_the_broker_keeps_the_passwords_to_its_own_user(compose_broker: ComposeBroker):
    for name in ("server.properties", "admin.properties"):
        path = compose_broker.run_dir / name
        assert path.stat().st_mode & 0o077 == 0, name
        assert TEST_SECRETS["VIGIL_KAFKA_ADMIN_PASSWORD"] in path.read_text()
    # The apps' passwords are in no file of the broker's: kafka-setup gives them over the wire.
    written = (compose_broker.run_dir / "server.properties").read_text()
    assert TEST_SECRETS["VIGIL_KAFKA_PATIENT_PASSWORD"] not in written
    assert read_properties(compose_broker.run_dir / "server.properties")["super.users"] == (
        "User:admin"
    )


@pytest.mark.parametrize("who", ["no credentials", "a wrong password", "an unknown user"])
def test_nobody_writes_vitals_without_signing_in(compose_broker: ComposeBroker, who: str):
    bootstrap = compose_broker.bootstrap
    connection = {
        "no credentials": KafkaConnection(bootstrap),
        "a wrong password": KafkaConnection(
            bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", "patient_app", "guessed"
        ),
        "an unknown user": KafkaConnection(
            bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", "mallory", "guessed"
        ),
    }[who]
    before = topic_size(compose_broker.admin(), TOPIC)

    delivery = produce_one(connection, TOPIC, forged_sample())

    assert delivery.error is not None, "a forged sample was accepted"
    if who != "no credentials":
        assert KafkaError._AUTHENTICATION in delivery.codes
    assert topic_size(compose_broker.admin(), TOPIC) == before


def test_a_simulator_as_compose_configures_it_writes_vitals_and_nothing_else(
    compose_broker: ComposeBroker,
):
    simulator = compose_broker.identity("patient-1")
    assert simulator.username == "patient_app"

    assert produce_one(simulator, TOPIC, b"sample").error is None
    refused = produce_one(simulator, DEAD_LETTERS, b"forged")
    assert refused.error is not None
    assert refused.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # No topic appears because a client wrote to a name nobody created.
    invented = produce_one(simulator, f"{TOPIC}-invented", b"forged")
    assert invented.error is not None


def test_data_app_as_compose_configures_it_writes_dead_letters_and_no_vitals(
    compose_broker: ComposeBroker,
):
    data = compose_broker.identity("data")
    assert data.username == "data_app"

    assert produce_one(data, DEAD_LETTERS, b"rejected").error is None
    forged = produce_one(data, TOPIC, forged_sample())
    assert forged.error is not None
    assert forged.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_gateway_as_compose_configures_it_writes_vitals_and_dead_letters_only(
    compose_broker: ComposeBroker,
):
    gateway = compose_broker.identity("gateway")
    assert gateway.username == "gateway_app"

    assert produce_one(gateway, TOPIC, b"sample").error is None
    assert produce_one(gateway, DEAD_LETTERS, b"unusable HL7").error is None
    invented = produce_one(gateway, f"{TOPIC}-invented", b"forged")
    assert invented.error is not None
    assert invented.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.fixture
def compose_data_app(
    compose_broker: ComposeBroker, sqlite_url: str, redis_settings: dict[str, str]
) -> Iterator[Flask]:
    """data_app with compose's Kafka settings, on a database and Redis of this test's own,
    in a consumer group of its own (so the samples other tests wrote are its to read too)."""
    environment = service_environment(compose_broker.compose["services"]["data"], "")
    kafka = {key: value for key, value in environment.items() if key.startswith("KAFKA_")}
    with data_app_on(
        {
            **kafka,
            "KAFKA_BOOTSTRAP_SERVERS": compose_broker.bootstrap,
            "DATABASE_URL": sqlite_url,
            "KAFKA_GROUP_ID": "vigil-data",
            **redis_settings,
        }
    ) as app:
        yield app


def test_a_simulated_sample_reaches_the_database_through_the_compose_broker(
    compose_broker: ComposeBroker, compose_data_app: Flask, wait_for
):
    producer = VitalsProducer(compose_broker.identity("patient-1"), TOPIC)
    producer.start()
    consumer_of(compose_data_app).start()
    patient = uuid.uuid4()
    try:
        producer.send_metrics(patient, simulator_sample(patient))
        wait_for(lambda: stored_rows(compose_data_app) >= 1, 60, message="the sample stored")
    finally:
        producer.stop()
    assert producer.stats["delivered"] == 1


def test_setup_runs_again_and_a_changed_password_takes_effect(compose_broker: ComposeBroker):
    """Compose runs `kafka-setup` at every `up`: nothing breaks, and a new
    VIGIL_KAFKA_DATA_PASSWORD replaces the old one."""
    again = compose_broker.setup()
    assert again.returncode == 0, again.stderr
    old = compose_broker.identity("data")
    assert produce_one(old, DEAD_LETTERS, b"still in").error is None

    changed = compose_broker.setup(KAFKA_CONSUMER_PASSWORD="changed0password")
    try:
        assert changed.returncode == 0, changed.stderr
        assert KafkaError._AUTHENTICATION in produce_one(old, DEAD_LETTERS, b"old").codes
        new = KafkaConnection(
            old.bootstrap_servers,
            old.protocol,
            old.sasl_mechanism,
            old.username,
            "changed0password",
        )
        assert produce_one(new, DEAD_LETTERS, b"new").error is None
    finally:
        assert compose_broker.setup().returncode == 0


def test_a_restarted_broker_keeps_its_identities_and_formats_nothing(
    compose_broker: ComposeBroker,
):
    formatted = (compose_broker.config_dir.parent / "data" / "meta.properties").read_text()
    compose_broker.stop()
    compose_broker.start()

    assert (compose_broker.config_dir.parent / "data" / "meta.properties").read_text() == formatted
    assert produce_one(compose_broker.identity("patient-2"), TOPIC, b"after").error is None


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("", "VIGIL_KAFKA_ADMIN_PASSWORD"),
        ('x" user_mallory="x', "letters and digits only"),
        ("x];SCRAM-SHA-512=[name=mallory", "letters and digits only"),
    ],
)
def test_the_start_script_refuses_an_admin_password_it_cannot_quote(
    compose_broker: ComposeBroker, tmp_path: Path, password: str, says: str
):
    """A password that would end its quotes would add a controller user of its own choosing."""
    result = subprocess.run(  # noqa: S603
        compose_broker.command(),
        env=compose_broker.script_environment(
            KAFKA_ADMIN_PASSWORD=password, VIGIL_KAFKA_RUN_DIR=str(tmp_path / "run")
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert says in result.stderr
    assert not (tmp_path / "run").exists()
