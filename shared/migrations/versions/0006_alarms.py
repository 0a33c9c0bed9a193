"""Alarms, one per condition episode, and per-patient alarm limits

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OPEN = sa.text("state <> 'resolved'")
PARAMETERS = ("pulse", "resp_rate", "spo2", "systolic", "temperature")
BOUNDS = ("low", "high", "extreme_low", "extreme_high")


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "patient_id",
            big_id,
            sa.ForeignKey("patients.id", name="fk_alarms_patient_id_patients", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("condition", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("limit_value", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "acknowledged_by",
            sa.Uuid(),
            sa.ForeignKey("users.id", name="fk_alarms_acknowledged_by_users", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("silenced_until", sa.DateTime(), nullable=True),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column(
            "notification_id",
            big_id,
            sa.ForeignKey(
                "notifications.seq",
                name="fk_alarms_notification_id_notifications",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.CheckConstraint("kind IN ('physiological', 'technical')", name="ck_alarms_kind"),
        sa.CheckConstraint("priority IN ('high', 'medium', 'low')", name="ck_alarms_priority"),
        sa.CheckConstraint(
            "state IN ('active', 'acknowledged', 'resolved')", name="ck_alarms_state"
        ),
        sa.CheckConstraint("escalation_level >= 0", name="ck_alarms_escalation_level"),
    )
    op.create_index(
        "uq_alarms_open_patient_id_condition",
        "alarms",
        ["patient_id", "condition"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(
        "ix_alarms_open_started_at",
        "alarms",
        ["started_at"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_alarms_patient_id_started_at", "alarms", ["patient_id", "started_at"])
    op.create_table(
        "alarm_limits",
        sa.Column(
            "patient_id",
            big_id,
            sa.ForeignKey(
                "patients.id", name="fk_alarm_limits_patient_id_patients", ondelete="CASCADE"
            ),
            primary_key=True,
        ),
        *(
            sa.Column(f"{parameter}_{bound}", sa.Float(), nullable=True)
            for parameter in PARAMETERS
            for bound in BOUNDS
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alarm_limits")
    op.drop_index("ix_alarms_patient_id_started_at", table_name="alarms")
    op.drop_index("ix_alarms_open_started_at", table_name="alarms")
    op.drop_index("uq_alarms_open_patient_id_condition", table_name="alarms")
    op.drop_table("alarms")
