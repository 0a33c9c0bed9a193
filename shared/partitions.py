"""PostgreSQL's time partitions of the big tables: made ahead of the data, dropped whole.

On PostgreSQL `patient_metrics` is partitioned by day and `patient_metric_minutes` (the
rollups) by month, so retention drops a partition (instant, no dead rows, no vacuum) instead
of deleting hundreds of millions of rows. Vigil makes the partitions itself, named for the
period they hold (`patient_metrics_p20261203`, `patient_metric_minutes_p202612`), so their
bounds are read from their names. SQLite tables are not partitioned: nothing here runs there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

# Taken (for the transaction) by whoever makes or drops partitions: two consumers seeing the
# same new day, or a consumer and the retention job, take turns instead of racing on the
# catalogue ("duplicate key value violates unique constraint pg_type_typname_nsp_index").
PARTITION_LOCK = 4242002


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned by range of one time column, one partition per day or month."""

    name: str
    column: str
    monthly: bool

    def period_start(self, moment: datetime) -> datetime:
        """The start of the partition period `moment` (aware) falls in, in UTC."""
        day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.replace(day=1) if self.monthly else day

    def next_start(self, start: datetime) -> datetime:
        if not self.monthly:
            return start + timedelta(days=1)
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)

    @property
    def default_partition(self) -> str:
        return f"{self.name}_default"

    def partition_name(self, start: datetime) -> str:
        return f"{self.name}_p{start:%Y%m}" if self.monthly else f"{self.name}_p{start:%Y%m%d}"

    def start_of(self, partition: str) -> datetime | None:
        """The period a partition of this table holds, from its name; None if not one."""
        match = re.fullmatch(rf"{self.name}_p(\d{{{6 if self.monthly else 8}}})", partition)
        if match is None:
            return None
        return datetime.strptime(match.group(1), "%Y%m" if self.monthly else "%Y%m%d").replace(
            tzinfo=UTC
        )

    def periods(self, first: datetime, last: datetime) -> list[datetime]:
        """The starts of every period from the one holding `first` to the one holding `last`."""
        start, end = self.period_start(first), self.period_start(last)
        starts = []
        while start <= end:
            starts.append(start)
            start = self.next_start(start)
        return starts


SAMPLES = PartitionedTable("patient_metrics", "timestamp", monthly=False)
ROLLUPS = PartitionedTable("patient_metric_minutes", "minute", monthly=True)
PARTITIONED = (SAMPLES, ROLLUPS)


def is_partition(name: str) -> bool:
    """Whether a table name is one of Vigil's partitions (which no model declares)."""
    return any(
        table.start_of(name) is not None or name == table.default_partition for table in PARTITIONED
    )


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's filter: the partitions, made at run time, are not in any model."""
    return not (type_ == "table" and name is not None and is_partition(name))


def _bound(moment: datetime) -> str:
    # The columns hold UTC without a zone (shared.db.UTCDateTime).
    return f"'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}'"


def existing_partitions(connection: Connection, table: PartitionedTable) -> dict[datetime, str]:
    """The partitions of `table` there are, by the start of their period."""
    names = connection.execute(
        text(
            "SELECT child.relname FROM pg_inherits"
            " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            " WHERE pg_inherits.inhparent = to_regclass(:table)"
        ),
        {"table": table.name},
    ).scalars()
    found = {}
    for name in names:
        start = table.start_of(name)
        if start is not None:
            found[start] = name
    return found


def create_partitions(
    connection: Connection, table: PartitionedTable, starts: Iterable[datetime]
) -> list[str]:
    """Make the partitions of these periods that do not exist yet; returns those made.

    Rows of such a period already in the default partition move into the new one. In the
    caller's transaction, which holds PARTITION_LOCK until it ends.
    """
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
    existing = existing_partitions(connection, table)
    made = []
    for start in sorted({table.period_start(s) for s in starts}):
        if start in existing:
            continue
        name = table.partition_name(start)
        bounds = {
            "low": start.replace(tzinfo=None),
            "high": table.next_start(start).replace(tzinfo=None),
        }
        in_range = f'"{table.column}" >= :low AND "{table.column}" < :high'
        # Made apart, then attached: CREATE TABLE … PARTITION OF would lock the whole table
        # against reads and writes; ATTACH takes a lock that lets both go on. Attaching adds
        # the parent's keys, indexes and foreign keys to the new table.
        connection.execute(
            text(
                f'CREATE TABLE "{name}"'
                f' (LIKE "{table.name}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
            )
        )
        # ATTACH refuses a range the default partition holds rows of: they move first.
        # (The names are this module's constants, the bounds parameters.)
        moved = (
            f'WITH moved AS (DELETE FROM "{table.default_partition}" WHERE {in_range}'  # noqa: S608
            f' RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
        )
        connection.execute(text(moved), bounds)
        connection.execute(
            text(
                f'ALTER TABLE "{table.name}" ATTACH PARTITION "{name}"'
                f" FOR VALUES FROM ({_bound(start)}) TO ({_bound(table.next_start(start))})"
            )
        )
        made.append(name)
    return made


def create_default_partition(connection: Connection, table: PartitionedTable) -> None:
    """The partition of rows no period's partition holds (a backfill of old days, or days
    after Vigil stopped making partitions ahead), so that no sample is ever refused for want
    of a partition."""
    connection.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{table.default_partition}"'
            f' PARTITION OF "{table.name}" DEFAULT'
        )
    )


def partitions_before(
    connection: Connection, table: PartitionedTable, cutoff: datetime
) -> list[tuple[datetime, datetime, str]]:
    """(start, end, name) of the partitions holding nothing at or after `cutoff`, oldest first."""
    return [
        (start, table.next_start(start), name)
        for start, name in sorted(existing_partitions(connection, table).items())
        if table.next_start(start) <= cutoff
    ]


def drop_partition(connection: Connection, name: str) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
    connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
