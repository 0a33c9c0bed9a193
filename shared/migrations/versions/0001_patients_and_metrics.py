"""patients and their vital-sign samples

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("uuid", name=op.f("uq_patients_uuid")),
    )
    op.create_table(
        "patient_metrics",
        sa.Column("id", big_id, nullable=False),
        sa.Column("patient_id", big_id, nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("pulse", sa.Integer(), nullable=False),
        sa.Column("resp_rate", sa.Integer(), nullable=False),
        sa.Column("systolic", sa.Integer(), nullable=False),
        sa.Column("diastolic", sa.Integer(), nullable=False),
        sa.Column("spo2", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            ondelete="CASCADE",
            name=op.f("fk_patient_metrics_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_metrics")),
        # Serves idempotent inserts and "a patient's metrics in a time range, newest first".
        sa.UniqueConstraint(
            "patient_id", "timestamp", name=op.f("uq_patient_metrics_patient_id_timestamp")
        ),
    )


def downgrade() -> None:
    op.drop_table("patient_metrics")
    op.drop_table("patients")
