"""The run files: docker-compose.yml validates and runs every app on PostgreSQL with Prometheus
and Grafana watching, the files under deploy/ agree with it, and the Procfile runs the system.
Compose refuses to start without its passwords, publishes only the front door, Grafana and the
HL7 gateway's MLLP port on loopback, runs nothing as root, pins every image, and reaches the
analyser over TLS."""

import json
import os
import re
import shlex
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import make_url

from analyser_app.config import ANALYSER_SETTINGS
from data_app.config import DATA_SETTINGS
from devserver.apache_kafka import BROKER_PROPERTIES, kafka_version
from devserver.kafka_node import SECURED_PROPERTIES, read_properties, size_properties
from devserver.processes import MONITOR_CONNECTIONS
from devserver.redis_server import redis_command
from gateway_app.config import GATEWAY_SETTINGS
from monitor_app.config import MONITOR_SETTINGS
from patient_app.config import PATIENT_SETTINGS
from shared.auth.tokens import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME
from shared.config import DATABASE_SETTING, RedisRole, load_settings, redis_url_setting
from shared.lifecycle import stop_background
from shared.redis_acl import USER_NAMES, password_setting, user_name
from shared.serve import GEVENT_WORKER_CLASS
from tests.compose import (
    PASSWORD_VARIABLES,
    ROOT,
    TEST_SECRETS,
    compose_config,
    host_path,
    run_compose_config,
)
from worker_app.config import WORKER_SETTINGS

DEPLOY = ROOT / "deploy"

# The settings each app service reads, to tell which of them use the database.
APP_SETTINGS = {
    "analyser": ANALYSER_SETTINGS,
    "worker": WORKER_SETTINGS,
    "data": DATA_SETTINGS,
    "monitor": MONITOR_SETTINGS,
    "gateway": GATEWAY_SETTINGS,
    "patient-1": PATIENT_SETTINGS,
    "patient-2": PATIENT_SETTINGS,
    "patient-3": PATIENT_SETTINGS,
    "patient-4": PATIENT_SETTINGS,
}

# The settings naming the token key files: the private one only monitor_app reads.
PRIVATE_KEY_SETTING = "AUTH_PRIVATE_KEY_FILE"
PUBLIC_KEY_SETTING = "AUTH_PUBLIC_KEY_FILE"


def reads(name: str, setting: str) -> bool:
    """Whether app service `name` reads the setting `setting`."""
    return any(each.name == setting for each in APP_SETTINGS[name])


def signs_in(name: str) -> bool:
    """Whether the app checks bearer tokens, so that its /metrics needs one."""
    return reads(name, PUBLIC_KEY_SETTING) or reads(name, PRIVATE_KEY_SETTING)


LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}

# What a server binds to so that other containers (Prometheus) reach it.
ALL_INTERFACES = "0.0.0.0"
# The Prometheus image's default listen address.
PROMETHEUS_PORT = 9090

# Every metric shared/telemetry.py exports; the dashboard may query no other.
EXPORTED_METRICS = {
    "vigil_http_requests_total",
    "vigil_http_request_duration_seconds",
    "vigil_samples_produced_total",
    "vigil_samples_delivery_failed_total",
    "vigil_samples_consumed_total",
    "vigil_samples_stored_total",
    "vigil_samples_dead_lettered_total",
    "vigil_batch_commit_seconds",
    "vigil_consumer_lag",
    "vigil_alerts_raised_total",
    "vigil_notifications_created_total",
    "vigil_analysis_duration_seconds",
    "vigil_analyses_total",
    "vigil_websocket_clients",
}
HISTOGRAMS = {
    "vigil_http_request_duration_seconds",
    "vigil_batch_commit_seconds",
    "vigil_analysis_duration_seconds",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_config()


@pytest.fixture(scope="module")
def compose_file() -> dict:
    """docker-compose.yml as written, before compose fills in any variable."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# -- helpers --------------------------------------------------------------------------------


def procfile_entries() -> dict[str, str]:
    """The Procfile's processes: name → command."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip())


def served_ports(name: str, service: dict) -> set[int]:
    """Ports the service serves on every interface, so other containers can reach them."""
    args = service.get("command") or []
    options = dict(zip(args, args[1:], strict=False))
    ports = set()
    if "--bind" in options:  # gunicorn
        host, port = options["--bind"].rsplit(":", 1)
        if host == ALL_INTERFACES:
            ports.add(int(port))
    if "--port" in options and options.get("--host") == ALL_INTERFACES:  # python -m <app>
        ports.add(int(options["--port"]))
    if name == "worker":
        # Celery serves no HTTP; the worker starts a metrics server as its settings say.
        config = load_settings(WORKER_SETTINGS, service["environment"], dotenv=False)
        if config["METRICS_HOST"] == ALL_INTERFACES and config["METRICS_PORT"]:
            ports.add(config["METRICS_PORT"])
    if name == "gateway":
        # Beside its HTTP, the MLLP listener its settings place.
        config = gateway_settings(service)
        if config["HL7_HOST"] == ALL_INTERFACES:
            ports.add(config["HL7_PORT"])
    return ports


def gateway_settings(service: dict) -> dict:
    """gateway_app's settings as compose's environment gives them."""
    environment = {key: str(value) for key, value in service["environment"].items()}
    return load_settings(GATEWAY_SETTINGS, environment, dotenv=False)


def healthcheck_port(service: dict) -> int | None:
    """The local port an HTTP healthcheck probes, if it probes one."""
    match = re.search(
        r"https?://(?:127\.0\.0\.1|localhost):(\d+)/", " ".join(service["healthcheck"]["test"])
    )
    return int(match.group(1)) if match else None


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck", {})
    return bool(check.get("test")) and not check.get("disable") and check["test"] != ["NONE"]


def app_services(compose: dict) -> set[str]:
    """The long-running services that run Vigil's own code (built from the Dockerfile)."""
    return {
        name
        for name, service in compose["services"].items()
        if "build" in service and service.get("restart") != "no"
    }


def made_volumes(compose: dict) -> set[str]:
    """The volumes the one-shot services (`keys`, `tls`) write."""
    return {
        mount["source"]
        for service in compose["services"].values()
        if service.get("restart") == "no"
        for mount in service.get("volumes", [])
        if mount["type"] == "volume"
    }


def keys_volumes(compose: dict) -> dict[str, str]:
    """Volume -> the folder the one-shot `keys` service mounts it at."""
    return {
        mount["source"]: mount["target"]
        for mount in compose["services"]["keys"]["volumes"]
        if mount["type"] == "volume"
    }


def key_mounts(service: dict, compose: dict) -> list[dict]:
    """The service's mounts of the volumes holding token keys."""
    volumes = keys_volumes(compose)
    return [
        mount
        for mount in service.get("volumes", [])
        if mount["type"] == "volume" and mount["source"] in volumes
    ]


def signing_volume(compose: dict) -> str:
    """The volume the `keys` service makes the key pair in (the private key's)."""
    command = " ".join(compose["services"]["keys"]["command"])
    match = re.search(r"python -m shared\.auth\.keys (\S+)", command)
    assert match, command
    [volume] = [v for v, folder in keys_volumes(compose).items() if folder == match.group(1)]
    return volume


def key_files(compose: dict) -> dict[str, set[str]]:
    """Volume -> the key files the `keys` service leaves in it: the pair where it makes
    them, and what it copies elsewhere."""
    files = {volume: set() for volume in keys_volumes(compose)}
    files[signing_volume(compose)] = {PRIVATE_KEY_NAME, PUBLIC_KEY_NAME}
    command = " ".join(compose["services"]["keys"]["command"])
    for copied in re.findall(r"\bcp \S+ (\S+)", command):
        target = PurePosixPath(copied)
        for volume, folder in keys_volumes(compose).items():
            if str(target.parent) == folder:
                files[volume].add(target.name)
    return files


@pytest.fixture(scope="module")
def prometheus_config() -> dict:
    return yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())


@pytest.fixture(scope="module")
def grafana(compose) -> dict:
    return compose["services"]["grafana"]


@pytest.fixture(scope="module")
def datasources(grafana) -> list[dict]:
    path = host_path(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml")
    assert path is not None, "grafana mounts its provisioning folder"
    return yaml.safe_load(path.read_text())["datasources"]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "vigil.json").read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


# -- the apps on Kafka and Redis; the Procfile -----------------------------------------------


# The Kafka identity of each app service that uses Kafka, and the variable of its password.
KAFKA_IDENTITIES = {
    "data": ("data_app", "VIGIL_KAFKA_DATA_PASSWORD"),
    "gateway": ("gateway_app", "VIGIL_KAFKA_GATEWAY_PASSWORD"),
    "patient-1": ("patient_app", "VIGIL_KAFKA_PATIENT_PASSWORD"),
    "patient-2": ("patient_app", "VIGIL_KAFKA_PATIENT_PASSWORD"),
    "patient-3": ("patient_app", "VIGIL_KAFKA_PATIENT_PASSWORD"),
}
# Where the broker's start script reads its settings, in the container.
KAFKA_CONFIG_DIR = "/etc/vigil/kafka"


def kafka_node_properties(compose: dict) -> dict[str, str]:
    return read_properties(
        host_path(compose["services"]["kafka"], f"{KAFKA_CONFIG_DIR}/node.properties")
    )


def test_compose_runs_every_app_on_apache_kafka(compose):
    services = compose["services"]
    assert {
        "kafka",
        "kafka-setup",
        "redis",
        "analyser",
        "worker",
        "data",
        "monitor",
        "gateway",
        "patient-1",
        "patient-2",
        "patient-3",
        "patient-4",
    } <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in kafka_node_properties(compose)["process.roles"]


def test_compose_kafka_is_the_version_and_settings_the_tests_run(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    assert host_path(kafka, f"{KAFKA_CONFIG_DIR}/broker.properties") == BROKER_PROPERTIES
    assert host_path(kafka, f"{KAFKA_CONFIG_DIR}/secured.properties") == SECURED_PROPERTIES
    script = host_path(kafka, f"{KAFKA_CONFIG_DIR}/start-broker.sh")
    assert script == DEPLOY / "kafka" / "start-broker.sh"
    assert kafka["command"] == ["sh", f"{KAFKA_CONFIG_DIR}/start-broker.sh"]
    # Read in this order, the last value of a key winning: the node's own settings last.
    files = ("broker.properties", "secured.properties", "node.properties")
    assert " ".join(f'"$config_dir/{name}"' for name in files) in script.read_text()


def test_compose_kafka_node_changes_no_shared_broker_setting(compose):
    """The node's file may give listeners and sizes of its own, never another value to a
    setting every node shares (broker.properties) or the security ones (secured.properties)."""
    node = kafka_node_properties(compose)
    shared = read_properties(BROKER_PROPERTIES) | read_properties(SECURED_PROPERTIES)
    own = {"listener.security.protocol.map", "inter.broker.listener.name"}
    changed = {key for key in node if key in shared and node[key] != shared[key]}
    assert changed <= own | set(size_properties(1))
    assert {key: node[key] for key in size_properties(1)} == size_properties(1)
    # Clients and the controller sign in on every listener: none is PLAINTEXT.
    assert "PLAINTEXT://" not in node["listeners"].replace("SASL_PLAINTEXT://", "")
    protocols = dict(pair.split(":") for pair in node["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    # The data live in the named volume, not in the container's /tmp (the image's default).
    kafka = compose["services"]["kafka"]
    [data] = [mount for mount in kafka["volumes"] if mount["type"] == "volume"]
    assert node["log.dirs"] == data["target"]


@pytest.mark.parametrize("name", sorted(KAFKA_IDENTITIES))
def test_apps_sign_in_to_the_broker_as_their_own_identity(compose, name):
    service = compose["services"][name]
    user, variable = KAFKA_IDENTITIES[name]
    environment = service["environment"]
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert environment["EMBEDDED_BROKER"] == "false"
    assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert environment["KAFKA_SASL_USERNAME"] == user
    assert environment["KAFKA_SASL_PASSWORD"] == TEST_SECRETS[variable]
    # Its identity, topics and ACLs exist before it starts.
    assert service["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"


def test_kafka_setup_makes_each_identity_with_the_password_its_app_uses(compose):
    services = compose["services"]
    setup = services["kafka-setup"]
    environment = setup["environment"]
    assert " ".join(setup["command"]) == "python -m shared.kafka_acls"
    assert setup["restart"] == "no"
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert environment["KAFKA_SASL_USERNAME"] == "admin"
    assert "User:admin" in read_properties(SECURED_PROPERTIES)["super.users"].split(",")
    admin = TEST_SECRETS["VIGIL_KAFKA_ADMIN_PASSWORD"]
    assert environment["KAFKA_SASL_PASSWORD"] == admin
    assert services["kafka"]["environment"]["KAFKA_ADMIN_PASSWORD"] == admin
    assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    made = {
        environment["KAFKA_PRODUCER_USER"]: environment["KAFKA_PRODUCER_PASSWORD"],
        environment["KAFKA_CONSUMER_USER"]: environment["KAFKA_CONSUMER_PASSWORD"],
        environment["KAFKA_GATEWAY_USER"]: environment["KAFKA_GATEWAY_PASSWORD"],
    }
    used = {
        services[name]["environment"]["KAFKA_SASL_USERNAME"]: services[name]["environment"][
            "KAFKA_SASL_PASSWORD"
        ]
        for name in KAFKA_IDENTITIES
    }
    assert made == used


# The simulator that sends over HL7 talks to the gateway, never to Kafka.
@pytest.mark.parametrize("name", ["monitor", "worker", "analyser", "patient-4"])
def test_apps_that_do_not_use_kafka_hold_no_kafka_credentials(compose, name):
    service = compose["services"][name]
    assert not [variable for variable in service["environment"] if variable.startswith("KAFKA_")]
    assert "kafka" not in service.get("depends_on", {})
    assert "kafka-setup" not in service.get("depends_on", {})


def test_one_patient_deteriorates(compose):
    commands = [" ".join(compose["services"][f"patient-{i}"]["command"]) for i in (1, 2, 3, 4)]
    assert any("deteriorating" in command for command in commands)


# Where Docker takes a compose network's addresses from, unless its daemon is told otherwise.
DOCKER_ADDRESS_POOLS = ("172.17.0.0/16", "172.31.0.0/16", "192.168.0.0/16")


def patient_settings(service: dict) -> dict:
    """patient_app's settings as compose's environment and command line give them."""
    environment = {key: str(value) for key, value in service["environment"].items()}
    args = service["command"]
    assert args[:3] == ["python", "-m", "patient_app"], args
    options = dict(zip(args[3::2], args[4::2], strict=True))
    if "--protocol" in options:  # as patient_app/__main__.py passes it on
        environment["PATIENT_PROTOCOL"] = options["--protocol"]
    return load_settings(PATIENT_SETTINGS, environment, dotenv=False)


def compose_patients(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if name.startswith("patient-")
    }


def test_compose_runs_the_procfiles_patients(compose):
    """The same four named patients as `make run`, the same one over HL7."""
    procfile = [
        shlex.split(line.split(":", 1)[1])
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("patient")
    ]

    def named(args: list[str]) -> tuple[str, str, str]:
        options = dict(zip(args[3::2], args[4::2], strict=True))
        return (
            options["--name"],
            options.get("--scenario", "normal"),
            options.get("--protocol", "kafka"),
        )

    theirs = sorted(named(service["command"]) for service in compose_patients(compose).values())
    assert theirs == sorted(named(args) for args in procfile)


def test_the_hl7_patient_sends_to_the_gateway_and_holds_no_kafka_settings(compose):
    services = compose["services"]
    over_hl7 = [
        name
        for name, service in compose_patients(compose).items()
        if patient_settings(service)["PATIENT_PROTOCOL"] == "hl7"
    ]
    assert over_hl7 == ["patient-4"]
    patient, gateway = services["patient-4"], services["gateway"]
    config, listener = patient_settings(patient), gateway_settings(gateway)
    # To the gateway's MLLP listener, by its service name, once it is up.
    assert config["HL7_GATEWAY_HOST"] == "gateway"
    assert config["HL7_GATEWAY_PORT"] == listener["HL7_PORT"]
    assert listener["HL7_PORT"] in served_ports("gateway", gateway)
    assert patient["depends_on"]["gateway"]["condition"] == "service_healthy"
    # It sends from the compose network: the gateway's default senders cover it.
    for pool in DOCKER_ADDRESS_POOLS:
        network = ip_network(pool)
        assert any(network.subnet_of(n) for n in listener["HL7_ALLOWED_SENDERS"]), pool
    # The gateway takes its facility, and derives the uuids its simulator shows.
    allowed = listener["HL7_ALLOWED_FACILITIES"]
    assert not allowed or config["HL7_SENDING_FACILITY"] in allowed
    assert config["PATIENT_ID_SECRET"] == listener["PATIENT_ID_SECRET"]
    assert config["PATIENT_ID_SECRET"] == TEST_SECRETS["VIGIL_PATIENT_ID_SECRET"]
    # No Kafka setting at all, not even the broker's address: it never talks to Kafka.
    assert [v for v in patient["environment"] if v.startswith(("KAFKA_", "EMBEDDED_BROKER"))] == []
    kafka_password = TEST_SECRETS["VIGIL_KAFKA_PATIENT_PASSWORD"]
    assert kafka_password not in json.dumps(patient)
    # The Kafka simulators do send to Kafka.
    for name in compose_patients(compose).keys() - {"patient-4"}:
        assert patient_settings(services[name])["PATIENT_PROTOCOL"] == "kafka", name
        assert name in KAFKA_IDENTITIES, name


def test_monitor_app_is_served_on_gevent_workers_as_the_tests_serve_it(compose):
    """The Procfile and compose serve monitor_app on the gevent worker the tests start it
    with (devserver's start_monitor): a live stream holds no thread."""
    commands = {
        "Procfile": shlex.split(procfile_entries()["monitor"]),
        "compose": compose["services"]["monitor"]["command"],
    }
    for where, words in commands.items():
        options = dict(zip(words[2::2], words[3::2], strict=True))
        assert words[:2] == ["gunicorn", "monitor_app:create_app()"], where
        assert options["--worker-class"] == GEVENT_WORKER_CLASS, where
        assert int(options["--worker-connections"]) == MONITOR_CONNECTIONS, where
        assert "--threads" not in options, where


def test_procfile_starts_broker_apps_gateway_and_four_named_patients_one_over_hl7():
    entries = procfile_entries()
    assert entries["broker"].strip() == "python -m devserver.broker"
    assert entries["redis"].strip() == "python -m devserver.redis_server"
    assert "python -m analyser_app" in entries["analyser"]
    assert "celery" in entries["worker"] and "worker_app.celery_app" in entries["worker"]
    assert "gunicorn 'data_app:create_app()'" in entries["data"]
    assert "gunicorn 'monitor_app:create_app()'" in entries["monitor"]
    assert entries["gateway"].strip().startswith("python -m gateway_app")
    patients = [v for k, v in entries.items() if k.startswith("patient")]
    assert len(patients) == 4
    assert sum("--scenario deteriorating" in p for p in patients) == 1
    # One arrives as a bedside monitor's would: HL7 through the gateway, not straight to Kafka.
    assert sum("--protocol hl7" in p for p in patients) == 1


# The Redis roles each service plays (shared.config.RedisRole), so the users whose URLs it gets.
REDIS_ROLES = {
    "monitor": {RedisRole.CACHE, RedisRole.QUEUE, RedisRole.EVENTS},
    "worker-token": {RedisRole.CACHE, RedisRole.QUEUE, RedisRole.EVENTS},
    "data": {RedisRole.QUEUE, RedisRole.EVENTS},
    "worker": {RedisRole.QUEUE, RedisRole.EVENTS},
    "analyser": {RedisRole.EVENTS},
    # Only the revoked tokens, for its /metrics and /health: it enqueues nothing.
    "gateway": {RedisRole.EVENTS},
    "patient-1": {RedisRole.EVENTS},
    "patient-2": {RedisRole.EVENTS},
    "patient-3": {RedisRole.EVENTS},
    "patient-4": {RedisRole.EVENTS},
}


def redis_password_variable(user: str) -> str:
    """VIGIL_REDIS_CACHE_PASSWORD for vigil-cache, and so on."""
    return f"VIGIL_{password_setting(user)}"


@pytest.mark.parametrize("name", sorted(REDIS_ROLES))
def test_apps_get_the_redis_users_of_their_roles_and_no_other(compose, name):
    service = compose["services"][name]
    environment = service["environment"]
    given = {role for role in RedisRole if redis_url_setting(role) in environment}
    assert given == REDIS_ROLES[name]
    for role in given:
        url = urlsplit(environment[redis_url_setting(role)])
        assert (url.hostname, url.port) == ("redis", 6379)
        assert url.username == user_name(role)
        assert url.password == TEST_SECRETS[redis_password_variable(user_name(role))]
    # What has no URL of its own falls back on REDIS_URL: no user, so nothing.
    fallback = urlsplit(environment["REDIS_URL"])
    assert (fallback.username, fallback.password) == (None, None)
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_users_are_made_from_the_passwords_the_apps_use(compose):
    services = compose["services"]
    maker = services["redis-users"]
    assert maker["command"] == ["python", "-m", "shared.redis_acl", "/run/vigil/redis"]
    assert maker["restart"] == "no"
    for user in USER_NAMES:
        assert (
            maker["environment"][password_setting(user)]
            == TEST_SECRETS[redis_password_variable(user)]
        )
    redis = services["redis"]
    assert redis["depends_on"]["redis-users"]["condition"] == "service_completed_successfully"
    options = redis["command"]
    acl_file = PurePosixPath(options[options.index("--aclfile") + 1])
    mount = mounted_volume(redis, str(acl_file.parent))
    assert mount["read_only"] is True
    assert mount["source"] == maker["volumes"][0]["source"]
    assert maker["volumes"][0]["target"] == str(acl_file.parent)


def redis_options(command: list[str]) -> dict[str, str]:
    """A redis-server command line's --name value pairs."""
    assert command[0].endswith("redis-server"), command
    return dict(zip(command[1::2], command[2::2], strict=True))


def test_compose_redis_runs_with_the_options_of_the_tests_redis(compose):
    """Bounded memory, evicting only keys with a TTL; protected mode; nothing on disk."""
    ours = redis_options(redis_command(6379, Path("users.acl")))
    theirs = redis_options(compose["services"]["redis"]["command"])
    where = {"--port", "--bind", "--aclfile", "--dir", "--loglevel"}
    assert {k: v for k, v in theirs.items() if k not in where} == {
        k: v for k, v in ours.items() if k not in where
    }


def mounted_volume(service: dict, path: str) -> dict:
    """The read-only volume mount that shows `path` in the service's container."""
    [mount] = [
        m
        for m in service.get("volumes", [])
        if m["type"] == "volume" and PurePosixPath(path).is_relative_to(m["target"])
    ]
    assert mount["read_only"], path
    return mount


def tls_files(compose: dict) -> dict[str, str]:
    """What the one-shot `tls` service makes: volume -> folder, and the hosts named."""
    tls = compose["services"]["tls"]
    words = tls["command"]
    assert words[:3] == ["python", "-m", "devserver.tls"]
    folder, ca_folder = words[3:5]
    hosts = [words[i + 1] for i, word in enumerate(words) if word == "--host"]
    volumes = {m["target"]: m["source"] for m in tls["volumes"]}
    return {"server": volumes[folder], "ca": volumes[ca_folder], "hosts": hosts}


def test_the_worker_reaches_the_analyser_over_verified_tls(compose):
    """AI_API_URL must be https unless it is loopback: the analyser serves TLS with the
    certificate the `tls` service makes, and the worker trusts that CA alone."""
    services = compose["services"]
    worker, analyser = services["worker"], services["analyser"]
    environment = worker["environment"]
    url = urlsplit(environment["AI_API_URL"])
    assert (url.scheme, url.hostname) == ("https", "analyser")
    assert url.port in served_ports("analyser", analyser)
    load_settings(WORKER_SETTINGS, environment, dotenv=False)
    made = tls_files(compose)
    assert "analyser" in made["hosts"]
    # httpx reads SSL_CERT_FILE: the CA's certificate, from the volume `tls` writes it to.
    assert PurePosixPath(environment["SSL_CERT_FILE"]).name == "ca.pem"
    assert mounted_volume(worker, environment["SSL_CERT_FILE"])["source"] == made["ca"]
    options = dict(zip(analyser["command"], analyser["command"][1:], strict=False))
    for option, name in (("--certfile", "server.pem"), ("--keyfile", "server-key.pem")):
        assert PurePosixPath(options[option]).name == name
        assert mounted_volume(analyser, options[option])["source"] == made["server"]
    # The worker never gets the analyser's key.
    assert made["server"] not in {m.get("source") for m in worker.get("volumes", [])}
    assert analyser["depends_on"]["tls"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["analyser"]["condition"] == "service_healthy"


def test_the_worker_sends_the_analyser_a_token_only_it_mounts(compose):
    """The one-shot `worker-token` makes the worker's API token (analysis:write) with the
    signing key, in a volume of its own; the worker reads it there, and nobody else mounts it."""
    services = compose["services"]
    maker, worker = services["worker-token"], services["worker"]
    assert maker["restart"] == "no"
    command = maker["command"]
    assert command[:5] == ["python", "-m", "monitor_app", "tokens", "worker"]
    [written] = command[5:]
    token_file = worker["environment"]["AI_API_TOKEN_FILE"]
    assert token_file == written
    volume = mounted_volume(worker, token_file)["source"]
    [made] = [m for m in maker["volumes"] if m["type"] == "volume" and m["source"] == volume]
    assert not made.get("read_only")
    assert PurePosixPath(written).is_relative_to(made["target"])
    holders = {
        name
        for name, service in services.items()
        for mount in service.get("volumes", [])
        if mount.get("source") == volume
    }
    assert holders == {"worker", "worker-token"}
    # It signs with the private key, read-only, as monitor_app does.
    key = PurePosixPath(maker["environment"][PRIVATE_KEY_SETTING])
    assert mounted_volume(maker, str(key))["source"] == signing_volume(compose)
    assert worker["depends_on"]["worker-token"]["condition"] == "service_completed_successfully"
    assert "AI_API_TOKEN" not in worker["environment"]


def test_the_tls_service_makes_what_the_worker_verifies(compose, tmp_path):
    """`python -m devserver.tls` as the service runs it: the certificate names the analyser and
    is signed by the CA the worker trusts; a second run keeps it."""
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    from devserver.tls import main as make_tls

    words = compose["services"]["tls"]["command"]
    server, ca = tmp_path / "server", tmp_path / "ca"
    assert make_tls([str(server), str(ca), *words[5:]]) == 0
    certificate = x509.load_pem_x509_certificate((server / "server.pem").read_bytes())
    authority = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
    verifier = (
        PolicyBuilder().store(Store([authority])).build_server_verifier(x509.DNSName("analyser"))
    )
    verifier.verify(certificate, [])
    assert oct((server / "server-key.pem").stat().st_mode & 0o777) == "0o600"
    assert not (ca / "server-key.pem").exists()
    assert make_tls([str(server), str(ca), *words[5:]]) == 0
    assert (server / "server.pem").read_bytes() == certificate.public_bytes(
        serialization.Encoding.PEM
    )


# -- docker-compose.yml: services, health and start order -------------------------------------


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("postgres", "postgres:16"),
        ("prometheus", "prom/prometheus:"),
        ("grafana", "grafana/grafana:"),
    ],
)
def test_compose_runs_pinned_postgres_prometheus_and_grafana(compose, name, image):
    service = compose["services"][name]
    assert service["image"].startswith(image)
    assert not service["image"].endswith(":latest")
    assert has_healthcheck(service)


def test_postgres_keeps_its_data_in_a_named_volume_and_checks_readiness(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["environment"] == {
        "POSTGRES_USER": "vigil",
        "POSTGRES_PASSWORD": TEST_SECRETS["VIGIL_POSTGRES_PASSWORD"],
        "POSTGRES_DB": "vigil",
    }
    assert {"type": "volume", "target": "/var/lib/postgresql/data"}.items() <= postgres["volumes"][
        0
    ].items()
    assert postgres["volumes"][0]["source"] in compose["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_every_service_waited_on_has_a_healthcheck(compose):
    services = compose["services"]
    awaited = {
        dependency
        for service in services.values()
        for dependency, condition in service.get("depends_on", {}).items()
        if condition["condition"] == "service_healthy"
    }
    assert {
        "kafka",
        "redis",
        "postgres",
        "analyser",
        "data",
        "monitor",
        "gateway",
        "prometheus",
    } <= awaited
    assert [name for name in sorted(awaited) if not has_healthcheck(services[name])] == []


@pytest.mark.parametrize("name", sorted(APP_SETTINGS))
def test_every_app_checks_its_health_on_a_port_it_serves(compose, name):
    service = compose["services"][name]
    assert has_healthcheck(service)
    assert healthcheck_port(service) in served_ports(name, service)


@pytest.mark.parametrize("name", sorted(APP_SETTINGS))
def test_apps_that_use_the_database_use_postgres_and_wait_for_it(compose, name):
    service = compose["services"][name]
    if DATABASE_SETTING not in APP_SETTINGS[name]:
        assert "DATABASE_URL" not in service.get("environment", {})
        assert "postgres" not in service.get("depends_on", {})
        return
    url = make_url(service["environment"]["DATABASE_URL"])
    postgres = compose["services"]["postgres"]["environment"]
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_no_app_keeps_state_on_its_own_disk(compose):
    for name in app_services(compose):
        service = compose["services"][name]
        assert not service.get("environment", {}).get("DATABASE_URL", "").startswith("sqlite"), name
        # Only what the one-shot services make (token keys, certificates), read and never
        # written.
        made = made_volumes(compose)
        mounts = service.get("volumes", [])
        assert [m for m in mounts if m["type"] != "volume" or m["source"] not in made] == []
        assert all(mount["read_only"] for mount in mounts), name


# -- secrets, published ports, users and images ---------------------------------------------

# A literal where a password goes: anything but a `${VARIABLE:?message}` that compose must fill.
REQUIRED_VARIABLE = re.compile(r"\$\{(VIGIL_[A-Z_]+):\?[^}]+\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$")
# An exact release, 1.2.3, v1.2.3 or 1.2.3-alpine (PostgreSQL's have two parts since 10: 16.10),
# or a digest; never a line such as 7.4 or 16 that moves with every release.
EXACT_IMAGE = re.compile(
    r"(postgres:\d+\.\d+|[\w./-]+:v?\d+\.\d+\.\d+)(-[\w.]+)*|[\w./:-]+@sha256:[0-9a-f]{64}"
)
ROOT_USERS = {"root", "0", "0:0"}


@pytest.mark.parametrize("missing", PASSWORD_VARIABLES)
def test_compose_refuses_to_start_without_each_password(missing):
    result = run_compose_config({k: v for k, v in TEST_SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value" in result.stderr
    assert "README.md" in result.stderr  # where to read how to set it


def test_no_password_is_written_in_the_compose_file(compose_file):
    text = (ROOT / "docker-compose.yml").read_text()
    assert "vigil:vigil@" not in text
    for name, service in compose_file["services"].items():
        environment = service.get("environment") or {}
        for variable, value in environment.items():
            value = str(value)
            if SECRET_NAME.search(variable) and not variable.endswith("_FILE"):
                assert REQUIRED_VARIABLE.fullmatch(value), f"{name}: {variable}"
            # A URL's password, too, comes from the environment.
            password = urlsplit(value).password if "://" in value else None
            if password is not None:
                assert REQUIRED_VARIABLE.fullmatch(password), f"{name}: {variable}"
    # Every password compose asks for is one of those the README tells how to set.
    assert set(REQUIRED_VARIABLE.findall(text)) == set(PASSWORD_VARIABLES)


def test_the_readme_tells_how_to_set_every_password():
    readme = (ROOT / "README.md").read_text()
    assert set(re.findall(r"^export (VIGIL_[A-Z_]+)=", readme, re.M)) == set(PASSWORD_VARIABLES)


def test_every_password_is_used_where_it_is_checked(compose):
    services = compose["services"]
    postgres = TEST_SECRETS["VIGIL_POSTGRES_PASSWORD"]
    assert make_url(services["monitor"]["environment"]["DATABASE_URL"]).password == postgres
    # Redis asks every client for a user's password; its healthcheck sends the admin's
    # without a command line.
    assert "--aclfile" in services["redis"]["command"]
    assert "REDISCLI_AUTH" in " ".join(services["redis"]["healthcheck"]["test"])


def published(compose: dict) -> dict[str, list[dict]]:
    return {name: s["ports"] for name, s in compose["services"].items() if s.get("ports")}


def test_only_the_front_door_grafana_and_the_mllp_port_are_published_and_on_loopback(compose):
    ports = published(compose)
    assert set(ports) == {"monitor", "grafana", "gateway"}
    assert [p["host_ip"] for each in ports.values() for p in each] == ["127.0.0.1"] * 3
    # The gateway's MLLP port alone, where it listens; its HTTP stays inside.
    gateway = compose["services"]["gateway"]
    port = gateway_settings(gateway)["HL7_PORT"]
    assert [(p["target"], int(p["published"])) for p in ports["gateway"]] == [(port, port)]
    assert port in served_ports("gateway", gateway)
    assert healthcheck_port(gateway) not in {p["target"] for p in ports["gateway"]}


def test_the_gateway_takes_hl7_from_private_networks_unless_told(compose):
    """Published on loopback, it sees the host's own senders at its network's gateway address
    (private); VIGIL_HL7_ALLOWED_SENDERS names the monitors' networks."""
    allowed = gateway_settings(compose["services"]["gateway"])["HL7_ALLOWED_SENDERS"]
    assert allowed and all(network.is_private for network in allowed)
    told = compose_config({**TEST_SECRETS, "VIGIL_HL7_ALLOWED_SENDERS": "192.0.2.0/28"})
    told_allowed = gateway_settings(told["services"]["gateway"])["HL7_ALLOWED_SENDERS"]
    assert [str(network) for network in told_allowed] == ["192.0.2.0/28"]


def test_the_published_address_is_configurable():
    ports = published(compose_config({**TEST_SECRETS, "VIGIL_BIND": "192.0.2.7"}))
    assert {p["host_ip"] for each in ports.values() for p in each} == {"192.0.2.7"}


def test_every_image_is_an_exact_release(compose):
    images = {name: s["image"] for name, s in compose["services"].items() if "build" not in s}
    assert {name: image for name, image in images.items() if not EXACT_IMAGE.fullmatch(image)} == {}
    [base] = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert EXACT_IMAGE.fullmatch(base), base


def test_no_container_runs_as_root(compose):
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert users and users[-1] not in ROOT_USERS, users
    for name, service in compose["services"].items():
        if "build" in service:
            assert service.get("user", users[-1]) not in ROOT_USERS, name
        else:
            # Third-party images: said here, so that no new image version changes it.
            assert service.get("user") and service["user"] not in ROOT_USERS, name


# -- token keys ------------------------------------------------------------------------------


def test_the_keys_service_makes_the_pair_once_and_publishes_the_public_half(compose):
    keys = compose["services"]["keys"]
    assert keys.get("restart") == "no"
    assert not keys.get("ports")
    signing = signing_volume(compose)
    # shared.auth.keys keeps a pair it finds, so a restart does not void every token; the
    # other volume gets a copy of the public key, and nothing else.
    assert key_files(compose) == {
        volume: {PRIVATE_KEY_NAME, PUBLIC_KEY_NAME} if volume == signing else {PUBLIC_KEY_NAME}
        for volume in keys_volumes(compose)
    }
    assert len(keys_volumes(compose)) == 2
    # Named volumes: the keys outlive the containers.
    assert set(keys_volumes(compose)) <= set(compose["volumes"])


@pytest.mark.parametrize("name", sorted(APP_SETTINGS))
def test_every_app_gets_the_key_files_it_reads_and_no_other(compose, name):
    service = compose["services"][name]
    environment = service.get("environment", {})
    mounts = {mount["target"]: mount for mount in key_mounts(service, compose)}
    wanted = {PUBLIC_KEY_SETTING: PUBLIC_KEY_NAME, PRIVATE_KEY_SETTING: PRIVATE_KEY_NAME}
    for setting, file_name in wanted.items():
        if not reads(name, setting):
            assert setting not in environment
            continue
        path = PurePosixPath(environment[setting])
        assert path.name == file_name
        mount = mounts[str(path.parent)]
        assert mount["read_only"]
        assert file_name in key_files(compose)[mount["source"]], mount["source"]
    # The private key is where tokens are signed, and nowhere else.
    holds_private = signing_volume(compose) in {m["source"] for m in mounts.values()}
    assert holds_private == reads(name, PRIVATE_KEY_SETTING)
    if mounts:
        assert service["depends_on"]["keys"]["condition"] == "service_completed_successfully"
    else:
        assert "keys" not in service.get("depends_on", {})


def test_apps_that_check_tokens_have_a_key(compose):
    # What the parametrised test above relies on: these apps do read a key.
    assert {name for name in APP_SETTINGS if signs_in(name)} == {
        "analyser",
        "data",
        "monitor",
        "gateway",
        "patient-1",
        "patient-2",
        "patient-3",
        "patient-4",
    }


def test_whoever_mounts_a_made_volume_waits_for_its_maker(compose):
    """A named volume takes the owner of the folder it is first mounted at: mounted by another
    image before the one-shot service filled it, it would belong to root, and stay empty."""
    services = compose["services"]
    # A one-shot service makes what it mounts writable; what it only reads, another made.
    makers = {
        mount["source"]: name
        for name, service in services.items()
        if service.get("restart") == "no"
        for mount in service.get("volumes", [])
        if mount["type"] == "volume" and not mount.get("read_only")
    }
    waits = {}
    for name, service in services.items():
        for mount in service.get("volumes", []):
            maker = makers.get(mount.get("source"))
            if maker and maker != name:
                waits[(name, maker)] = service["depends_on"].get(maker, {}).get("condition")
    assert {
        ("worker", "tls"),
        ("worker", "worker-token"),
        ("worker-token", "keys"),
        ("analyser", "keys"),
        ("prometheus", "tls"),
        ("monitor", "keys"),
        ("gateway", "keys"),
    } <= set(waits)
    assert {pair: c for pair, c in waits.items() if c != "service_completed_successfully"} == {}


def test_monitoring_starts_after_what_it_watches(compose):
    services = compose["services"]
    assert {
        name: condition["condition"]
        for name, condition in services["prometheus"]["depends_on"].items()
    } == {
        "monitor": "service_healthy",
        "data": "service_healthy",
        "tls": "service_completed_successfully",
    }
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


# -- Prometheus ----------------------------------------------------------------------------


def test_prometheus_reads_the_config_in_deploy(compose):
    prometheus = compose["services"]["prometheus"]
    config = host_path(prometheus, "/etc/prometheus/prometheus.yml")
    assert config == DEPLOY / "prometheus" / "prometheus.yml"
    assert config.is_file()
    assert all(mount["read_only"] for mount in prometheus["volumes"] if mount["type"] == "bind")
    assert healthcheck_port(prometheus) == PROMETHEUS_PORT


def test_prometheus_scrapes_every_app_every_5s_with_one_job_per_kind(compose, prometheus_config):
    assert prometheus_config["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    assert set(jobs) == {"monitor", "data", "analyser", "worker", "patient", "gateway"}
    hosts = set()
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job.get("scrape_interval", "5s") == "5s"
        for target in (t for group in job["static_configs"] for t in group["targets"]):
            host = target.rsplit(":", 1)[0]
            # patient-1 to patient-4 are all of the job "patient".
            assert re.sub(r"-\d+$", "", host) == name
            hosts.add(host)
    assert hosts == app_services(compose)


def test_prometheus_scrapes_the_analyser_over_verified_tls(compose, prometheus_config):
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    analyser = jobs["analyser"]
    assert analyser["scheme"] == "https"
    assert "insecure_skip_verify" not in analyser["tls_config"]
    mount = mounted_volume(compose["services"]["prometheus"], analyser["tls_config"]["ca_file"])
    assert mount["source"] == tls_files(compose)["ca"]
    # The others serve plain HTTP inside the compose network.
    assert [name for name, job in jobs.items() if job.get("scheme") == "https"] == ["analyser"]


def job_services(job: dict) -> set[str]:
    return {
        target.rsplit(":", 1)[0] for group in job["static_configs"] for target in group["targets"]
    }


def test_prometheus_sends_a_token_from_a_file_to_the_apps_that_check_one(
    compose, prometheus_config
):
    prometheus = compose["services"]["prometheus"]
    for job in prometheus_config["scrape_configs"]:
        services = job_services(job)
        needs_token = {signs_in(name) for name in services}
        assert len(needs_token) == 1, f"job {job['job_name']} mixes apps with and without sign-in"
        if not needs_token.pop():
            # The token goes only where it is needed.
            assert "authorization" not in job and "basic_auth" not in job, job["job_name"]
            continue
        authorization = job["authorization"]
        assert authorization.get("type", "Bearer") == "Bearer"
        # From a file, never written into the config that is in the repository.
        assert set(authorization) <= {"type", "credentials_file"}, job["job_name"]
        token = host_path(prometheus, authorization["credentials_file"])
        assert token is not None, authorization["credentials_file"]
        assert token.is_relative_to(ROOT / "var"), token


def test_the_token_file_stays_out_of_the_repository_and_the_image():
    assert "var/" in (ROOT / ".gitignore").read_text().split()
    assert "var" in (ROOT / ".dockerignore").read_text().split()


def test_prometheus_mounts_its_token_read_only(compose, prometheus_config):
    prometheus = compose["services"]["prometheus"]
    [file] = {
        job["authorization"]["credentials_file"]
        for job in prometheus_config["scrape_configs"]
        if "authorization" in job
    }
    folder = str(PurePosixPath(file).parent)
    [mount] = [m for m in prometheus["volumes"] if m["target"] == folder]
    assert (mount["type"], mount["read_only"]) == ("bind", True)


def documented_token_commands() -> list[tuple[list[str], str | None]]:
    """The README's commands that make Prometheus's account and token, as monitor_app's
    container runs them, each with the file its output is sent to (if any)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Make it once:\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "README.md shows how to make Prometheus's token"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:3] == ["docker", "compose", "exec"]:
            words = [word for word in words[3:] if word != "-T"]
            assert words[0] == "monitor", line
            command, redirect = words[1:], None
            if ">" in command:
                command, [redirect] = command[: command.index(">")], command[-1:]
            commands.append((command, redirect))
    return commands


def test_the_documented_token_goes_where_prometheus_reads_it(compose, prometheus_config):
    *_, (_command, redirect) = documented_token_commands()
    [file] = {
        job["authorization"]["credentials_file"]
        for job in prometheus_config["scrape_configs"]
        if "authorization" in job
    }
    assert ROOT / redirect == host_path(compose["services"]["prometheus"], file)


def test_the_documented_token_reads_the_metrics_of_every_app_that_checks_one(
    tmp_path, redis_settings
):
    commands = [command for command, _redirect in documented_token_commands()]
    assert [command[:4] for command in commands] == [
        ["python", "-m", "monitor_app", "users"],
        ["python", "-m", "monitor_app", "tokens"],
    ]
    *_, token_command = commands
    assert token_command[token_command.index("--scope") + 1] == "metrics:read"
    # The same commands, on a database of this test's own and the session's keys.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}"}
    outputs = []
    for command in commands:
        result = subprocess.run(
            [sys.executable, *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    # Only the token on standard output: that is what goes into the file.
    token = outputs[-1]
    assert len(token.splitlines()) == 1
    headers = {"Authorization": f"Bearer {token.strip()}"}

    from analyser_app import create_app as create_analyser_app
    from data_app import create_app as create_data_app
    from gateway_app import create_app as create_gateway_app
    from monitor_app import create_app as create_monitor_app
    from patient_app import create_app as create_patient_app

    common = {"TESTING": True, **redis_settings}
    apps = [
        create_monitor_app(
            {**common, "DATABASE_URL": env["DATABASE_URL"], "RATELIMIT_ENABLED": False}
        ),
        create_data_app({**common, "DATABASE_URL": env["DATABASE_URL"]}),
        create_patient_app({**common, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
        create_analyser_app(common),
        create_gateway_app(
            {
                **common,
                "DATABASE_URL": env["DATABASE_URL"],
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "PATIENT_ID_SECRET": TEST_SECRETS["VIGIL_PATIENT_ID_SECRET"],
            }
        ),
    ]
    try:
        for app in apps:
            client = app.test_client()
            assert client.get("/metrics").status_code == 401, app.name
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 200, app.name
            assert "vigil_http_requests_total" in response.text
            if app.name == "analyser_app":
                # metrics:read is all the token may do: it sends no text.
                analyse = client.post("/api/v1/analyse", json={"text": "x"}, headers=headers)
                assert analyse.status_code == 403
            elif app.name not in {"data_app", "gateway_app"}:  # they serve no patient data
                # metrics:read is all the token may do.
                patients = client.get("/api/v1/patients", headers=headers)
                assert patients.status_code == 403, app.name
    finally:
        for app in apps:
            stop_background(app)


def test_every_scrape_target_is_a_port_its_service_serves(compose, prometheus_config):
    targets = [
        target
        for job in prometheus_config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    ]
    assert targets
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in compose["services"], target
        assert int(port) in served_ports(host, compose["services"][host]), target


# -- Grafana -------------------------------------------------------------------------------


def test_grafana_mounts_files_that_exist_in_deploy(grafana):
    binds = [mount for mount in grafana["volumes"] if mount["type"] == "bind"]
    assert {mount["target"] for mount in binds} == {
        "/etc/grafana/provisioning",
        "/var/lib/grafana/dashboards",
    }
    for mount in binds:
        source = Path(mount["source"])
        assert source.is_relative_to(DEPLOY / "grafana"), source
        assert source.exists(), source
        assert mount["read_only"], source


def test_grafana_shows_the_dashboard_only_after_sign_in(grafana):
    environment = grafana["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in environment
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == TEST_SECRETS["VIGIL_GRAFANA_ADMIN_PASSWORD"]
    home = host_path(grafana, environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home == DEPLOY / "grafana" / "dashboards" / "vigil.json"


def test_the_datasource_is_the_compose_prometheus(compose, datasources):
    (source,) = datasources
    assert (source["type"], source["uid"], source["isDefault"]) == (
        "prometheus",
        "prometheus",
        True,
    )
    match = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"])
    assert match, source["url"]
    assert match.group(1) in compose["services"]
    assert compose["services"][match.group(1)]["image"].startswith("prom/prometheus:")
    assert int(match.group(2)) == PROMETHEUS_PORT


def test_dashboards_are_provisioned_from_the_mounted_folder(grafana):
    path = host_path(grafana, "/etc/grafana/provisioning/dashboards/vigil.yml")
    assert path is not None and path.is_file()
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    folder = host_path(grafana, provider["options"]["path"])
    assert folder is not None and (folder / "vigil.json").is_file()


def test_dashboard_panels_have_targets_and_a_place(dashboard):
    assert dashboard["uid"] == "vigil"
    assert dashboard["title"] == "Vigil — ICU monitoring"
    assert dashboard["panels"]
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["type"] == "timeseries", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
        panel_cells = {
            (x, y)
            for x in range(place["x"], place["x"] + place["w"])
            for y in range(place["y"], place["y"] + place["h"])
        }
        assert not cells & panel_cells, f"{panel['title']} overlaps another panel"
        cells |= panel_cells


def test_dashboard_queries_the_provisioned_datasource(dashboard, datasources):
    (source,) = datasources
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    used |= {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    }
    assert used == {source["uid"]}


def test_dashboard_shows_every_exported_metric_and_no_other(dashboard):
    names = {
        name
        for expr in dashboard_exprs(dashboard)
        for name in re.findall(r"\bvigil_[a-z0-9_]+", expr)
    }
    assert {name for name in names if name.endswith("_bucket")} <= {
        f"{histogram}_bucket" for histogram in HISTOGRAMS
    }
    assert {re.sub(r"_(bucket|count|sum)$", "", name) for name in names} == EXPORTED_METRICS
