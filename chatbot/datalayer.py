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
- Users are the tenants: a thread and everything in it is its author's. ``thread_owner``, ``step_owner``
  and ``feedback_owner`` answer "whose is this?" for the guards in ``chatbot.server``. Element writes come
  with ids from the page (the rating widget updates itself by id), so an element is written or deleted
  only in a thread of the session's own user, and an existing element never moves to another thread.
- What the customer typed is stored with its PII masked (``chatbot.guardrails.mask``): a message's text, the
  input of its run, the thread's name (Chainlit names a thread after its first message). Here, not in the
  handler, because Chainlit writes the message as typed in tasks of its own that a busy SQLite can delay past
  any later write: masking every write is the only order-proof way. The bot's answers are stored as shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.element import Element, ElementDict
from chainlit.step import StepDict
from chainlit.types import Feedback
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from chatbot import store
from chatbot.guardrails import mask
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

    async def create_step(self, step_dict: StepDict) -> None:
        """Chainlit's (``update_step`` too), with what the customer typed masked."""
        if step_dict.get("type") == "user_message" and step_dict.get("output"):
            step_dict = {**step_dict, "output": mask(step_dict["output"])}
        elif step_dict.get("type") == "run" and step_dict.get("input"):
            step_dict = {**step_dict, "input": mask(step_dict["input"])}
        await super().create_step(step_dict)

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Chainlit's, with the thread's name (its first message, as typed) masked."""
        await super().update_thread(thread_id, None if name is None else mask(name), user_id, metadata, tags)

    async def get_thread_author(self, thread_id: str) -> str:
        """The author, or "" for a thread with none or no thread (Chainlit answers 404 then, not 500)."""
        return await self.thread_owner(thread_id) or ""

    async def first_row(self, query: str, parameters: dict) -> dict[str, Any] | None:
        """The first row ``query`` returns; None for no row or a failed statement (``execute_sql`` logged it)."""
        rows = await self.execute_sql(query, parameters)
        return rows[0] if isinstance(rows, list) and rows else None

    async def thread_owner(self, thread_id: str) -> str | None:
        row = await self.first_row('SELECT "userIdentifier" FROM threads WHERE "id" = :id', {"id": thread_id})
        return row["userIdentifier"] if row else None

    async def step_owner(self, step_id: str) -> tuple[str | None, str | None]:
        """The thread of step (message) ``step_id`` and that thread's author."""
        query = (
            'SELECT t."id", t."userIdentifier" FROM steps s JOIN threads t ON t."id" = s."threadId" WHERE s."id" = :id'
        )
        row = await self.first_row(query, {"id": step_id})
        return (row["id"], row["userIdentifier"]) if row else (None, None)

    async def feedback_owner(self, feedback_id: str) -> str | None:
        query = 'SELECT t."userIdentifier" FROM feedbacks f JOIN threads t ON t."id" = f."threadId" WHERE f."id" = :id'
        row = await self.first_row(query, {"id": feedback_id})
        return row["userIdentifier"] if row else None

    async def _foreign_thread(self, thread_id: str | None) -> bool:
        """Whether ``thread_id`` belongs to someone other than the user of the current chat session."""
        user = _session_user()
        if user is None or not thread_id:  # no session (server-side work) or no thread yet: nothing to protect
            return False
        owner = await self.thread_owner(thread_id)
        return owner is not None and owner != user

    async def upsert_feedback(self, feedback: Feedback) -> str:
        rater = None
        if feedback.threadId:
            rater = await self.thread_owner(feedback.threadId)  # chatbot.server set it from the message's thread
        rating = store.RatingIn(
            message_id=feedback.forId, kind="thumbs", thumbs=feedback.value, comment=feedback.comment
        )
        try:
            row = await asyncio.to_thread(store.record_rating, self.records, rating, rater or "anonymous", "chat")
            count_rating(row)
        except store.StoreUnavailable as exc:
            log.warning("thumbs for %s not stored: %s", feedback.forId, exc)
        except store.RatingError:  # thumbs on a message that is not a recorded answer (a review item, a notice)
            log.info("thumbs for %s kept in Chainlit's feedbacks only: not a recorded answer", feedback.forId)
        return await super().upsert_feedback(feedback)

    async def create_element(self, element: Element) -> None:
        if await self._foreign_thread(element.thread_id):
            log.warning("element %s refused: thread %s is another user's", element.id, element.thread_id)
            return
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
        same_thread = 'elements."threadId" = excluded."threadId"'  # an element id from the page moves nothing
        await self.execute_sql(
            f"INSERT INTO elements ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {updates} "
            f"WHERE {same_thread}",
            row,
        )

    async def get_element(self, thread_id: str, element_id: str) -> ElementDict | None:
        """Chainlit's, on decoded JSON columns (its own ``json.loads`` of ``props`` fails on them with a 500)."""
        query = 'SELECT * FROM elements WHERE "threadId" = :thread_id AND "id" = :element_id'
        row = await self.first_row(query, {"thread_id": thread_id, "element_id": element_id})
        if row is None:
            return None
        return ElementDict(**{key: row[key] for key in ElementDict.__annotations__ if key in row})  # type: ignore[typeddict-item]

    async def delete_element(self, element_id: str, thread_id: str | None = None) -> None:
        row = await self.first_row('SELECT "threadId" FROM elements WHERE "id" = :id', {"id": element_id})
        stored_thread = row["threadId"] if row else None
        if await self._foreign_thread(stored_thread):
            log.warning("deleting element %s refused: thread %s is another user's", element_id, stored_thread)
            return
        await super().delete_element(element_id, thread_id)


def _session_user() -> str | None:
    """The signed-in user of the chat session this call runs in; None outside one (an HTTP route, a job)."""
    from chainlit.context import ChainlitContextException, context

    try:
        user = context.session.user
    except ChainlitContextException:
        return None
    return user.identifier if user else None


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
