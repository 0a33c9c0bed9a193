"""The hospital's identifier of a patient (an MRN), for FHIR searches

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("identifier_system", sa.String(255), nullable=True))
        batch.add_column(sa.Column("identifier_value", sa.String(64), nullable=True))
        batch.create_index("ix_patients_identifier", ["identifier_value", "identifier_system"])


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_index("ix_patients_identifier")
        batch.drop_column("identifier_value")
        batch.drop_column("identifier_system")
