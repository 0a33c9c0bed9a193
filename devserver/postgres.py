"""A private PostgreSQL cluster from Debian's binaries, for the tests: initdb, start, stop.

Each cluster lives in a folder of its own on a free port, tuned for speed (fsync off: a test
database need not survive a power cut), and trusts local connections. It also speaks TLS, with
a certificate for 127.0.0.1 and localhost from a CA of its own (`ca_file`), so that a test can
connect with sslmode=verify-full as a production client would. PostgreSQL refuses to run
as root, so when the tests run as root (CI does) the server runs as the `postgres` user that
Debian's package creates.

The folder is a new temporary one, removed on stop, unless the caller names one to keep (the
benchmarks keep their large databases between runs): that one is made on the first start and
started again after.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devserver.ports import free_port
from devserver.server import Server
from devserver.tls import ServerCertificate, make_server_certificate

POSTGRES_ROOTS = (Path("/usr/lib/postgresql"),)
SERVER_USER = "postgres"
HOW_TO_FIX = (
    "install Debian's postgresql package (`make test` does: apt-get install postgresql), "
    "or point VIGIL_TEST_POSTGRES_URL at a server where the user may create databases"
)

# Durability the tests do not need, traded for speed; and no more connections than they use.
SPEED_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
}


class PostgresStartError(RuntimeError):
    """No PostgreSQL could be started; the message says why and how to fix it."""


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (with initdb and pg_ctl)."""
    candidates = [
        path.parent
        for root in POSTGRES_ROOTS
        for path in root.glob("*/bin/initdb")
        if (path.parent / "pg_ctl").exists()
    ]
    if not candidates:
        raise PostgresStartError(f"no PostgreSQL server binaries found; {HOW_TO_FIX}")
    return max(candidates, key=lambda path: int(path.parent.name.split(".")[0]))


class PostgresCluster(Server):
    """One private server: `start()` makes and starts it, `stop()` stops it and removes it.

    With `folder`, the cluster is kept there instead: `start()` makes it only if it is not
    there yet, and `stop()` shuts it down cleanly (a checkpoint, so the next start need not
    replay the WAL) and removes nothing.
    """

    def __init__(self, bin_dir: Path | None = None, folder: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = free_port()
        self.kept = folder is not None
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="vigil-postgres-"))
        else:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = folder
        self.data_dir = self.folder / "data"
        self.log_file = self.folder / "server.log"
        self.tls: ServerCertificate | None = None
        # Only root must hand the server to another user; anyone else runs it as themselves.
        self.run_as = SERVER_USER if os.geteuid() == 0 else None

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server's certificate (once started)."""
        assert self.tls is not None, "the cluster has not been started"
        return self.tls.ca_file

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's `postgres` database, as superuser `postgres`."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise PostgresStartError(
                f"{args[0]} failed ({output[-1] if output else result.returncode}); "
                f"log in {self.log_file}; {HOW_TO_FIX}"
            )

    def start(self) -> None:
        if self.run_as is not None:
            try:
                user = pwd.getpwnam(self.run_as)
            except KeyError:
                raise PostgresStartError(f"no '{self.run_as}' user; {HOW_TO_FIX}") from None
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.tls = make_server_certificate(self.folder / "tls")
        if self.run_as is not None:
            # The server refuses a key file that is not its own.
            for path in (self.tls.key_file.parent, self.tls.cert_file, self.tls.key_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        settings = {
            **SPEED_SETTINGS,
            "ssl": "on",
            "ssl_cert_file": self.tls.cert_file,
            "ssl_key_file": self.tls.key_file,
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        # The socket goes in the cluster's folder: /var/run/postgresql may not be writable.
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} {options}",
        )

    def stop(self) -> None:
        mode = "fast" if self.kept else "immediate"
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-t", "300", "-m", mode, "-D", str(self.data_dir))
        if not self.kept:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def fresh_database(
    server_url: str,
    prefix: str = "vigil_test",
    template: str | None = None,
    strategy: str | None = None,
) -> Iterator[str]:
    """A new database on the server of `server_url`, dropped afterwards; its URL. Empty, or a
    copy of the database named `template` (which nobody may be connected to meanwhile).

    `strategy` is CREATE DATABASE's: "FILE_COPY" copies a large template's files as they are,
    where the default (WAL_LOG) writes every block of it to the WAL as well."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            copy = "" if template is None else f' TEMPLATE "{template}"'
            if strategy is not None:
                if strategy not in ("FILE_COPY", "WAL_LOG"):
                    raise ValueError(f"no CREATE DATABASE strategy {strategy!r}")
                copy += f" STRATEGY {strategy}"
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            # FORCE: a process the test started may still hold a connection.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
