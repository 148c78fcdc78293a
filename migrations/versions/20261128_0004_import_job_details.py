"""Import jobs: a second upload (QHP plans.json), warnings beside errors, the worker.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.add_column(sa.Column("plans_upload_path", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("warning_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
    with op.batch_alter_table("import_errors") as batch_op:
        batch_op.add_column(
            sa.Column("level", sa.String(length=10), nullable=False, server_default="error")
        )
        batch_op.create_index("ix_import_errors_job_id_level", ["job_id", "level", "id"])


def downgrade() -> None:
    with op.batch_alter_table("import_errors") as batch_op:
        batch_op.drop_index("ix_import_errors_job_id_level")
        batch_op.drop_column("level")
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.drop_column("worker")
        batch_op.drop_column("warning_count")
        batch_op.drop_column("plans_upload_path")
