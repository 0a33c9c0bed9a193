"""Telling a batch the database refuses outright from one it could not store just now."""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DataError, DBAPIError, StatementError

MAX_REASON_CHARS = 500


def refusal_reason(exc: BaseException) -> str | None:
    """Why the database will never store the batch that raised `exc`; None if a retry may.

    A lost connection, a lock or a deadlock is worth retrying; a value the database rejects
    (out of range, NUL in text) or the driver cannot send (a lone surrogate) fails the same
    way every time, and retried, it held up every sample behind it.

    PostgreSQL's binary COPY (data_app/staging.py) raises the driver's own errors, not
    SQLAlchemy's: psycopg's DataError from the server, OverflowError for an int no column
    holds, ValueError or TypeError for a value psycopg cannot write.
    """
    if isinstance(exc, DataError):
        cause: BaseException = exc.orig
    elif isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # Raised while the parameters were processed, before the database saw them.
        cause = exc.orig
    else:
        cause = exc
    refused = psycopg.DataError | ValueError | TypeError | OverflowError
    if not isinstance(exc, DataError) and not isinstance(cause, refused):
        return None
    return f"not storable: {type(cause).__name__}: {cause}"[:MAX_REASON_CHARS]
