"""The review queue: batches of answers (from an eval run or recent chats) that agents rate blind.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_batches",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("ratings_per_item", sa.Integer, nullable=False),
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("batch", sa.String(128), sa.ForeignKey("review_batches.name", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("context", sa.Text, nullable=False),  # JSON: the turns before the prompt
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("model", sa.String(512)),
        sa.Column("origin", sa.String(512), nullable=False),  # eval run/example, or chat message id
        sa.UniqueConstraint("batch", "position", name="review_items_position"),
    )


def downgrade() -> None:
    op.drop_table("review_items")
    op.drop_table("review_batches")
