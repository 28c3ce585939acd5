"""Grounding in company policy: the passages of the policy documents that answer a question go into the prompt.

Decisions:
- Policy documents are Markdown or text files (one file, or a folder of them). They are split on
  headings (``##``/``###``), so a passage is a section a person can find again by its title; a section
  longer than ``max_chars`` is split further between paragraphs or bullets, keeping its title.
- Each paragraph or bullet of a passage is embedded on its own, prefixed with its section title, with
  all-MiniLM-L6-v2 (offline, from its wheel); a passage scores as its best block. Embedding whole
  sections blurred them: on the sample policy "Can I change the delivery address?" scored 0.32 for
  Shipping as a section and 0.73 for its bullet. Questions and blocks are matched by cosine.
- The index is built once per process and file set (about a second on 2 cores for the sample policy,
  once the model is loaded), and rebuilt when a file changes.
- The question is the customer's latest message; a short follow-up ("and for express?") is also
  searched together with the message before it, and each passage keeps its best score.
- Only passages scoring at least ``min_score`` and within ``MARGIN`` of the best are used, best first,
  at most ``top_k``. On the sample policy support questions score 0.40-0.76 and small talk or
  off-topic questions below 0.32, hence the default 0.35. When none
  qualifies the prompt says so, so the model is told to hand over instead of inventing a return window.
- The answer shows the sections it was given, with their text, so an agent can check a number.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tunedesk.errors import ConfigError

SAMPLE_POLICY = Path(__file__).resolve().parent.parent / "data" / "samples" / "support" / "policy.md"
SUFFIXES = (".md", ".markdown", ".txt")
HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
BLOCK = re.compile(r"\n\s*\n|\n(?=\s*[-*] )")  # between paragraphs, and before each bullet
MARGIN = 0.15  # a passage this far below the best one is noise next to it
FOLLOW_UP_WORDS = 8  # a latest message this short is also searched together with the one before it


@dataclass(frozen=True)
class Passage:
    source: str  # file name
    section: str  # the heading it sits under
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def split_markdown(text: str, source: str, max_chars: int = 900) -> list[Passage]:
    """Passages of a Markdown document: one per ``#``-``###`` section, long sections split between blocks."""
    passages: list[Passage] = []
    section = Path(source).stem
    lines: list[str] = []

    def flush() -> None:
        blocks = [block.strip() for block in BLOCK.split("\n".join(lines)) if block.strip()]
        part: list[str] = []
        for block in blocks:
            if part and len("\n".join([*part, block])) > max_chars:
                passages.append(Passage(source, section, "\n".join(part)))
                part = []
            part.append(block)
        if part:
            passages.append(Passage(source, section, "\n".join(part)))
        lines.clear()

    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            flush()
            section = heading.group(2)
        else:
            lines.append(line)
    flush()
    return passages


def policy_files(path: Path) -> list[Path]:
    """The policy documents at ``path``: the file itself, or the Markdown/text files under the folder."""
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if found:
            return found
        raise ConfigError(f"{path}: no policy documents ({', '.join(SUFFIXES)}) in this folder (TUNEDESK_POLICY)")
    raise ConfigError(f"{path}: no such policy file or folder (TUNEDESK_POLICY)")


def read_passages(path: Path, max_chars: int = 900) -> list[Passage]:
    passages: list[Passage] = []
    for file in policy_files(path):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}); save the policy as UTF-8") from None
        name = str(file.relative_to(path)) if path.is_dir() else file.name
        passages += split_markdown(text, name, max_chars)
    if not passages:
        raise ConfigError(f"{path}: the policy documents are empty (TUNEDESK_POLICY)")
    return passages


class PolicyIndex:
    """Policy passages and their embeddings; ``search`` returns the best passages for a conversation."""

    def __init__(self, passages: Sequence[Passage], encoder: Any) -> None:
        self.passages = list(passages)
        self.encoder = encoder
        blocks = [
            (i, block.strip()) for i, p in enumerate(self.passages) for block in BLOCK.split(p.text) if block.strip()
        ]
        self.owner = [i for i, _ in blocks]
        self.embeddings = encoder.encode([f"{self.passages[i].section}: {block}" for i, block in blocks])

    def search(self, questions: Sequence[str], top_k: int = 3, min_score: float = 0.35) -> list[Hit]:
        """The best passages for the customer's messages (oldest first), best first."""
        latest = questions[-1] if questions else ""
        queries = [latest]
        if len(questions) > 1 and len(latest.split()) <= FOLLOW_UP_WORDS:
            queries.append(f"{questions[-2]} {latest}")
        per_block = (self.encoder.encode(queries) @ self.embeddings.T).max(dim=0).values.tolist()
        scores = [-1.0] * len(self.passages)
        for owner, score in zip(self.owner, per_block, strict=True):
            scores[owner] = max(scores[owner], score)
        ranked = sorted(range(len(self.passages)), key=lambda i: scores[i], reverse=True)[:top_k]
        floor = max(min_score, scores[ranked[0]] - MARGIN) if ranked else min_score
        return [Hit(self.passages[i], scores[i]) for i in ranked if scores[i] >= floor]


@lru_cache(maxsize=4)
def _index(files: tuple[tuple[str, int, int], ...], path: str, model: str | None) -> PolicyIndex:
    from tunedesk.embeddings import sentence_encoder

    return PolicyIndex(read_passages(Path(path)), sentence_encoder(model))


_building = threading.Lock()


def load_index(path: Path, model: str | None = None) -> PolicyIndex:
    """The index of the policy at ``path``, built once and again only after a file changes."""
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in policy_files(path))
    with _building:  # the start-up warm-up and a first question do not both build it
        return _index(stamp, str(path), model)


def grounded_prompt(system_prompt: str, hits: Sequence[Hit]) -> str:
    """The system prompt with the policy passages the answer must come from."""
    if not hits:
        return (
            f"{system_prompt}\n\nNo section of the company policy matches this question. Do not guess policy "
            "details (deadlines, fees, prices): say you are not sure and offer to pass the question to a human "
            "colleague."
        )
    sections = "\n\n".join(f"## {hit.passage.section}\n{hit.passage.text}" for hit in hits)
    return (
        f"{system_prompt}\n\nAnswer from the company policy below and quote its numbers exactly. If it does not "
        f"answer the question, say so and offer to pass the question to a human colleague.\n\n{sections}"
    )


def sources(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """What the answer shows (and the records keep) of the passages it was given."""
    return [
        {
            "source": hit.passage.source,
            "section": hit.passage.section,
            "text": hit.passage.text,
            "score": round(hit.score, 3),
        }
        for hit in hits
    ]
