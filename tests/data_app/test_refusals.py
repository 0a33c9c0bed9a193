"""Which storage errors mean "never" (dead-letter the sample) and which "not now" (retry)."""

import psycopg
import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from data_app.refusals import refusal_reason


class DriverError(Exception):
    """Stands in for a DB-API driver's exception."""


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (DataError("INSERT", {}, DriverError("text fields cannot contain NUL")), "NUL"),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), "surrogates"),
        (StatementError("bind", "INSERT", {}, ValueError("naive datetime")), "naive datetime"),
        # Raised by psycopg itself during a binary COPY (data_app/staging.py), unwrapped.
        (OverflowError("int too big to convert"), "int too big"),
        (psycopg.errors.CharacterNotInRepertoire("invalid byte sequence: 0x00"), "0x00"),
        (psycopg.errors.NumericValueOutOfRange("integer out of range"), "out of range"),
        (OperationalError("INSERT", {}, DriverError("database is locked")), None),
        (psycopg.OperationalError("server closed the connection unexpectedly"), None),
        (psycopg.errors.DeadlockDetected("deadlock detected"), None),
        (psycopg.errors.UndefinedTable('relation "x" does not exist'), None),
        (OperationalError("INSERT", {}, DriverError("server closed the connection")), None),
        (IntegrityError("INSERT", {}, DriverError("duplicate key")), None),
        (RuntimeError("anything else"), None),
    ],
)
def test_refusals_are_told_from_errors_worth_retrying(error, reason):
    given = refusal_reason(error)
    if reason is None:
        assert given is None
    else:
        assert given.startswith("not storable: ") and reason in given
