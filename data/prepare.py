"""``tunedesk data prepare``: raw support logs in; ``train/val/test.jsonl`` and a report out.

Steps, each counted in the report: read -> clean (and merge consecutive turns) -> correct typos in
customer turns (optional) -> redact PII -> drop (too few turns, no user or assistant turn, no letters,
too long) -> exact and near duplicates -> split (grouped by conversation, stratified by intent,
seeded) -> leakage check -> augment the training split (optional) -> write.

Decisions:
- The training files hold only ``{"messages": [...]}``, which Azure and the local LoRA job read
  unchanged. Each ``<split>.meta.jsonl`` holds, line for line, the id, intent, resolved flag and
  source ``file:line`` of the same example, for eval and for tracing a bad example back to its log.
- Outputs are built in a temporary sibling directory and swapped in whole; ``report.json`` records
  the config and the sha256 of every input next to the outputs.
- A conversation must end on an assistant turn to teach anything: trailing customer turns are cut.
- Augmented conversations go through the same clean/redact/drop steps as read ones (a model may
  invent an email address), but not typo correction (noise is typos on purpose), and are marked in
  the meta file with what made them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data.augment import AugmentConfig, Augmenter, Generate
from data.clean import clean_conversation
from data.pii import Redactor
from data.spelling import SpellingCorrector
from data.split import Signatures, find_leaks, remove_duplicates, split_conversations
from data.support_chat import Conversation, DataError, Format, Turn, read_conversations
from tunedesk.files import replacing_directory
from tunedesk.models import sha256_file


@dataclass
class PrepareConfig:
    """How ``tunedesk data prepare`` turns raw logs into fine-tuning files."""

    fmt: Format | None = None  # jsonl, csv, transcript, instructions; guessed when None
    speakers: Mapping[str, str] = field(default_factory=dict)  # extra speaker name -> role
    system_prompt: str | None = None  # prepended to every example that has none
    redact: bool = True
    correct_typos: bool = False  # SymSpell on customer turns
    min_turns: int = 2
    max_chars: int = 16_000  # ~4,000 tokens: longer conversations are dropped
    near_duplicate_threshold: float = 0.8
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


Progress = Callable[[Iterable[Any], str], Iterable[Any]]


def prepare(
    inputs: Sequence[Path],
    out: Path,
    config: PrepareConfig,
    generate: Generate | None = None,
    progress: Progress = lambda items, _: items,
) -> dict[str, Any]:
    """Write ``out/{train,val,test}.jsonl`` and the report; ``generate`` serves paraphrases and synthetic data."""
    counts: Counter[str] = Counter()
    steps = _Steps(config, counts)
    augmenter = Augmenter(config.augment, generate, counts) if config.augment.enabled else None
    conversations: list[Conversation] = []
    for path in inputs:
        for conversation in read_conversations(path, config.fmt, config.speakers):
            counts["read"] += 1
            processed = steps(conversation)
            if processed is not None:
                conversations.append(processed)
    if not conversations:
        raise DataError(f"no usable conversation in {', '.join(map(str, inputs))}: {dict(counts)}")
    signatures = Signatures()
    unique = remove_duplicates(conversations, config.near_duplicate_threshold, counts, signatures)
    split = split_conversations(unique, config.val, config.test, config.seed)
    leaks = find_leaks(split, config.near_duplicate_threshold, signatures)
    if leaks:  # a bug, not bad data: refuse to write a dishonest split
        raise DataError("the split leaks: " + "; ".join(leaks[:5]))
    if augmenter is not None:
        held_out = [*split.val, *split.test]
        made = augmenter.augment(split.train, held_out, config.near_duplicate_threshold, signatures, progress)
        split.train += [p for c in made if (p := steps(c)) is not None]
    report = {
        "config": {**asdict(config), "speakers": dict(config.speakers)},
        "inputs": {str(p): sha256_file(p) for p in inputs},
        "steps": dict(counts),
        "pii_redacted": dict(steps.redactor.counts),
        "stratified_by_intent": split.stratified,
        "splits": {
            name: {"conversations": len(part), "intents": dict(Counter(c.intent or "unknown" for c in part))}
            for name, part in split.parts().items()
        },
        "leakage_check": "passed",
    }
    _write_atomically(out, split.parts(), report)
    return report


class _Steps:
    """Clean, correct, redact and filter one conversation; None when it is dropped (and counted)."""

    def __init__(self, config: PrepareConfig, counts: Counter[str]) -> None:
        self.config = config
        self.counts = counts
        self.redactor = Redactor()
        self.speller = SpellingCorrector() if config.correct_typos else None

    def __call__(self, conversation: Conversation) -> Conversation | None:
        conversation = clean_conversation(conversation, self.counts)
        turns = conversation.turns
        if self.speller is not None and conversation.augmented is None:  # noise is typos on purpose
            before = self.speller.corrections
            fix = self.speller.correct
            turns = [Turn(role="user", content=fix(t.content)) if t.role == "user" else t for t in turns]
            self.counts["typos_corrected"] += self.speller.corrections - before
        if self.config.redact:
            turns = [Turn(role=t.role, content=self.redactor.redact(t.content)) for t in turns]
        conversation = _end_on_an_answer(conversation.model_copy(update={"turns": turns}))
        reason = _drop_reason(conversation, self.config)
        if reason:
            self.counts[f"dropped_{reason}"] += 1
            return None
        return _with_system_prompt(conversation, self.config.system_prompt)


def _end_on_an_answer(conversation: Conversation) -> Conversation:
    turns = list(conversation.turns)
    while turns and turns[-1].role != "assistant":
        turns.pop()
    return conversation.model_copy(update={"turns": turns})


def _drop_reason(conversation: Conversation, config: PrepareConfig) -> str | None:
    turns = conversation.turns
    roles = {t.role for t in turns}
    if len(turns) < config.min_turns:
        return "too_few_turns"
    if "user" not in roles or "assistant" not in roles:
        return "missing_role"
    if not any(ch.isalpha() for t in turns for ch in t.content):
        return "no_text"
    if sum(len(t.content) for t in turns) > config.max_chars:
        return "too_long"
    return None


def _with_system_prompt(conversation: Conversation, system_prompt: str | None) -> Conversation:
    if not system_prompt or (conversation.turns and conversation.turns[0].role == "system"):
        return conversation
    return conversation.model_copy(update={"turns": [Turn(role="system", content=system_prompt), *conversation.turns]})


def _write_atomically(out: Path, parts: Mapping[str, list[Conversation]], report: dict[str, Any]) -> None:
    with replacing_directory(out) as tmp:
        for name, conversations in parts.items():
            with (
                (tmp / f"{name}.jsonl").open("w", encoding="utf-8") as examples,
                (tmp / f"{name}.meta.jsonl").open("w", encoding="utf-8") as meta,
            ):
                for conversation in conversations:
                    examples.write(json.dumps(conversation.to_example(), ensure_ascii=False) + "\n")
                    meta.write(json.dumps(
                        {"id": conversation.id, "intent": conversation.intent,
                         "resolved": conversation.resolved, "source": conversation.source,
                         "augmented": conversation.augmented}
                    ) + "\n")  # fmt: skip
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
