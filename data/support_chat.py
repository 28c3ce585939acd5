"""Read raw support logs into conversations, whatever shape they come in.

Shapes (``fmt``, or guessed from the file):
- ``jsonl``: chat format, ``{"messages": [...]}`` per line, optionally with ``id``, ``intent``, ``resolved``;
- ``csv``: one row per turn: ``conversation_id``, ``turn``, ``speaker``, ``text``, optional ``intent``, ``resolved``;
- ``transcript``: plain text, ``Customer: ...`` / ``Agent: ...`` lines, conversations separated by a
  blank line or ``---``; a line without a speaker continues the previous turn;
- ``instructions``: instruction/response CSV as in the public Bitext customer-support set
  (``instruction``, ``response``, optional ``intent``, ``category``).

Decisions:
- Speaker names map to roles through a table the user can extend (``customer -> user``,
  ``agent -> assistant``...); an unknown speaker is an error that names it, never a guess.
- Every error names ``file:line: field``. Files are decoded as strict UTF-8 (a BOM is allowed),
  so a wrong encoding is reported with the line it is on instead of producing mojibake.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from data.schema import ROLES
from tunedesk.errors import DataError, printable
from tunedesk.files import csv_records, jsonl_lines, parse_json, read_text

Format = Literal["jsonl", "csv", "transcript", "instructions"]
FORMATS: tuple[str, ...] = ("jsonl", "csv", "transcript", "instructions")

DEFAULT_SPEAKERS: dict[str, str] = {
    "customer": "user", "user": "user", "client": "user", "cust": "user", "caller": "user",
    "agent": "assistant", "assistant": "assistant", "support": "assistant", "bot": "assistant",
    "rep": "assistant", "representative": "assistant", "operator": "assistant",
    "system": "system",
}  # fmt: skip


class Turn(BaseModel):
    role: str
    content: str


class Conversation(BaseModel):
    id: str
    turns: list[Turn] = Field(default_factory=list)
    intent: str | None = None
    resolved: bool | None = None
    source: str = ""  # file:line where it starts
    augmented: str | None = None  # noise, paraphrase or synthetic: made from the training split

    def to_example(self) -> dict[str, object]:
        return {"messages": [turn.model_dump() for turn in self.turns]}


def read_conversations(
    path: Path, fmt: Format | None = None, speakers: Mapping[str, str] | None = None
) -> Iterator[Conversation]:
    """Conversations from ``path`` in file order."""
    table = {**DEFAULT_SPEAKERS, **{k.lower(): v for k, v in (speakers or {}).items()}}
    for name, role in table.items():
        if role not in ROLES:
            raise DataError(f"speaker map: {name!r} maps to unknown role {role!r}; use one of {', '.join(ROLES)}")
    text = read_text(path, DataError)
    chosen = fmt or guess_format(path, text)
    readers = {
        "jsonl": _read_jsonl,
        "csv": _read_csv_turns,
        "transcript": _read_transcript,
        "instructions": _read_instructions,
    }
    if chosen not in readers:
        raise DataError(f"{path}: unknown format {chosen!r}; use one of {', '.join(readers)}")
    yield from readers[chosen](path, text, table)


def guess_format(path: Path, text: str) -> Format:
    first = text.lstrip().splitlines()[0].lower() if text.strip() else ""
    if path.suffix in (".jsonl", ".json") or first.startswith("{"):
        return "jsonl"
    if path.suffix == ".csv" or "," in first:
        header = {column.strip() for column in first.split(",")}
        return "instructions" if {"instruction", "response"} <= header else "csv"
    return "transcript"


def _role(path: Path, line: int, field: str, speaker: str, table: Mapping[str, str]) -> str:
    role = table.get(speaker.strip().lower())
    if role is None:
        raise DataError(
            f"{path}:{line}: {field}: unknown speaker {speaker!r}; "
            f"map it with --speaker {printable(speaker + '=user')!r} (or assistant)"
        )
    return role


def _read_jsonl(path: Path, text: str, table: Mapping[str, str]) -> Iterator[Conversation]:
    for number, line in jsonl_lines(text):
        if not line.strip():
            continue
        record = parse_json(line, f"{path}:{number}", DataError)
        if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
            raise DataError(f"{path}:{number}: messages: expected an object with a 'messages' list")
        turns = []
        for index, message in enumerate(record["messages"]):
            field = f"messages[{index}]"
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise DataError(f"{path}:{number}: {field}.content: missing or not text")
            if not isinstance(message.get("role", ""), str):
                raise DataError(f"{path}:{number}: {field}.role: expected text, got {message['role']!r}")
            role = _role(path, number, f"{field}.role", message.get("role", ""), table)
            turns.append(Turn(role=role, content=message["content"]))
        yield Conversation(
            id=_scalar_id(path, number, record.get("id", f"{path.stem}-{number}")),
            turns=turns,
            intent=_optional(path, number, record, "intent", str, "text"),
            resolved=_optional(path, number, record, "resolved", bool, "true or false"),
            source=f"{path}:{number}",
        )


def _scalar_id(path: Path, number: int, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise DataError(f"{path}:{number}: id: expected text or a number, got {value!r}")
    return str(value)


def _optional(path: Path, number: int, record: dict, name: str, kind: type, expected: str) -> Any:
    """``record[name]`` when it is a ``kind`` or null/absent; the error names the field otherwise."""
    value = record.get(name)
    if value is not None and not isinstance(value, kind):
        raise DataError(f"{path}:{number}: {name}: expected {expected}, got {value!r}")
    return value


def _rows(path: Path, text: str, required: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    # newline="": quoted fields may hold line breaks, and a file with CR-only line ends still reads.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = {c.strip() for c in reader.fieldnames or []}
    except csv.Error as exc:
        raise DataError(f"{path}:1: header: unreadable CSV: {exc}") from None
    if not required <= columns:
        raise DataError(f"{path}:1: header: missing column(s) {', '.join(sorted(required - columns))}")
    for line, row in csv_records(reader, path):
        if None in row:  # DictReader's key for the values beyond the header's columns
            raise DataError(f"{path}:{line}: record: {len(columns) + len(row[None])} values for {len(columns)} columns")
        values = {k.strip(): v for k, v in row.items() if k}
        short = sorted(column for column in required if values.get(column) is None)
        if short:  # DictReader fills the columns a short row lacks with None
            raise DataError(f"{path}:{line}: {short[0]}: missing; the row has fewer values than the header")
        yield line, {k: (v or "") for k, v in values.items()}


def _parse_bool(path: Path, line: int, value: str) -> bool | None:
    value = value.strip().lower()
    if value == "":
        return None
    if value in ("1", "true", "yes", "y"):
        return True
    if value in ("0", "false", "no", "n"):
        return False
    raise DataError(f"{path}:{line}: resolved: expected true/false, got {value!r}")


def _read_csv_turns(path: Path, text: str, table: Mapping[str, str]) -> Iterator[Conversation]:
    conversations: dict[str, tuple[Conversation, list[tuple[int, Turn]]]] = {}
    for line, row in _rows(path, text, {"conversation_id", "turn", "speaker", "text"}):
        key = row["conversation_id"].strip()
        if not key:
            raise DataError(f"{path}:{line}: conversation_id: empty")
        try:
            index = int(row["turn"])
        except ValueError:
            raise DataError(f"{path}:{line}: turn: expected a number, got {row['turn']!r}") from None
        if key not in conversations:
            conversations[key] = (Conversation(id=key, source=f"{path}:{line}"), [])
        conversation, turns = conversations[key]
        turns.append((index, Turn(role=_role(path, line, "speaker", row["speaker"], table), content=row["text"])))
        if row.get("intent", "").strip():
            conversation.intent = row["intent"].strip()
        resolved = _parse_bool(path, line, row.get("resolved", ""))
        if resolved is not None:
            conversation.resolved = resolved
    for conversation, turns in conversations.values():
        conversation.turns = [turn for _, turn in sorted(turns, key=lambda pair: pair[0])]
        yield conversation


def _read_transcript(path: Path, text: str, table: Mapping[str, str]) -> Iterator[Conversation]:
    current: Conversation | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped == "---":
            if current is not None and current.turns:
                yield current
            current = None
            continue
        speaker, colon, rest = stripped.partition(":")
        is_turn = colon and speaker.strip().lower() in table
        if current is None:
            current = Conversation(id=f"{path.stem}-{number}", source=f"{path}:{number}")
            if not is_turn:
                raise DataError(
                    f"{path}:{number}: speaker: a conversation must start with 'Name: text' "
                    f"(known names: {', '.join(sorted(table))}; add one with --speaker)"
                )
        if is_turn:
            current.turns.append(Turn(role=table[speaker.strip().lower()], content=rest.strip()))
        else:
            current.turns[-1].content += "\n" + stripped
    if current is not None and current.turns:
        yield current


def _read_instructions(path: Path, text: str, table: Mapping[str, str]) -> Iterator[Conversation]:
    for line, row in _rows(path, text, {"instruction", "response"}):
        yield Conversation(
            id=f"{path.stem}-{line}",
            turns=[Turn(role="user", content=row["instruction"]), Turn(role="assistant", content=row["response"])],
            intent=row.get("intent") or row.get("category") or None,
            source=f"{path}:{line}",
        )
