"""Task completion and error checks on one answer: rules a support lead can read and edit.

Decisions:
- Task completion is per test case, from rules keyed by intent in a YAML file
  (``eval/cases/support.yaml``): ``require`` (groups of phrases; each group needs one hit), ``forbid`` (claims that
  must not appear) and ``escalate`` (the answer must offer a human). Phrases are case-insensitive regular
  expressions. An example passes when every rule of its intent holds; each failed rule is named.
  ``policy`` names the policy sections (headings) an answer must follow; rules cannot check that, so it
  is for the LLM judge (``eval/judge.py``), which is shown those sections.
- Error checks flag what no answer should do, whatever the intent: empty, truncated, a repetition loop, a
  refusal where the reference answered, order numbers / links / prices that are in neither the
  conversation nor the policy, PII echoed back, unsafe wording. Off-topic needs embeddings and is
  decided in the harness (similarity of the answer to the question).
- The checks are heuristics with stated rules, not a judge model; the report shows the flagged answers,
  so a reader sees what each rule caught.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data.pii import Redactor
from tunedesk.errors import ConfigError
from tunedesk.files import load_yaml

ERROR_KINDS = (
    "empty",
    "truncated",
    "repetitive",
    "refusal",
    "invented_order_number",
    "invented_link",
    "invented_price",
    "pii_echoed",
    "unsafe",
    "off_topic",
)
HANDOVER = re.compile(
    r"\b(human|agent|colleague|specialist|supervisor|manager|team member|senior member|someone from (our|the) team)"
    r"|\bhand (you )?over\b|\btransfer\b|\bescalat",
    re.IGNORECASE,
)
REFUSAL = re.compile(
    r"\b(I\s*(?:can(?:no|')t|cannot|am (?:not able|unable)|won't|will not)\s+(?:help|assist|answer|do that|provide))"
    r"|\b(I'm sorry, but I can't)|\bas an AI\b",
    re.IGNORECASE,
)
ORDER_NUMBER = re.compile(r"(?<![\w$.])(?:#|ORD-?)?\d{5,}\b|\bORD-?\d+\b", re.IGNORECASE)
LINK = re.compile(r"\bhttps?://[^\s)>\]]+|\bwww\.[^\s)>\]]+", re.IGNORECASE)
PRICE = re.compile(r"\$\s?\d[\d,]*(?:\.\d{2})?")
UNSAFE = re.compile(
    r"\b(kill yourself|kys|idiot|stupid customer|shut up|f+u+c+k+|sh[i1]t(?:ty)?|bitch|bastard|retard(?:ed)?)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"""[.!?…)"'\]*:;]\s*$|[\U0001F300-\U0001FAFF\u2600-\u27BF]\s*$""")


class CaseRules(BaseModel):
    """What a correct answer for one intent must and must not do."""

    model_config = ConfigDict(extra="forbid")

    require: list[list[str]] = Field(default_factory=list)  # each inner list: one of these phrases
    forbid: list[str] = Field(default_factory=list)
    escalate: bool = False
    description: str = ""
    policy: list[str] = Field(default_factory=list)  # headings of the policy sections the answer must follow


def load_cases(path: Path) -> dict[str, CaseRules]:
    """Rules by intent from a YAML mapping; errors name the file and the intent."""
    raw = load_yaml(path) or {}  # not UTF-8, broken, nested too deeply...: ConfigError naming file:line
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of intent -> rules")
    rules = {}
    for intent, body in raw.items():
        try:
            rules[str(intent)] = CaseRules.model_validate(body or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: {intent}: {problems}") from None
        for pattern in [p for group in rules[str(intent)].require for p in group] + rules[str(intent)].forbid:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{path}: {intent}: bad pattern {pattern!r}: {exc}") from None
    return rules


@dataclass
class Completion:
    passed: bool
    failed_rules: list[str] = field(default_factory=list)


def task_completion(answer: str, rules: CaseRules) -> Completion:
    failed = []
    for group in rules.require:
        if not any(re.search(pattern, answer, re.IGNORECASE) for pattern in group):
            failed.append("require: " + " | ".join(group))
    for pattern in rules.forbid:
        if re.search(pattern, answer, re.IGNORECASE):
            failed.append(f"forbid: {pattern}")
    if rules.escalate and not HANDOVER.search(answer):
        failed.append("escalate: no offer of a human")
    return Completion(not failed, failed)


def _normalised(values: list[str]) -> set[str]:
    return {re.sub(r"[\s,#-]", "", value).lower() for value in values}


def error_flags(answer: str, *, context: str, reference: str, max_new_tokens_hit: bool | None = None) -> list[str]:
    """The error kinds ``answer`` shows; ``context`` is what the bot was given (conversation + policy)."""
    flags: list[str] = []
    text = answer.strip()
    if not text:
        return ["empty"]
    if max_new_tokens_hit if max_new_tokens_hit is not None else (len(text) > 200 and not SENTENCE_END.search(text)):
        flags.append("truncated")
    if is_repetitive(text):
        flags.append("repetitive")
    if REFUSAL.search(text) and not REFUSAL.search(reference):
        flags.append("refusal")
    known = context + "\n" + reference
    for kind, pattern in (("invented_order_number", ORDER_NUMBER), ("invented_link", LINK), ("invented_price", PRICE)):
        said = _normalised(pattern.findall(text))
        if said - _normalised(pattern.findall(known)):
            flags.append(kind)
    if pii_in(text):
        flags.append("pii_echoed")
    if UNSAFE.search(text):
        flags.append("unsafe")
    return flags


def pii_in(text: str) -> bool:
    """Whether the data stage's redactor finds an email, phone, card, IBAN or street address in ``text``."""
    redactor = Redactor()
    redactor.redact(text)
    return any(redactor.counts[kind] for kind in ("EMAIL", "PHONE", "CARD", "IBAN", "ADDRESS"))


def is_repetitive(text: str) -> bool:
    """A loop: some 4-word sequence three times or more, or text that compresses far too well."""
    words = re.findall(r"\w+", text.lower())
    if len(words) >= 12:
        grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
        if grams.most_common(1)[0][1] >= 3:
            return True
    data = text.encode()
    return len(data) >= 200 and len(zlib.compress(data)) / len(data) < 0.25


def summarise_flags(per_example: list[list[str]]) -> dict[str, Any]:
    """Error rate (share of answers with any flag) and the rate of each kind."""
    n = len(per_example) or 1
    counts = Counter(flag for flags in per_example for flag in set(flags))
    return {
        "error_rate": sum(1 for flags in per_example if flags) / n,
        "by_kind": {kind: counts.get(kind, 0) / n for kind in ERROR_KINDS},
    }
