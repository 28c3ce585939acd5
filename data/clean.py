"""Cleaning steps for conversation text: each small, each counted.

Decisions:
- Unicode NFC, HTML entities unescaped and tags removed, control characters dropped (newlines and
  tabs kept), runs of spaces collapsed, at most one blank line in a row.
- Signatures and boilerplate go line by line ("Sent from my iPhone", the ``-- `` signature
  delimiter and everything under it, legal footers). The patterns are a list the caller can
  replace; they are matched per line, case-insensitively.
- Consecutive turns of the same speaker are merged into one, joined by a newline, so examples
  alternate user/assistant as fine-tuning expects.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from data.support_chat import Conversation, Turn

BOILERPLATE_LINES: tuple[str, ...] = (
    r"sent from my (iphone|ipad|android|samsung|mobile|phone)\b.*",
    r"get outlook for (ios|android)\b.*",
    r"this (e-?mail|message) (and any attachments )?(is|are|may be) confidential\b.*",
    r"please consider the environment before printing.*",
    r"(this chat|the conversation) (has been|was) (transferred|ended)\b.*",
)
SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")


def clean_text(text: str, boilerplate: Iterable[str] = BOILERPLATE_LINES) -> str:
    """One message's text, normalised; may return "" when nothing real was in it."""
    text = unicodedata.normalize("NFC", text)
    text = _TAG.sub(" ", html.unescape(html.unescape(text)))
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    patterns = [re.compile(p, re.IGNORECASE) for p in boilerplate]
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if SIGNATURE_DELIMITER.match(line):
            break  # everything under "-- " is a signature
        line = _SPACES.sub(" ", line).strip()
        if any(p.fullmatch(line) for p in patterns):
            continue
        kept.append(line)
    return _BLANKS.sub("\n\n", "\n".join(kept)).strip()


def clean_conversation(conversation: Conversation, counts: Counter[str]) -> Conversation:
    """Clean every turn, drop turns left empty, merge consecutive turns of one speaker."""
    turns: list[Turn] = []
    for turn in conversation.turns:
        text = clean_text(turn.content)
        if text != turn.content:
            counts["turns_cleaned"] += 1
        if not text:
            counts["empty_turns_dropped"] += 1
            continue
        if turns and turns[-1].role == turn.role:
            turns[-1] = Turn(role=turn.role, content=f"{turns[-1].content}\n{text}")
            counts["turns_merged"] += 1
            continue
        turns.append(Turn(role=turn.role, content=text))
    return conversation.model_copy(update={"turns": turns})
