"""Chainlit's SQLAlchemy data layer on tunedesk's database, with its traps closed.

Decisions:
- The schema is created by tunedesk's migrations (``tunedesk.db.migrate``), never by Chainlit.
- Lists and dicts (thread ``tags``, step ``modes``) are stored as JSON text, on SQLite and Postgres
  alike: SQLite cannot bind a list, and one column type on both keeps the migrations single.
  JSON text comes back decoded, so the rest of Chainlit sees the shapes it wrote.
- The stock layer logs a failed statement as a warning and carries on. Here a failure is logged as an
  error with the statement's first words and counted (``tunedesk_persistence_errors_total`` on ``/metrics``), so a
  broken schema shows on ``/metrics`` instead of in nobody's logs.
- Thumbs feedback is also written to tunedesk's ``ratings`` table first, and that write must succeed
  before Chainlit's own row is touched: a thumb the UI reports as given is a stored thumb. Thumbs on a
  message that is no recorded answer (a review item, a notice) stay in Chainlit's ``feedbacks`` only.
- Custom elements (the 1-5 rating widget) carry only props, so they are stored as rows without a blob
  storage; other elements (uploads) still need one and are skipped with Chainlit's warning. An element
  can be sent before the thread's first row is written (steps are queued until the first message is
  flushed), so the thread row is made first, as ``create_step`` does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.element import Element
from chainlit.types import Feedback
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from chatbot import store
from chatbot.telemetry import PERSISTENCE_ERRORS, count_rating

log = logging.getLogger("tunedesk.chat.persistence")
JSON_COLUMNS = {
    "metadata",
    "tags",
    "modes",
    "generation",
    "props",
    "playerConfig",
    "thread_metadata",
    "thread_tags",
    "step_metadata",
    "step_tags",
    "step_generation",
}


class TunedeskDataLayer(SQLAlchemyDataLayer):
    def __init__(self, async_url: str, records: Engine) -> None:
        super().__init__(conninfo=async_url)
        self.records = records  # the sync engine of tunedesk's own tables (ratings, answers)
        if self.engine.dialect.name == "sqlite":
            from tunedesk.db import sqlite_pragmas

            sqlite_pragmas(self.engine.sync_engine)

    async def execute_sql(self, query: str, parameters: dict) -> list[dict[str, Any]] | int | None:
        bound = {key: _to_db(value) for key, value in parameters.items()}
        async with self.async_session() as session:
            try:
                async with session.begin():
                    result = await session.execute(text(query), bound)
                    if not result.returns_rows:
                        return result.rowcount
                    rows = [_from_db(dict(row._mapping)) for row in result.fetchall()]
                    return self.clean_result(rows)
            except SQLAlchemyError as exc:
                statement = " ".join(query.split()[:3])
                PERSISTENCE_ERRORS.add(1, {"statement": statement})
                log.error("chat history statement failed (%s ...): %s", statement, exc.__class__.__name__)
                log.debug("failed statement: %s", exc)
                return None

    async def upsert_feedback(self, feedback: Feedback) -> str:
        rater = None
        if feedback.threadId:
            try:
                rater = await self.get_thread_author(feedback.threadId)  # one query: threads."userIdentifier"
            except ValueError:  # Chainlit's way of saying the thread has no author
                rater = None
        rating = store.RatingIn(
            message_id=feedback.forId, kind="thumbs", thumbs=feedback.value, comment=feedback.comment
        )
        try:
            row = await asyncio.to_thread(store.record_rating, self.records, rating, rater or "anonymous", "chat")
            count_rating(row)
        except store.RatingError:  # thumbs on a message that is not a recorded answer (a review item, a notice)
            log.info("thumbs for %s kept in Chainlit's feedbacks only: not a recorded answer", feedback.forId)
        return await super().upsert_feedback(feedback)

    async def create_element(self, element: Element) -> None:
        if element.type != "custom":
            await super().create_element(element)
            return
        if not element.for_id:
            return
        await self.update_thread(element.thread_id)  # the element may race ahead of its thread's first row
        row = {k: v for k, v in element.to_dict().items() if v is not None}
        columns = ", ".join(f'"{key}"' for key in row)
        values = ", ".join(f":{key}" for key in row)
        updates = ", ".join(f'"{key}" = :{key}' for key in row if key != "id")
        await self.execute_sql(
            f"INSERT INTO elements ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates}", row
        )


def _to_db(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _from_db(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if key in JSON_COLUMNS and isinstance(value, str) and value[:1] in ("{", "["):
            try:
                row[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return row
