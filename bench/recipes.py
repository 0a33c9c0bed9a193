"""The recipe of a benchmark's kept database: what its rows are made from, as a short digest.

A database that takes minutes to build is built once and kept under var/bench, named by the
digest of its recipe: Vigil's schema (the Alembic head revision and the text of every
migration), the code or SQL that writes its rows, and its sizes. A run whose recipe gives the
same digest reuses the kept one; any change to the recipe gives another name, so it is built
afresh and the old one, whose digest no longer matches, is removed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from shared.db import MIGRATIONS_DIR

DIGEST_LENGTH = 12


def head_revision() -> str:
    """The newest Alembic revision: what `migrate()` brings a database to."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def digest(parts: Iterable[object]) -> str:
    """The digest of the schema and of `parts` (SQL text, source, sizes), in their order."""
    hashed = hashlib.sha256(f"head {head_revision()}\n".encode())
    for path in sorted(MIGRATIONS_DIR.rglob("*.py")):
        hashed.update(path.relative_to(MIGRATIONS_DIR).as_posix().encode() + b"\n")
        hashed.update(path.read_bytes())
    for part in parts:
        text = str(part)
        # Each part's length first: ("ab", "c") and ("a", "bc") give different digests.
        hashed.update(f"\n{len(text)}\n{text}".encode())
    return hashed.hexdigest()[:DIGEST_LENGTH]


def ago(seconds_since_epoch: float) -> str:
    """How long ago a moment was, in the largest unit that reads well ("3 h ago")."""
    seconds = max(0.0, time.time() - seconds_since_epoch)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"
