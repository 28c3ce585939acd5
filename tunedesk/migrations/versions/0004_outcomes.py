"""How conversations ended (the customer's resolved yes/no and 1-5 satisfaction, escalations to a human),
and which policy sections each answer was given.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_outcomes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False, index=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(64)),  # the answer it followed, when there was one
        sa.Column("backend", sa.String(64)),
        sa.Column("model", sa.String(512)),
        sa.Column("resolved", sa.Integer),
        sa.Column("csat", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("reason", sa.String(32)),
        sa.Column("supersedes", sa.String(36), sa.ForeignKey("chat_outcomes.id")),
        sa.CheckConstraint("kind IN ('survey', 'escalation')", name="chat_outcomes_kind"),
        sa.CheckConstraint("resolved IS NULL OR resolved IN (0, 1)", name="chat_outcomes_resolved"),
        sa.CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="chat_outcomes_csat"),
        sa.CheckConstraint(
            "kind <> 'survey' OR resolved IS NOT NULL OR csat IS NOT NULL", name="chat_outcomes_survey_answered"
        ),
        sa.CheckConstraint(
            "kind <> 'escalation' OR reason IN ('user_request', 'bot_unsure')", name="chat_outcomes_reason"
        ),
    )
    op.create_index("chat_outcomes_created", "chat_outcomes", ["created_at"])
    with op.batch_alter_table("chat_answers") as table:  # batch: SQLite alters by copying the table
        table.add_column(sa.Column("sources", sa.Text))  # JSON: [{"source", "section", "score"}]


def downgrade() -> None:
    with op.batch_alter_table("chat_answers") as table:
        table.drop_column("sources")
    op.drop_table("chat_outcomes")
