"""jobs.parent_id: shard jobs point at the generate job that coordinates them

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_jobs_parent_id", ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint("fk_jobs_parent_id_jobs", type_="foreignkey")
        batch_op.drop_index("ix_jobs_parent_id")
        batch_op.drop_column("parent_id")
