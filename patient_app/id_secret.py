"""`python -m patient_app.id_secret FILE`: create the secret patient uuids are derived from.

A simulated patient's uuid is an HMAC of their name under this secret, and a patient the HL7
gateway receives, of their MRN: stable across restarts, and not to be worked out from the name
or MRN by anyone without the file.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from shared.config import VAR_DIR, Setting, parse_optional

# Where `make run` keeps it; PATIENT_ID_SECRET overrides it.
ID_SECRET_FILE = VAR_DIR / "patient-id.secret"
MIN_SECRET_LENGTH = 16


def write_secret(path: Path) -> bool:
    """Create `path` (mode 0600) holding a new random secret, unless it exists. True if new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created with its final mode, and never over another process's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return True


def read_secret(path: Path = ID_SECRET_FILE) -> str | None:
    """The secret in `path`, or None if there is no such file."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def parse_secret(raw: str) -> str:
    value = raw.strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    return value


# Both the simulator and the HL7 gateway derive patients' uuids under it (one site, one secret),
# so a restart, or a second gateway, gives a patient the same uuid.
ID_SECRET_SETTING = Setting(
    "PATIENT_ID_SECRET",
    parse_optional(parse_secret),
    read_secret,
    "Secret the patients' uuids are derived from (default: var/patient-id.secret).",
)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m patient_app.id_secret FILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    state = "created" if write_secret(path) else "kept"
    print(f"patient id secret {state}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
