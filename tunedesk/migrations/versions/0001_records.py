"""tunedesk's records before migrations existed: Azure fine-tune jobs, eval generations and run history.

Databases created before 0.2 already hold some of these tables (each store created its own), so a
table that exists is left as it is and the database is simply stamped.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("azure_fine_tune_jobs"):
        op.create_table(
            "azure_fine_tune_jobs",
            sa.Column("job_id", sa.String(128), primary_key=True),
            sa.Column("endpoint", sa.String(512), nullable=False),
            sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("base_model", sa.String(256), nullable=False),
            sa.Column("status", sa.String(64), nullable=False),
            sa.Column("fine_tuned_model", sa.String(512)),
            sa.Column("training_path", sa.String(1024), nullable=False),
            sa.Column("training_sha256", sa.String(64), nullable=False),
            sa.Column("training_file_id", sa.String(128), nullable=False),
            sa.Column("validation_path", sa.String(1024)),
            sa.Column("validation_sha256", sa.String(64)),
            sa.Column("validation_file_id", sa.String(128)),
            sa.Column("config", sa.JSON, nullable=False),
            sa.Column("error", sa.JSON),
            sa.Column("deployment", sa.String(256)),
        )
    if _missing("eval_generations"):
        op.create_table(
            "eval_generations",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("backend", sa.String(64), nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("ttft_s", sa.Float),
            sa.Column("total_s", sa.Float),
            sa.Column("tokens", sa.Integer),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("eval_runs"):
        op.create_table(
            "eval_runs",
            sa.Column("run_id", sa.String(255), primary_key=True),
            sa.Column("suite", sa.String(255), nullable=False, index=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("directory", sa.String(1024), nullable=False),
        )
    if _missing("eval_scores"):
        op.create_table(
            "eval_scores",
            sa.Column(
                "run_id", sa.String(255), sa.ForeignKey("eval_runs.run_id", ondelete="CASCADE"), primary_key=True
            ),
            sa.Column("backend", sa.String(255), primary_key=True),
            sa.Column("metric", sa.String(128), primary_key=True),
            sa.Column("value", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for name in ("eval_scores", "eval_runs", "eval_generations", "azure_fine_tune_jobs"):
        op.drop_table(name)
