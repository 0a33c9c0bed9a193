"""Notifications: a sender, read state per person, and the default ward

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.config import DEFAULT_WARD_ID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_reads",
        sa.Column(
            "notification_seq",
            big_id,
            sa.ForeignKey(
                "notifications.seq",
                name="fk_notification_reads_notification_seq_notifications",
                ondelete="CASCADE",
            ),
            primary_key=True,
        ),
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("read_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_notification_reads_user_id", "notification_reads", ["user_id"])
    # Until now the recipient was the only reader there was.
    op.execute(
        "INSERT INTO notification_reads (notification_seq, user_id, read_at) "
        "SELECT seq, user_id, read_at FROM notifications WHERE read_at IS NOT NULL"
    )
    op.drop_index("ix_notifications_unread_user_id_seq", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("sender_id", sa.Uuid(), nullable=True))
        batch.drop_column("read_at")
    op.create_index("ix_notifications_sender_id_seq", "notifications", ["sender_id", "seq"])
    # The ward vitals alerts have always gone to (WARD_ID's default), so it can have members.
    wards = sa.table(
        "wards", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at")
    )
    op.bulk_insert(
        wards,
        [
            {
                "id": DEFAULT_WARD_ID,
                "name": "ICU",
                "created_at": datetime.now(UTC).replace(tzinfo=None),
            }
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_sender_id_seq", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("read_at", sa.DateTime(), nullable=True))
        batch.drop_column("sender_id")
    op.drop_table("notification_reads")
