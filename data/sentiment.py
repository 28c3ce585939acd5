"""Social-media posts with a 3-way sentiment label: the reader.

Shapes (guessed from the suffix, else from the first character):
- ``csv``: columns ``text``, ``label`` and optionally ``id``;
- ``jsonl``: one object per line with ``SentimentExample``'s fields (a ``source`` key is allowed and
  replaced by ``file:line``).

Decisions:
- Labels are ``negative``/``neutral``/``positive`` in any case, or tweet_eval's integers
  ``0``/``1``/``2`` (as a number or as text), so an export of tweet_eval's sentiment config reads as is.
- ``id`` may be left out (tweet_eval has none): it is then ``<file stem>-<line>``. An id that is
  present must be non-empty and unique in the file.
- Unknown fields, missing text and bytes that are not UTF-8 are errors naming ``file:line: field``
  (the record reader is shared with ``data/legal_summary.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

from data.records import Record, RecordFormat, read_records, text_field
from data.schema import SENTIMENT_LABELS, SentimentExample, SentimentLabel
from data.support_chat import DataError

SENTIMENT_FIELDS: tuple[str, ...] = ("id", "text", "label")
TWEET_EVAL_LABELS: dict[int, SentimentLabel] = {0: "negative", 1: "neutral", 2: "positive"}


def read_posts(path: Path, fmt: RecordFormat | None = None) -> Iterator[SentimentExample]:
    """Sentiment examples from ``path`` in file order; ``source`` is ``file:line``."""
    seen: dict[str, int] = {}
    records = read_records(path, SENTIMENT_FIELDS, fmt, required=("text", "label"), allowed_extra=("source",))
    for line, record in records:
        if "id" in record:
            post_id = text_field(path, line, record, "id")
            if post_id in seen:
                raise DataError(f"{path}:{line}: id: {post_id!r} already used on line {seen[post_id]}")
            seen[post_id] = line
        else:
            post_id = f"{path.stem}-{line}"
        yield SentimentExample(
            id=post_id,
            text=text_field(path, line, record, "text"),
            label=parse_label(path, line, record),
            source=f"{path}:{line}",
        )


def parse_label(path: Path, line: int, record: Record) -> SentimentLabel:
    """``record["label"]`` as one of ``SENTIMENT_LABELS``; tweet_eval's 0/1/2 are mapped."""
    value = record.get("label")
    if isinstance(value, int) and not isinstance(value, bool) and value in TWEET_EVAL_LABELS:
        return TWEET_EVAL_LABELS[value]
    if isinstance(value, str):
        word = value.strip().lower()
        if word in SENTIMENT_LABELS:
            return cast(SentimentLabel, word)
        if word.isdigit() and int(word) in TWEET_EVAL_LABELS:
            return TWEET_EVAL_LABELS[int(word)]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{path}:{line}: label: {'missing' if value is None else 'empty'}")
    raise DataError(
        f"{path}:{line}: label: unknown label {value!r}; use {', '.join(SENTIMENT_LABELS)} "
        "or tweet_eval's 0 (negative), 1 (neutral), 2 (positive)"
    )
