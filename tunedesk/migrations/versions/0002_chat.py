"""The chat UI's tables: Chainlit's threads, steps, elements and feedbacks, and tunedesk's answers and ratings.

Chainlit's SQLAlchemy data layer writes every key of its step and element dicts, so each one needs a
column (its documented DDL lacks ``autoCollapse`` and ``icon``; the inserts then fail and are only logged).
Ids, JSON and timestamps are TEXT because the data layer binds them as strings on every database.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _thread_fk() -> sa.ForeignKey:
    return sa.ForeignKey("threads.id", ondelete="CASCADE")


def upgrade() -> None:
    text, boolean = sa.Text, sa.Boolean
    op.create_table(
        "users",
        sa.Column("id", text, primary_key=True),
        sa.Column("identifier", text, nullable=False, unique=True),
        sa.Column("metadata", text, nullable=False),
        sa.Column("createdAt", text),
    )
    op.create_table(
        "threads",
        sa.Column("id", text, primary_key=True),
        sa.Column("createdAt", text),
        sa.Column("name", text),
        sa.Column("userId", text, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("userIdentifier", text),
        sa.Column("tags", text),
        sa.Column("metadata", text),
    )
    op.create_table(
        "steps",
        sa.Column("id", text, primary_key=True),
        sa.Column("name", text, nullable=False),
        sa.Column("type", text, nullable=False),
        sa.Column("threadId", text, _thread_fk(), nullable=False, index=True),
        sa.Column("parentId", text),
        sa.Column("command", text),
        sa.Column("modes", text),
        sa.Column("streaming", boolean, nullable=False),
        sa.Column("waitForAnswer", boolean),
        sa.Column("isError", boolean),
        sa.Column("metadata", text),
        sa.Column("tags", text),
        sa.Column("input", text),
        sa.Column("output", text),
        sa.Column("createdAt", text),
        sa.Column("start", text),
        sa.Column("end", text),
        sa.Column("generation", text),
        sa.Column("showInput", text),
        sa.Column("language", text),
        sa.Column("indent", sa.Integer),
        sa.Column("defaultOpen", boolean),
        sa.Column("autoCollapse", boolean),
        sa.Column("icon", text),
    )
    op.create_table(
        "elements",
        sa.Column("id", text, primary_key=True),
        sa.Column("threadId", text, _thread_fk(), index=True),
        sa.Column("type", text),
        sa.Column("url", text),
        sa.Column("chainlitKey", text),
        sa.Column("name", text, nullable=False),
        sa.Column("display", text),
        sa.Column("objectKey", text),
        sa.Column("size", text),
        sa.Column("page", sa.Integer),
        sa.Column("language", text),
        sa.Column("forId", text),
        sa.Column("mime", text),
        sa.Column("props", text),
        sa.Column("autoPlay", boolean),
        sa.Column("playerConfig", text),
    )
    op.create_table(
        "feedbacks",
        sa.Column("id", text, primary_key=True),
        sa.Column("forId", text, nullable=False, index=True),
        sa.Column("threadId", text, _thread_fk(), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("comment", text),
    )
    op.create_table(
        "chat_answers",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), index=True),
        sa.Column("thread_id", sa.String(64), index=True),
        sa.Column("user", sa.String(255)),
        sa.Column("profile", sa.String(64)),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("model", sa.String(512), nullable=False),
        sa.Column("prompt", text, nullable=False),
        sa.Column("answer", text, nullable=False),
        sa.Column("error", sa.String(64)),
        sa.Column("ttft_s", sa.Float),
        sa.Column("total_s", sa.Float),
        sa.Column("tokens", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    score = sa.Integer
    op.create_table(
        "ratings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("rater", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64)),
        sa.Column("backend", sa.String(64)),
        sa.Column("model", sa.String(512)),
        sa.Column("prompt", text),
        sa.Column("answer", text),
        sa.Column("thumbs", sa.Integer),
        sa.Column("comment", text),
        sa.Column("naturalness", score),
        sa.Column("correctness", score),
        sa.Column("helpfulness", score),
        sa.Column("correction", text),
        sa.Column("supersedes", sa.String(36), sa.ForeignKey("ratings.id")),
        sa.CheckConstraint("kind IN ('thumbs', 'scores')", name="ratings_kind"),
        sa.CheckConstraint("thumbs IS NULL OR thumbs IN (0, 1)", name="ratings_thumbs"),
        *(
            sa.CheckConstraint(f"{name} IS NULL OR {name} BETWEEN 1 AND 5", name=f"ratings_{name}")
            for name in ("naturalness", "correctness", "helpfulness")
        ),
    )
    op.create_index("ratings_by_message", "ratings", ["message_id", "rater", "kind"])


def downgrade() -> None:
    op.drop_index("ratings_by_message", "ratings")
    for name in ("ratings", "chat_answers", "feedbacks", "elements", "steps", "threads", "users"):
        op.drop_table(name)
