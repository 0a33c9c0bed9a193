"""NEWS2 per sample, alert state per patient, notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from shared.news2 import score_news2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BACKFILL_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("patient_metrics") as batch:
        batch.add_column(sa.Column("news2_score", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("news2_band", sa.String(16), nullable=True))
    with op.batch_alter_table("patients") as batch:
        batch.add_column(
            sa.Column("alert_band", sa.String(16), nullable=False, server_default="low")
        )
        batch.add_column(
            sa.Column("alert_calm_samples", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("alert_calm_band", sa.String(16), nullable=True))
        batch.add_column(sa.Column("alert_checked_at", sa.DateTime(), nullable=True))
    # The defaults only filled the existing rows; the models set them from now on.
    with op.batch_alter_table("patients") as batch:
        batch.alter_column("alert_band", server_default=None)
        batch.alter_column("alert_calm_samples", server_default=None)
    _backfill_news2()

    op.create_table(
        "notifications",
        sa.Column("seq", big_id, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", big_id, nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("processing_status", sa.String(16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("analysed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            ondelete="SET NULL",
            name=op.f("fk_notifications_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notifications")),
        sa.UniqueConstraint("id", name=op.f("uq_notifications_id")),
    )
    op.create_index("ix_notifications_user_id_seq", "notifications", ["user_id", "seq"])
    op.create_index("ix_notifications_patient_id_seq", "notifications", ["patient_id", "seq"])
    op.create_index("ix_notifications_category_seq", "notifications", ["category", "seq"])
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
    op.create_index(
        "ix_notifications_unread_user_id_seq",
        "notifications",
        ["user_id", "seq"],
        sqlite_where=sa.text("read_at IS NULL"),
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_index(
        "ix_notifications_status_changed",
        "notifications",
        ["processing_status", "status_changed_at"],
    )


def _backfill_news2() -> None:
    """Score the samples stored before this revision, in batches, so history has NEWS2 too."""
    metrics = sa.table(
        "patient_metrics",
        sa.column("id"),
        sa.column("pulse"),
        sa.column("resp_rate"),
        sa.column("systolic"),
        sa.column("spo2"),
        sa.column("temperature"),
        sa.column("news2_score"),
        sa.column("news2_band"),
    )
    connection = op.get_bind()
    update = (
        sa.update(metrics)
        .where(metrics.c.id == sa.bindparam("row_id"))
        .values(news2_score=sa.bindparam("score"), news2_band=sa.bindparam("band"))
    )
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(
                metrics.c.id,
                metrics.c.pulse,
                metrics.c.resp_rate,
                metrics.c.systolic,
                metrics.c.spo2,
                metrics.c.temperature,
            )
            .where(metrics.c.id > last_id, metrics.c.news2_score.is_(None))
            .order_by(metrics.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        scored = []
        for row in rows:
            news2 = score_news2(
                resp_rate=row.resp_rate,
                spo2=row.spo2,
                systolic=row.systolic,
                pulse=row.pulse,
                temperature=row.temperature,
            )
            scored.append({"row_id": row.id, "score": news2.score, "band": news2.band})
        connection.execute(update, scored)
        last_id = rows[-1].id


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("patients") as batch:
        for column in ("alert_checked_at", "alert_calm_band", "alert_calm_samples", "alert_band"):
            batch.drop_column(column)
    with op.batch_alter_table("patient_metrics") as batch:
        batch.drop_column("news2_band")
        batch.drop_column("news2_score")
