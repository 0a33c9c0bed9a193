"""A real OpenID Connect provider process (oidc-provider-mock) for the single sign-on tests.

It accepts any client, and signs in whichever predefined user the "browser" picks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from devserver.ports import free_port
from devserver.processes import get_json, wait_until
from devserver.server import Server


class OidcProvider(Server):
    def __init__(self, log_file: Path, users: Iterable[Mapping[str, object]]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.users = list(users)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)]
        for user in self.users:
            command += ["--user-claims", json.dumps(user)]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                command, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(
            lambda: get_json(f"{self.issuer}/.well-known/openid-configuration")[0] == 200,
            timeout=30,
            message="the OpenID Connect provider",
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
