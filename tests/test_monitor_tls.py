"""monitor_app over HTTPS and WSS, started as README.md ("Deployment: TLS") says: gunicorn
with a certificate, which a client that trusts its CA verifies."""

from __future__ import annotations

import re
import shlex
import signal
import ssl
from pathlib import Path

import httpx
import pytest
import websocket

from devserver.ports import free_port
from devserver.processes import GUNICORN, Processes
from devserver.tls import make_server_certificate
from shared.auth.roles import Role
from tests.auth import account_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def documented_command() -> tuple[dict[str, str], list[str]]:
    """The README's command that serves monitor_app over TLS: its variables and its words."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Serve monitor_app over TLS:\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "README.md shows how to serve monitor_app over TLS"
    words = shlex.split(block.group(1).replace("\\\n", " "))
    env = {}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def with_options(words: list[str], **values: str) -> list[str]:
    """`words` with the values of these --options replaced (each must be there)."""
    words = list(words)
    for option, value in values.items():
        index = words.index(f"--{option}")
        words[index + 1] = value
    return words


def test_monitor_app_serves_https_and_wss_with_the_documented_command(
    tmp_path, redis_settings, wait_for
):
    env, words = documented_command()
    assert words[:2] == ["gunicorn", "monitor_app:create_app()"]
    assert env.get("SESSION_COOKIE_SECURE") == "true"
    tls = make_server_certificate(tmp_path / "tls")
    port = free_port()
    command = with_options(
        words,
        bind=f"127.0.0.1:{port}",
        workers="1",
        **{"worker-connections": "100"},
        certfile=str(tls.cert_file),
        keyfile=str(tls.key_file),
    )
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    admin = account_in(database_url, Role.ADMIN)
    processes = Processes(tmp_path, {**redis_settings, **env, "DATABASE_URL": database_url})
    processes.start("monitor", [GUNICORN, *command[1:]])
    url = f"https://127.0.0.1:{port}"
    trusted = httpx.Client(verify=ssl.create_default_context(cafile=tls.ca_file), timeout=10)

    def answers() -> httpx.Response | None:
        processes.check_running("monitor")
        try:
            return trusted.get(f"{url}/health")
        except httpx.ConnectError:
            return None

    try:
        response = wait_for(answers, timeout=60, interval=0.1, message="monitor_app over TLS")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        # A client that does not trust the CA refuses the server; plain HTTP gets nothing.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health", timeout=10)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        # Live events over WSS, verified the same way.
        live = websocket.create_connection(
            f"wss://127.0.0.1:{port}/api/v1/ws",
            timeout=10,
            header=[f"Authorization: Bearer {admin.token}"],
            sslopt={"ca_certs": str(tls.ca_file), "cert_reqs": ssl.CERT_REQUIRED},
        )
        try:
            assert live.connected
        finally:
            live.close()
    finally:
        trusted.close()
        # Quick shutdown: a graceful one would wait for the live stream to notice.
        processes.stop("monitor", signal.SIGQUIT)
