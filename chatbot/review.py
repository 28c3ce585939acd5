"""The review queue: batches of answers that agents rate one by one, blind to the backend and model.

Decisions:
- A batch is made once (``tunedesk review add``) from an eval run's ``examples.jsonl`` or from recent
  chat answers, in a seeded shuffle so backends interleave and position gives nothing away.
- Ratings of review items are ordinary rows in ``ratings`` (source ``review``, ``message_id`` = the item
  id), with the item's prompt, answer, backend and model snapshotted: exports and the eval see them
  like any other rating. The agent's page never shows backend or model.
- Each item is rated by up to ``ratings_per_item`` distinct agents. An agent gets the first item (by
  position) they have not rated that still needs raters, so a batch fills evenly from the front.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    distinct,
    func,
    insert,
    select,
)

from chatbot.store import answers_table, ratings_table
from tunedesk.errors import ConfigError
from tunedesk.files import jsonl_lines, load_json, parse_json, read_text

metadata = MetaData()
batches_table = Table(
    "review_batches",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("ratings_per_item", Integer, nullable=False),
)
items_table = Table(
    "review_items",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("batch", String(128), ForeignKey("review_batches.name"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("context", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("backend", String(64), nullable=False),
    Column("model", String(512)),
    Column("origin", String(512), nullable=False),
)
ITEM_PREFIX = "rev-"


@dataclass(frozen=True)
class Item:
    id: str
    batch: str
    position: int
    context: list[dict[str, str]]
    prompt: str
    answer: str
    backend: str
    model: str | None
    origin: str


@dataclass(frozen=True)
class Next:
    item: Item | None
    done: int  # items of the batch this agent has rated
    total: int  # items of the batch


def items_from_eval(directory: Path, backends: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Review items from an eval run directory (its ``examples.jsonl``, models from ``results.json``)."""
    examples = directory / "examples.jsonl"
    if not examples.is_file():
        raise ConfigError(f"{directory}: no examples.jsonl; pass the directory of a `tunedesk eval run`")
    models = run_models(directory / "results.json")
    items = []
    for number, line in jsonl_lines(read_text(examples)):
        if not line.strip():
            continue
        where = f"{examples}:{number}"
        row = parse_json(line, where)
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: not an eval example row (a JSON object, got {type(row).__name__})")
        for key in ("backend", "answer"):
            if not isinstance(row.get(key), str):
                raise ConfigError(f"{where}: not an eval example row ({key}: expected text, got {_kind(row.get(key))})")
        backend, answer = row["backend"], row["answer"]
        if backends and backend not in backends:
            continue
        if row.get("generation_error") or not answer.strip():
            continue  # a failed generation is not an answer to judge
        turns = _prompt_turns(where, row.get("prompt"))
        last_user = max(i for i, m in enumerate(turns) if m["role"] == "user")
        items.append(
            {
                "context": turns[:last_user],
                "prompt": turns[last_user]["content"],
                "answer": answer,
                "backend": backend,
                "model": models.get(backend),
                "origin": f"eval:{directory.name}:{row.get('id')}",
            }
        )
    return items


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _prompt_turns(where: str, prompt: Any) -> list[dict[str, str]]:
    """An example's prompt as chat turns: a text, or a list of ``{role, content}`` with a user turn in it."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list):
        raise ConfigError(f"{where}: not an eval example row (prompt: expected text or turns, got {_kind(prompt)})")
    turns = []
    for index, turn in enumerate(prompt):
        if not isinstance(turn, dict) or not all(isinstance(turn.get(key), str) for key in ("role", "content")):
            raise ConfigError(f"{where}: not an eval example row (prompt[{index}]: expected {{role, content}} texts)")
        turns.append({"role": turn["role"], "content": turn["content"]})
    if not any(turn["role"] == "user" for turn in turns):
        raise ConfigError(f"{where}: not an eval example row (prompt: no user turn)")
    return turns


def run_models(path: Path) -> dict[str, str | None]:
    """Backend name -> model, from a run's ``results.json`` (none when it is missing)."""
    if not path.is_file():
        return {}
    results = load_json(path)
    backends = results.get("backends", {}) if isinstance(results, dict) else None
    if not isinstance(backends, dict):
        raise ConfigError(f"{path}: backends: expected a mapping of backend name -> results")
    models: dict[str, str | None] = {}
    for name, summary in backends.items():
        described = summary.get("description") if isinstance(summary, dict) else None
        model = described.get("model") if isinstance(described, dict) else None
        models[name] = model if isinstance(model, str) else None
    return models


def items_from_chats(engine: Engine, since: datetime | None = None) -> list[dict[str, Any]]:
    """Review items from the chat's recorded answers (no failed ones), with their threads as context."""
    a = answers_table.c
    query = select(answers_table).where(a.error.is_(None)).order_by(a.created_at)
    if since is not None:
        query = query.where(a.created_at >= since)
    with engine.connect() as conn:
        answers = [dict(row) for row in conn.execute(query).mappings()]
    by_thread: dict[str, list[dict[str, Any]]] = {}
    items = []
    for answer in answers:
        earlier = by_thread.setdefault(answer["thread_id"] or answer["message_id"], [])
        context = [turn for e in earlier for turn in _turns(e)]
        items.append(
            {
                "context": context,
                "prompt": answer["prompt"],
                "answer": answer["answer"],
                "backend": answer["backend"],
                "model": answer["model"],
                "origin": f"chat:{answer['message_id']}",
            }
        )
        earlier.append(answer)
    return items


def _turns(answer: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "user", "content": answer["prompt"]}, {"role": "assistant", "content": answer["answer"]}]


def add_batch(
    engine: Engine,
    name: str,
    source: str,
    items: list[dict[str, Any]],
    ratings_per_item: int,
    limit: int | None = None,
    seed: int = 0,
) -> int:
    """Store a batch of ``items`` (shuffled with ``seed``, at most ``limit``); returns how many."""
    if not items:
        raise ConfigError(f"{source}: nothing to review (no answers found)")
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    chosen = shuffled[:limit] if limit else shuffled
    with engine.begin() as conn:
        if conn.execute(select(batches_table.c.name).where(batches_table.c.name == name)).first():
            raise ConfigError(f"review batch {name!r} exists; choose another name")
        conn.execute(
            insert(batches_table).values(
                name=name, created_at=datetime.now(UTC), source=source, ratings_per_item=ratings_per_item
            )
        )
        conn.execute(
            insert(items_table),
            [
                {**item, "context": json.dumps(item["context"]), "id": ITEM_PREFIX + uuid.uuid4().hex, "batch": name}
                | {"position": position}
                for position, item in enumerate(chosen, start=1)
            ],
        )
    return len(chosen)


def _raters_per_item():  # type: ignore[no-untyped-def]
    """Distinct review raters per item id (items nobody rated are absent)."""
    r = ratings_table.c
    return (
        select(r.message_id, func.count(distinct(r.rater)).label("raters"))
        .where(r.kind == "scores", r.source == "review", r.message_id.like(ITEM_PREFIX + "%"))
        .group_by(r.message_id)
        .subquery()
    )


def next_item(engine: Engine, batch: str, rater: str) -> Next:
    """The next item ``rater`` should rate in ``batch``, with their progress."""
    i, r = items_table.c, ratings_table.c
    with engine.connect() as conn:
        found = conn.execute(select(batches_table).where(batches_table.c.name == batch)).mappings().first()
        if found is None:
            raise ConfigError(f"no review batch {batch!r}; `tunedesk review list` shows them")
        total = conn.execute(select(func.count()).where(i.batch == batch)).scalar_one()
        mine = select(r.message_id).where(r.rater == rater, r.kind == "scores", r.source == "review")
        done = conn.execute(select(func.count()).where(i.batch == batch, i.id.in_(mine))).scalar_one()
        counts = _raters_per_item()
        row = (
            conn.execute(
                select(items_table)
                .outerjoin(counts, counts.c.message_id == i.id)
                .where(
                    and_(
                        i.batch == batch,
                        i.id.not_in(mine),
                        func.coalesce(counts.c.raters, 0) < found["ratings_per_item"],
                    )
                )
                .order_by(i.position)
                .limit(1)
            )
            .mappings()
            .first()
        )
    item = _item(dict(row)) if row else None
    return Next(item, done, total)


def get_item(engine: Engine, item_id: str) -> Item | None:
    with engine.connect() as conn:
        row = conn.execute(select(items_table).where(items_table.c.id == item_id)).mappings().first()
    return _item(dict(row)) if row else None


def _item(row: dict[str, Any]) -> Item:
    return Item(**{**row, "context": json.loads(row["context"])})


def batches(engine: Engine) -> list[dict[str, Any]]:
    """Every batch, newest first, with its items, ratings given and items fully rated."""
    b, i = batches_table.c, items_table.c
    counts = _raters_per_item()
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(select(batches_table).order_by(b.created_at.desc())).mappings()]
        per_item = conn.execute(
            select(i.batch, func.coalesce(counts.c.raters, 0)).outerjoin(counts, counts.c.message_id == i.id)
        ).all()
    raters: dict[str, list[int]] = {}
    for batch, count in per_item:
        raters.setdefault(batch, []).append(count)
    for batch in rows:
        mine = raters.get(batch["name"], [])
        batch["items"] = len(mine)
        batch["ratings"] = sum(mine)
        batch["complete"] = sum(1 for n in mine if n >= batch["ratings_per_item"])
    return rows


def open_batch(engine: Engine, rater: str) -> str | None:
    """The newest batch that still has an item for ``rater``."""
    with engine.connect() as conn:
        names = conn.execute(select(batches_table.c.name).order_by(batches_table.c.created_at.desc())).scalars().all()
    for name in names:
        if next_item(engine, name, rater).item is not None:
            return str(name)
    return None
