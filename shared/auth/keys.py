"""`python -m shared.auth.keys DIR`: create Vigil's token signing key pair in DIR if absent."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.auth.tokens import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, write_key_pair


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.auth.keys DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    created = write_key_pair(directory)
    state = "created" if created else "kept"
    print(f"token keys {state}: {directory / PRIVATE_KEY_NAME}, {directory / PUBLIC_KEY_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
