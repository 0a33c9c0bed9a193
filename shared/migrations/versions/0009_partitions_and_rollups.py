"""Samples partitioned by day on PostgreSQL, per-minute rollups, a kept-sample count per patient

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

On PostgreSQL the existing patient_metrics table is copied into a partitioned one (a
partition per day that has samples, and the days around today), so on a large database this
revision takes as long as copying the table. The rollups and the counts are computed from
the samples there are.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from shared.partitions import ROLLUPS, SAMPLES, create_default_partition, create_partitions
from shared.rollups import rebuild_statements

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VITALS = ("pulse", "resp_rate", "systolic", "diastolic", "spo2", "temperature", "news2_score")
# Partitions made for the days around now, so the first samples need none made.
DAYS_AROUND = (-1, 7)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("patients") as batch:
        batch.add_column(
            sa.Column("sample_count", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "patient_metric_minutes",
        sa.Column("patient_id", big_id, nullable=False),
        sa.Column("minute", sa.DateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("news2_samples", sa.Integer(), nullable=False),
        *_rollup_columns(),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            ondelete="CASCADE",
            name=op.f("fk_patient_metric_minutes_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("patient_id", "minute", name=op.f("pk_patient_metric_minutes")),
        postgresql_partition_by="RANGE (minute)",
    )
    if postgres:
        days = _rebuild_samples(partitioned=True)
        create_default_partition(op.get_bind(), ROLLUPS)
        create_partitions(op.get_bind(), ROLLUPS, days)
    _backfill(op.get_bind().dialect.name)


def _rollup_columns() -> list[sa.Column]:
    columns = []
    for name in VITALS:
        kind = {"temperature": sa.Float, "news2_score": sa.SmallInteger}.get(name, sa.Integer)
        optional = name == "news2_score"
        columns += [
            sa.Column(f"{name}_min", kind(), nullable=optional),
            sa.Column(f"{name}_max", kind(), nullable=optional),
            sa.Column(
                f"{name}_sum", sa.Float() if kind is sa.Float else sa.BigInteger(), nullable=False
            ),
        ]
    return columns


CONSTRAINTS = {
    "pk_patient_metrics": "PRIMARY KEY ({key})",
    "uq_patient_metrics_patient_id_timestamp": 'UNIQUE (patient_id, "timestamp")',
    "fk_patient_metrics_patient_id_patients": (
        "FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE"
    ),
}


def _rebuild_samples(partitioned: bool) -> list[datetime]:
    """Copy patient_metrics into a new table, partitioned by day or not, in place of the old
    one; returns the days it made partitions for. (The names here are constants, not input.)
    """
    old = "patient_metrics_old"
    op.execute(f"ALTER TABLE patient_metrics RENAME TO {old}")
    for name in CONSTRAINTS:
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {name} TO {name}_old")
    # The same columns and defaults (the id sequence's nextval). A partitioned table's keys
    # must hold its partition column: its primary key is (id, timestamp).
    partition_by = ' PARTITION BY RANGE ("timestamp")' if partitioned else ""
    op.execute(f"CREATE TABLE patient_metrics (LIKE {old} INCLUDING DEFAULTS){partition_by}")
    key = 'id, "timestamp"' if partitioned else "id"
    op.execute(
        "ALTER TABLE patient_metrics "
        + ", ".join(
            f"ADD CONSTRAINT {name} {definition.format(key=key)}"
            for name, definition in CONSTRAINTS.items()
        )
    )
    op.execute("ALTER SEQUENCE patient_metrics_id_seq OWNED BY patient_metrics.id")
    days: list[datetime] = []
    if partitioned:
        connection = op.get_bind()
        stored = connection.execute(
            sa.text(f"SELECT DISTINCT date_trunc('day', \"timestamp\") FROM {old}")  # noqa: S608
        ).scalars()
        today = datetime.now(UTC)
        days = [day.replace(tzinfo=UTC) for day in stored] + [
            today + timedelta(days=offset) for offset in range(DAYS_AROUND[0], DAYS_AROUND[1] + 1)
        ]
        create_default_partition(connection, SAMPLES)
        create_partitions(connection, SAMPLES, days)
    op.execute(f"INSERT INTO patient_metrics SELECT * FROM {old}")  # noqa: S608
    op.execute(f"DROP TABLE {old}")
    return days


def _backfill(dialect: str) -> None:
    # A later change to the rollups' columns comes with a migration of its own, which then
    # keeps its own copy of this.
    for statement in rebuild_statements(dialect):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild_samples(partitioned=False)
    op.drop_table("patient_metric_minutes")
    # Not in a batch: on SQLite that copies the patients table, and dropping the old copy
    # would cascade to every sample. SQLite drops a column in place since 3.35.
    op.drop_column("patients", "sample_count")
