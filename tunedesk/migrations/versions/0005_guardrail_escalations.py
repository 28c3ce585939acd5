"""Escalations by the guardrails: ``chat_outcomes.reason`` may also be ``guardrail`` (a message the guardrails
hand to a person, by default self-harm: ``TUNEDESK_GUARDRAILS_ESCALATE``).

Decisions:
- The check constraint is dropped and created again under the same name, in ``batch_alter_table``: SQLite
  cannot alter a constraint, so there the table is copied (rows, indexes and the other constraints with it);
  Postgres gets two ALTER TABLE statements.
- The downgrade refuses, changing nothing, while guardrail escalations exist: revision 0004 cannot hold them
  and deleting a customer's hand-over silently is worse than a clear stop.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tunedesk.errors import DataError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REASONS_0004 = ("user_request", "bot_unsure")
REASONS_0005 = (*REASONS_0004, "guardrail")


def _reasons(names: tuple[str, ...]) -> str:
    return "kind <> 'escalation' OR reason IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def _replace_reason_check(names: tuple[str, ...]) -> None:
    with op.batch_alter_table("chat_outcomes") as table:
        table.drop_constraint("chat_outcomes_reason", type_="check")
        table.create_check_constraint("chat_outcomes_reason", _reasons(names))


def upgrade() -> None:
    _replace_reason_check(REASONS_0005)


def downgrade() -> None:
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM chat_outcomes WHERE reason = 'guardrail'")).scalar()
    if count:
        raise DataError(
            f"chat_outcomes holds {count} escalation(s) with reason 'guardrail', which revision 0004 cannot store; "
            "export them (tunedesk ratings outcomes --kind escalation) and delete them, then downgrade again"
        )
    _replace_reason_check(REASONS_0004)
