"""Batches into PostgreSQL through binary COPY, still idempotent.

COPY has no ON CONFLICT, so a batch is copied into a temporary staging table, then moved by
one INSERT … SELECT … ON CONFLICT: a replayed sample still meets the unique key and is
skipped. Binary COPY sends a row for a fraction of what an executemany INSERT costs in the
driver and SQLAlchemy: with the rollups done the same way, storing a batch of 1,000 samples
(store_samples) takes about a fifth of the client CPU it did, and a third of the time.

A staging table is made once per connection and is temporary (each connection has its own,
gone with it). Its integer columns are all bigint: psycopg's binary int4 and int2 writers wrap a
value that does not fit (2**31 arrives as -2**31), so the range is left to the server's cast in
the INSERT, which refuses such a value as the plain INSERT always did (refusals.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.expression import CTE

from shared.db import UTCDateTime

# Apart from the models' metadata: migrations and create_all must never see these tables.
_STAGING = MetaData()
# The staging tables made on a connection, in its pool record's info (which lives as long as
# the connection does).
_MADE = "vigil.staging_tables"
# psycopg's names of the binary formats COPY writes, by the staged column's type.
_COPY_TYPES: dict[type, str] = {
    BigInteger: "int8",
    Float: "float8",
    UTCDateTime: "timestamp",
    String: "varchar",
}


def staging_table(name: str, source: Table, columns: Sequence[str]) -> Table:
    """A temporary table for `columns` of `source`, emptied by every commit, integers widened."""

    def staged(column: Column) -> Column:
        kind = BigInteger() if isinstance(column.type, Integer) else column.type
        return Column(column.name, kind)

    table = Table(
        name,
        _STAGING,
        *(staged(source.c[column]) for column in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )
    names = ", ".join(f'"{column.name}"' for column in table.columns)
    table.info["copy"] = f'COPY "{name}" ({names}) FROM STDIN (FORMAT BINARY)'
    table.info["types"] = [_COPY_TYPES[type(column.type)] for column in table.columns]
    table.info["names"] = [column.name for column in table.columns]
    table.info["times"] = [
        index for index, column in enumerate(table.columns) if isinstance(column.type, UTCDateTime)
    ]
    return table


def naive_utc(moment: datetime) -> datetime:
    """A moment as the timestamp columns hold it (shared.db.UTCDateTime): UTC, no zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def copy_rows(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """COPY rows (by column name) into the staging table, in the session's transaction; made
    first if this connection has none yet. Aware datetimes are stored as UTCDateTime does."""
    connection = session.connection()
    _make_once(connection, table)
    values = itemgetter(*table.info["names"])
    times = table.info["times"]
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(table.info["copy"]) as copy:
        copy.set_types(table.info["types"])
        for row in rows:
            line = list(values(row))
            for index in times:
                line[index] = naive_utc(line[index])
            copy.write_row(line)


def taken_from(table: Table) -> CTE:
    """The staged rows, deleted as they are read: a second batch in the same transaction (whose
    commit has not emptied the table yet) must not move the first one's rows again."""
    return delete(table).returning(*table.columns).cte(f"{table.name}_taken")


def _make_once(connection: Connection, table: Table) -> None:
    made: set[str] = connection.info.setdefault(_MADE, set())
    if table.name in made:
        return
    connection.execute(CreateTable(table, if_not_exists=True))
    made.add(table.name)

    # Made in the caller's transaction: a rollback (to a savepoint, too) may take it away
    # again, and the next batch must then make it anew (IF NOT EXISTS, as it may not have).
    def forget(*_args: object) -> None:
        made.discard(table.name)

    event.listen(connection, "rollback", forget)
    event.listen(connection, "rollback_savepoint", forget)
