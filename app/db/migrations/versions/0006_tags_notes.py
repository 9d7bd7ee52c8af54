"""Rename, tags and notes: ``tags`` (a JSON list of strings) and ``notes`` (text) on
initial conditions, datasets, models and jobs, and a ``name`` on jobs (runs had none)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ANNOTATED = ("initial_conditions", "datasets", "models", "jobs")


def upgrade() -> None:
    for table in ANNOTATED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
            )
            batch_op.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("name")
    for table in ANNOTATED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("notes")
            batch_op.drop_column("tags")
