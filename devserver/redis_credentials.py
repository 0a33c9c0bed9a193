"""`python -m devserver.redis_credentials DIR`: the embedded Redis's users, made once.

Run by `make run` before honcho starts Redis and the apps together, so neither waits for the
other. Writes, each mode 0600:

- `users.acl`: the ACL file redis-server reads (passwords only as SHA-256 digests);
- `clients.env`: REDIS_CACHE_URL, REDIS_QUEUE_URL and REDIS_EVENTS_URL with their users'
  passwords, which honcho gives every process (`honcho start -e`);
- `admin.env`: REDIS_ADMIN_URL, for an operator's `redis-cli -u`; no app reads it.

The passwords (random, from `secrets`) are kept from one run to the next; the files are
written anew each time, so they follow a change of REDIS_URL's port or REDIS_NAMESPACE.
With an external Redis (EMBEDDED_REDIS=false, or REDIS_URL not on loopback) `clients.env`
sets nothing and the apps use the URLs you give them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from devserver.redis_server import embedded_port
from shared.config import (
    COMMON_SETTINGS,
    REDIS_SETTINGS,
    RedisRole,
    Setting,
    load_settings,
    parse_bool,
    redis_url_setting,
)
from shared.redis_acl import ADMIN, RedisUsers, user_name

ACL_FILE, CLIENTS_FILE, ADMIN_FILE = "users.acl", "clients.env", "admin.env"
ADMIN_SETTING = "REDIS_ADMIN_URL"


def stored_users(directory: Path) -> RedisUsers | None:
    """The passwords in the URLs written last time; None unless every user has one."""
    values = {
        **dotenv_values(directory / CLIENTS_FILE),
        **dotenv_values(directory / ADMIN_FILE),
    }
    settings = {user_name(role): redis_url_setting(role) for role in RedisRole}
    settings[ADMIN] = ADMIN_SETTING
    passwords = {}
    for name, setting in settings.items():
        parts = urlsplit(values.get(setting) or "")
        if parts.username != name or not parts.password:
            return None
        passwords[name] = unquote(parts.password)
    return RedisUsers(passwords)


def write_private(path: Path, text: str) -> None:
    """Replace `path` by `text`, never readable by others, not even half-written."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(partial, path)


def write_credentials(
    directory: Path, redis_url: str, namespace: str, embedded: bool = True
) -> RedisUsers | None:
    """Write the three files (see the module's docstring); the users, None if external."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not embedded:
        write_private(directory / CLIENTS_FILE, "# An external Redis: REDIS_URL and friends.\n")
        return None
    users = stored_users(directory) or RedisUsers.generate()
    write_private(directory / ACL_FILE, users.acl_file(namespace))
    clients = "".join(f"{k}={v}\n" for k, v in users.settings(redis_url).items())
    write_private(directory / CLIENTS_FILE, clients)
    write_private(directory / ADMIN_FILE, f"{ADMIN_SETTING}={users.url(ADMIN, redis_url)}\n")
    return users


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devserver.redis_credentials DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    settings = load_settings(
        (*COMMON_SETTINGS, *REDIS_SETTINGS, Setting("EMBEDDED_REDIS", parse_bool, True))
    )
    embedded = settings["EMBEDDED_REDIS"] and embedded_port(settings["REDIS_URL"]) is not None
    write_credentials(directory, settings["REDIS_URL"], settings["REDIS_NAMESPACE"], embedded)
    state = "written" if embedded else "not needed (external Redis)"
    print(f"Redis users {state}: {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


@dataclass(frozen=True, slots=True)
class RedisAccess:
    """A private Redis (tests, benchmarks): where it listens, and its users."""

    url: str  # no credentials: its default user is off, so this alone gets nothing
    users: RedisUsers
    acl_file: Path

    @classmethod
    def create(
        cls, directory: Path, port: int, namespace: str = "*", tls: bool = False
    ) -> RedisAccess:
        """New users, for keys of the namespaces `namespace` matches (a glob), in `directory`;
        with rediss:// URLs if `tls` (a server started with a certificate)."""
        url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{port}/0"
        users = write_credentials(directory, url, namespace)
        assert users is not None  # noqa: S101 (embedded: always written)
        return cls(url, users, directory / ACL_FILE)

    @property
    def admin_url(self) -> str:
        return self.users.url(ADMIN, self.url)

    def settings(self) -> dict[str, str]:
        """REDIS_URL (nothing without a user) and every role's URL with its own user."""
        return {"REDIS_URL": self.url, **self.users.settings(self.url)}
