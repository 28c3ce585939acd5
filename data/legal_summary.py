"""Legal documents with reference summaries: a reader, and a splitter for map-reduce summarisation.

Shapes (guessed from the suffix, else from the first character):
- ``jsonl``: one object per line with ``SummaryExample``'s fields (``id``, ``document``, ``summary``,
  optional ``title``; a ``source`` key is allowed and replaced by ``file:line``);
- ``csv``: columns ``id``, ``document``, ``summary`` and optionally ``title``; quoted fields may span lines.

Decisions:
- Records are read by ``data.records`` (strict: an unknown field is an error; every error names
  ``file:line: field``, a wrong encoding included).
- ``split_sections`` cuts only at the start of a line that looks like a heading (``Section 3.``,
  ``ARTICLE IV``, ``3.2 Termination``, ``WHEREAS``, ``I. BACKGROUND``, an all-caps line...). It is
  lossless (``"".join(sections) == document``) and headings alone on their lines stay with the text
  that follows them, so each section can be summarised on its own and nothing is dropped. Numbered
  clauses make sections small; ``max_chars`` packs them into chunks that fit a model's context.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from data.records import RecordFormat, read_records, text_field
from data.schema import SummaryExample
from data.support_chat import DataError

SUMMARY_FIELDS: tuple[str, ...] = ("id", "title", "document", "summary")
MAX_HEADING_CHARS = 80  # longer lines are text, never a heading or title

_HEADING = re.compile(
    r"""^[ \t]*(?:
        (?:SECTION|Section|Sec\.|§)[ \t]*\d+(?:\.\d+)*\b             # Section 3. / § 4.2
      | (?:ARTICLE|Article)[ \t]+(?:[IVXLCDM]+|\d+)\b                # ARTICLE IV / Article 7
      | \d{1,3}\.(?:\d{1,3}\.?)*[ \t]+\S                             # 3. Definitions / 3.2 Termination
      | [IVXLCDM]+\.[ \t]+[A-Z][A-Z ,'&-]*$                          # I. BACKGROUND
      | WHEREAS\b | NOW,?[ \t]+THEREFORE\b | IN[ \t]+WITNESS[ \t]+WHEREOF\b
      | (?:SCHEDULE|EXHIBIT|APPENDIX|ANNEX|Schedule|Exhibit|Appendix|Annex)[ \t]+[A-Z0-9]+\b
      | (?=[A-Z0-9 ,.&'()-]{4,70}$)[^a-z\n]*[A-Z]{3}[^a-z\n]*$      # an all-caps line: RECITALS
    )""",
    re.VERBOSE | re.MULTILINE,
)


def read_documents(path: Path, fmt: RecordFormat | None = None) -> Iterator[SummaryExample]:
    """Summary examples from ``path`` in file order; ``source`` is ``file:line``."""
    seen: dict[str, int] = {}
    records = read_records(path, SUMMARY_FIELDS, fmt, required=("id", "document", "summary"), allowed_extra=("source",))
    for line, record in records:
        example_id = text_field(path, line, record, "id")
        if example_id in seen:
            raise DataError(f"{path}:{line}: id: {example_id!r} already used on line {seen[example_id]}")
        seen[example_id] = line
        yield SummaryExample(
            id=example_id,
            title=text_field(path, line, record, "title", required=False) or None,
            document=text_field(path, line, record, "document", strip=False),
            summary=text_field(path, line, record, "summary"),
            source=f"{path}:{line}",
        )


def split_sections(document: str, max_chars: int | None = None) -> list[str]:
    """``document`` cut at its headings; every piece starts with its heading and they rejoin to it.

    With ``max_chars``, consecutive sections are packed into chunks of at most that many characters
    (a section longer than that is cut at a blank line, a line break, a sentence end or a space, in
    that order of preference): the units a map-reduce summariser sends to the model one at a time.
    """
    starts = [match.start() for match in _HEADING.finditer(document)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    sections: list[str] = []
    carry = ""  # a blank preamble, a title or headings alone on their lines wait for the text after them
    for a, b in zip(starts, [*starts[1:], len(document)], strict=True):
        piece = carry + document[a:b]
        if _is_heading_only(piece):
            carry = piece
            continue
        sections.append(piece)
        carry = ""
    if carry:
        if sections:
            sections[-1] += carry
        else:
            sections.append(carry)
    return sections if max_chars is None else _pack(sections, max_chars)


def _is_heading_only(piece: str) -> bool:
    """Whether ``piece`` is only headings, titles or label lines ("ARTICLE IV\nDEFINITIONS", a caption),
    which belong with the text after them rather than in a section of their own."""
    return all(_looks_like_heading(line.strip()) for line in piece.splitlines() if line.strip())


def _looks_like_heading(line: str) -> bool:
    # Short, and either not ending like a sentence or too few words to be one ("Section 3.", "v.").
    return len(line) <= MAX_HEADING_CHARS and (line[-1] not in ".;:!?" or len(line.split()) <= 4)


def _pack(sections: list[str], max_chars: int) -> list[str]:
    assert max_chars > 0, f"max_chars must be positive, got {max_chars}"
    chunks: list[str] = []
    for section in sections:
        for piece in _cut(section, max_chars):
            if chunks and len(chunks[-1]) + len(piece) <= max_chars:
                chunks[-1] += piece
            else:
                chunks.append(piece)
    return chunks


def _cut(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = limit
        for separator in ("\n\n", "\n", ". ", " "):
            index = window.rfind(separator)
            if index > 0:
                cut = index + len(separator)
                break
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text else pieces
