"""The chat's own records: every answer the bot gave, and every rating an agent (or a script) gave it.

Decisions:
- These tables are tunedesk's, not Chainlit's: Chainlit's data layer swallows SQL errors, and a rating
  must either be stored or fail loudly. The UI acknowledges a rating only after its commit returns.
- A rating row snapshots the prompt, answer, backend and model it judged, so an export stays true after
  threads are deleted or the model is replaced.
- A rater who changes their mind adds a row that ``supersedes`` the previous one: the current rating is
  the row nobody supersedes, and the history is never overwritten.
- Thumbs (Chainlit's feedback) and 1-5 scores are separate kinds: changing one does not erase the other.
- Every write is one transaction through ``tunedesk.db.retrying``: a locked or restarting database is tried
  again for a few seconds, then the write fails with ``StoreUnavailable`` (a ``RatingError``, so the widget
  and the API say "not saved" instead of "saved"). A row's id is chosen before the first attempt and each
  attempt first looks for it, so a retry after a commit whose reply was lost returns the stored row.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
)

from tunedesk import db
from tunedesk.errors import TunedeskError
from tunedesk.files import spreadsheet_safe

T = TypeVar("T")
metadata = MetaData()
answers_table = Table(
    "chat_answers",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("run_id", String(64)),  # Chainlit's "on_message" step: its thumbs are given for this id
    Column("thread_id", String(64)),
    Column("user", String(255)),
    Column("profile", String(64)),
    Column("backend", String(64), nullable=False),
    Column("model", String(512), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("error", String(64)),
    Column("ttft_s", Float),
    Column("total_s", Float),
    Column("tokens", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sources", Text),  # JSON: the policy sections the answer was given
)
ratings_table = Table(
    "ratings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rater", String(255), nullable=False),
    Column("source", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("thread_id", String(64)),
    Column("backend", String(64)),
    Column("model", String(512)),
    Column("prompt", Text),
    Column("answer", Text),
    Column("thumbs", Integer),
    Column("comment", Text),
    Column("naturalness", Integer),
    Column("correctness", Integer),
    Column("helpfulness", Integer),
    Column("correction", Text),
    Column("supersedes", String(36), ForeignKey("ratings.id")),
)
outcomes_table = Table(
    "chat_outcomes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # survey | escalation
    Column("thread_id", String(64), nullable=False),
    Column("user", String(255), nullable=False),
    Column("message_id", String(64)),
    Column("backend", String(64)),
    Column("model", String(512)),
    Column("resolved", Integer),
    Column("csat", Integer),
    Column("comment", Text),
    Column("reason", String(32)),  # escalation: user_request | bot_unsure | guardrail
    Column("supersedes", String(36), ForeignKey("chat_outcomes.id")),
)
SCORES = ("naturalness", "correctness", "helpfulness")
EXPORT_COLUMNS = [column.name for column in ratings_table.columns]
OUTCOME_COLUMNS = [column.name for column in outcomes_table.columns]
Source = Literal["chat", "review", "api"]


class RatingError(TunedeskError):
    """A rating that cannot be stored as given (unknown answer, nothing rated)."""


class StoreUnavailable(RatingError, db.DatabaseUnavailable):
    """The database stayed locked or unreachable for the whole write budget; nothing was stored."""


def _write(engine: Engine, work: Callable[[Connection], T], what: str) -> T:
    try:
        return db.retrying(engine, work, what)
    except db.DatabaseUnavailable as exc:
        raise StoreUnavailable(str(exc)) from exc.__cause__


def _stored(conn: Connection, table: Table, key: str) -> dict[str, Any] | None:
    """The row ``key`` of ``table`` if an earlier attempt of this write committed it."""
    primary = next(iter(table.primary_key.columns))
    row = conn.execute(select(table).where(primary == key)).mappings().first()
    return dict(row) if row else None


class RatingIn(BaseModel):
    """One rating as the UI or the API submits it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    message_id: str = Field(min_length=1, max_length=64)
    kind: Literal["thumbs", "scores"] = "scores"
    thumbs: Literal[0, 1] | None = None
    comment: str | None = Field(default=None, max_length=10_000)
    naturalness: int | None = Field(default=None, ge=1, le=5)
    correctness: int | None = Field(default=None, ge=1, le=5)
    helpfulness: int | None = Field(default=None, ge=1, le=5)
    correction: str | None = Field(default=None, max_length=20_000)
    # for answers the chat did not produce (an automated rater judging eval output)
    prompt: str | None = Field(default=None, max_length=50_000)
    answer: str | None = Field(default=None, max_length=50_000)
    backend: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _something_rated(self) -> RatingIn:
        if self.kind == "thumbs" and self.thumbs is None:
            raise ValueError("a thumbs rating needs thumbs: 1 (up) or 0 (down)")
        if self.kind == "scores" and not (any(getattr(self, s) for s in SCORES) or self.correction):
            raise ValueError(f"a scores rating needs at least one of {', '.join(SCORES)} (1-5) or a correction")
        return self


@dataclass(frozen=True)
class Answer:
    message_id: str
    run_id: str | None
    thread_id: str | None
    user: str | None
    profile: str | None
    backend: str
    model: str
    prompt: str
    answer: str
    error: str | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    tokens: int | None = None
    sources: Sequence[dict[str, Any]] = ()  # policy passages: source, section, score (text is not repeated)


def answer_thread(engine: Engine, message_id: str) -> str | None:
    """The conversation an answer belongs to; None for an unknown message."""
    with engine.connect() as conn:
        found = conn.execute(select(answers_table.c.thread_id).where(answers_table.c.message_id == message_id))
        return found.scalar()


def record_answer(engine: Engine, answer: Answer) -> None:
    row = answer.__dict__ | {
        "sources": json.dumps([{k: s[k] for k in ("source", "section", "score")} for s in answer.sources]),
        "created_at": datetime.now(UTC),
    }

    def work(conn: Connection) -> None:
        if _stored(conn, answers_table, answer.message_id) is None:
            conn.execute(insert(answers_table).values(**row))

    _write(engine, work, "the answer's record")


def _current(rater: str | None = None) -> Select[Any]:
    """Rows nobody supersedes (optionally of one rater)."""
    superseded = select(ratings_table.c.supersedes).where(ratings_table.c.supersedes.is_not(None))
    query = select(ratings_table).where(ratings_table.c.id.not_in(superseded))
    return query if rater is None else query.where(ratings_table.c.rater == rater)


def record_rating(engine: Engine, rating: RatingIn, rater: str, source: Source) -> dict[str, Any]:
    """Store ``rating``; it supersedes ``rater``'s current rating of the same kind for that answer."""
    now, rating_id = datetime.now(UTC), str(uuid.uuid4())

    def work(conn: Connection) -> dict[str, Any]:
        if (stored := _stored(conn, ratings_table, rating_id)) is not None:
            return stored
        a = answers_table.c
        answer = (
            conn.execute(
                select(answers_table).where(or_(a.message_id == rating.message_id, a.run_id == rating.message_id))
            )
            .mappings()
            .first()
        )
        if answer is None and not (rating.prompt and rating.answer):
            raise RatingError(
                f"message_id {rating.message_id!r}: no such answer in the chat records; "
                "rate an answer the chat gave, or send prompt and answer with the rating"
            )
        message_id = answer["message_id"] if answer else rating.message_id
        previous = (
            conn.execute(
                _current(rater)
                .where(ratings_table.c.message_id == message_id, ratings_table.c.kind == rating.kind)
                .order_by(ratings_table.c.created_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        row: dict[str, Any] = {
            "id": rating_id,
            "created_at": now,
            "rater": rater,
            "source": source,
            "kind": rating.kind,
            "message_id": message_id,
            "thread_id": answer["thread_id"] if answer else None,
            "backend": answer["backend"] if answer else rating.backend,
            "model": answer["model"] if answer else rating.model,
            "prompt": answer["prompt"] if answer else rating.prompt,
            "answer": answer["answer"] if answer else rating.answer,
            "thumbs": rating.thumbs,
            "comment": rating.comment or None,
            "naturalness": rating.naturalness,
            "correctness": rating.correctness,
            "helpfulness": rating.helpfulness,
            "correction": rating.correction or None,
            "supersedes": previous["id"] if previous else None,
        }
        conn.execute(insert(ratings_table).values(**row))
        return row

    return _write(engine, work, "the rating")


@dataclass(frozen=True)
class RatingFilter:
    since: datetime | None = None
    until: datetime | None = None
    rater: str | None = None
    backend: str | None = None
    model: str | None = None
    kind: str | None = None
    source: str | None = None
    history: bool = False  # every row, superseded ones included


def ratings(engine: Engine, where: RatingFilter | None = None) -> list[dict[str, Any]]:
    """Ratings oldest first: the current ones, or with ``history`` every submission."""
    where = where or RatingFilter()
    query = select(ratings_table) if where.history else _current()
    t = ratings_table.c
    if where.since:
        query = query.where(t.created_at >= where.since)
    if where.until:
        query = query.where(t.created_at < where.until)
    for column, value in (
        (t.rater, where.rater),
        (t.backend, where.backend),
        (t.model, where.model),
        (t.kind, where.kind),
        (t.source, where.source),
    ):
        if value is not None:
            query = query.where(column == value)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.created_at, t.id)).mappings().all()
    return [_aware(dict(row)) for row in rows]


def current_scores(engine: Engine, message_ids: Sequence[str], rater: str) -> dict[str, dict[str, Any]]:
    """``rater``'s current 1-5 scores (and correction) per answer, for showing them again on resume."""
    if not message_ids:
        return {}
    query = _current(rater).where(ratings_table.c.kind == "scores", ratings_table.c.message_id.in_(message_ids))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {row["message_id"]: {k: row[k] for k in (*SCORES, "correction")} for row in rows}


class SurveyIn(BaseModel):
    """The end-of-conversation survey: was the issue resolved, and how satisfied (1-5) the user is."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    resolved: bool | None = None
    csat: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _answered(self) -> SurveyIn:
        if self.resolved is None and self.csat is None:
            raise ValueError("answer at least one: resolved (yes/no) or satisfaction (1-5)")
        return self


Escalation = Literal["user_request", "bot_unsure", "guardrail"]  # asked for, the bot unsure, the guardrails


def _last_answer(conn: Any, thread_id: str) -> dict[str, Any]:
    a = answers_table.c
    query = select(a.message_id, a.backend, a.model).where(a.thread_id == thread_id)
    row = conn.execute(query.order_by(a.created_at.desc()).limit(1)).mappings().first()
    return dict(row) if row else {"message_id": None, "backend": None, "model": None}


def _insert_outcome(conn: Any, outcome_id: str, kind: str, thread_id: str, user: str, **answers: Any) -> dict[str, Any]:
    """Insert one ``chat_outcomes`` row for the thread's latest answer; ``answers`` fills the kind's columns."""
    if (stored := _stored(conn, outcomes_table, outcome_id)) is not None:
        return stored
    row = {
        "id": outcome_id,
        "created_at": datetime.now(UTC),
        "kind": kind,
        "thread_id": thread_id,
        "user": user,
        **_last_answer(conn, thread_id),
        "resolved": None,
        "csat": None,
        "comment": None,
        "reason": None,
        "supersedes": None,
        **answers,
    }
    conn.execute(insert(outcomes_table).values(**row))
    return row


def record_survey(engine: Engine, thread_id: str, user: str, survey: SurveyIn) -> dict[str, Any]:
    """Store ``user``'s survey of a conversation; a second one supersedes the first (history is kept)."""
    o, survey_id = outcomes_table.c, str(uuid.uuid4())

    def work(conn: Connection) -> dict[str, Any]:
        superseded = select(o.supersedes).where(o.supersedes.is_not(None))
        previous = conn.execute(
            select(o.id).where(o.thread_id == thread_id, o.user == user, o.kind == "survey", o.id.not_in(superseded))
        ).scalar()
        return _insert_outcome(
            conn,
            survey_id,
            "survey",
            thread_id,
            user,
            resolved=None if survey.resolved is None else int(survey.resolved),
            csat=survey.csat,
            comment=survey.comment or None,
            supersedes=previous,
        )

    return _write(engine, work, "the survey")


def record_escalation(engine: Engine, thread_id: str, user: str, reason: Escalation) -> dict[str, Any]:
    """Record that a conversation was handed to a human, and why."""
    escalation_id = str(uuid.uuid4())
    return _write(
        engine,
        lambda conn: _insert_outcome(conn, escalation_id, "escalation", thread_id, user, reason=reason),
        "the escalation",
    )


def outcomes(
    engine: Engine,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    history: bool = False,
) -> list[dict[str, Any]]:
    """Surveys and escalations oldest first; a changed survey counts once unless ``history``."""
    o = outcomes_table.c
    query = select(outcomes_table)
    if not history:
        query = query.where(o.id.not_in(select(o.supersedes).where(o.supersedes.is_not(None))))
    if since:
        query = query.where(o.created_at >= since)
    if until:
        query = query.where(o.created_at < until)
    if kind:
        query = query.where(o.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(o.created_at, o.id)).mappings().all()
    return [_aware(dict(row)) for row in rows]


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        row["created_at"] = created.replace(tzinfo=UTC)
    return row


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, default=_iso, ensure_ascii=False) + "\n" for row in rows)


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str] = EXPORT_COLUMNS) -> str:
    """CSV for spreadsheets: text a spreadsheet would run as a formula (``=HYPERLINK(...)`` typed by a
    customer) gets a leading apostrophe, OWASP's advice against CSV injection; JSONL keeps text as typed.
    Rows end in CRLF (RFC 4180), so a CR typed inside a cell gets the cell quoted instead of ending the row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return out.getvalue()


def export_text(rows: Sequence[dict[str, Any]], format: str, columns: Sequence[str]) -> str:
    """Rows as ``csv`` (with ``columns``) or ``jsonl`` (anything else): what the API and the CLI export."""
    return to_csv(rows, columns) if format == "csv" else to_jsonl(rows)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return spreadsheet_safe(value)  # OWASP's CSV-injection advice; the rule is in tunedesk.files
    return value


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
