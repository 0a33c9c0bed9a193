"""Many rows through one SQLite statement, without SQLAlchemy's per-row work.

An executemany through `session.execute` has SQLAlchemy build, for every row, the bound
parameters of the compiled statement and pass each value through its type's processor: for a
batch of samples, more instructions than SQLite spends storing them. Here the statement is
compiled once per dialect, each row is picked into the statement's order by one
`itemgetter`, and only the columns whose type has a processor are processed (a value repeated
from the row before, as a batch's arrival time is, once). The driver, the connection's events
and SQLAlchemy's wrapping of the driver's errors are the same as `session.execute`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

Row = Mapping[str, Any]


class BulkStatement:
    """An INSERT (or upsert) of rows of the given keys, run by the driver's executemany."""

    def __init__(self, statement: Insert, keys: Sequence[str]) -> None:
        self.statement = statement
        self.keys = tuple(keys)
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, session: Session, rows: Sequence[Row]) -> int:
        """Run it once per row, in the session's transaction; the rows it changed."""
        connection = session.connection()
        compiled = self._compiled.get(connection.dialect.name)
        if compiled is None:
            compiled = self._compiled[connection.dialect.name] = _Compiled(
                self.statement, self.keys, connection.dialect
            )
        return connection.exec_driver_sql(compiled.sql, compiled.parameters(rows)).rowcount


class _Compiled:
    def __init__(self, statement: Insert, keys: tuple[str, ...], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: only for positional parameters")
        self.sql = compiled.string
        order = list(compiled.positiontup)
        processors = compiled._bind_processors  # noqa: SLF001  (what execute would apply)
        self.pick = itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)
        self.processed: list[tuple[int, Callable[[Any], Any]]] = [
            (place, processors[name]) for place, name in enumerate(order) if name in processors
        ]

    def parameters(self, rows: Sequence[Row]) -> list[tuple]:
        pick = self.pick
        if not self.processed:
            return [pick(row) for row in rows]
        # Per processed column, the last value seen and what it became.
        last: list[list[Any]] = [[_NOTHING, None] for _ in self.processed]
        out = []
        for row in rows:
            values = list(pick(row))
            for (place, process), memo in zip(self.processed, last, strict=True):
                value = values[place]
                if value is not memo[0]:
                    memo[0], memo[1] = value, process(value)
                values[place] = memo[1]
            out.append(tuple(values))
        return out


_NOTHING = object()
