"""Augmentation of the training split: noisy copies, paraphrases and synthetic conversations.

Decisions:
- Only the training split is augmented, after the split, so validation and test stay real customer
  text. Every new conversation is checked against validation and test with the same near-duplicate
  index as the leakage check and dropped when it comes too close.
- Noise imitates how customers type: dropped, doubled, swapped and neighbouring-key letters, chat
  slang ("u", "pls", "thx", "gonna") and all lower case. It touches customer turns only and never a
  placeholder, number, URL or email, so an answer that quotes "[ORDER_ID]" or "$39.99" stays right.
- Paraphrases and synthetic conversations come from any chat backend through ``Generate``, a plain
  ``messages -> text`` function, so this module needs no model (the CLI wires a backend in). Model
  output is checked before it is kept: a paraphrase must keep every placeholder and number, differ
  from the original (and not merely contain it) and stay within half to twice its length; a
  synthetic conversation must parse into alternating Customer/Agent turns. Rejections are counted
  in the report, never silently kept.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.split import NearDuplicateIndex, Signatures
from data.support_chat import Conversation, DataError, Turn
from tunedesk.errors import printable
from tunedesk.files import load_yaml

Generate = Callable[[list[dict[str, str]]], str]

SLANG: dict[str, str] = {
    "you": "u", "your": "ur", "you're": "ur", "please": "pls", "thanks": "thx", "thank you": "ty",
    "because": "cuz", "going to": "gonna", "want to": "wanna", "tomorrow": "tmrw", "okay": "ok",
    "though": "tho", "don't": "dont", "can't": "cant", "i'm": "im", "really": "rly", "are": "r",
}  # fmt: skip
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {ch: row[max(0, i - 1) : i] + row[i + 1 : i + 2] for row in KEYBOARD_ROWS for i, ch in enumerate(row)}
_PROTECTED = re.compile(r"\[[A-Z_]+\]|https?://\S+|www\.\S+|\S+@\S+|\S*\d\S*")
_WORD = re.compile(r"[A-Za-z]{3,}")
_SLANG = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SLANG), key=len, reverse=True)) + r")\b", re.IGNORECASE)
_PLACEHOLDER_OR_NUMBER = re.compile(r"\[[A-Z_]+\]|\d+(?:[.,]\d+)*")

PARAPHRASE_PROMPT = (
    "Rewrite the customer's message below in different words, as the same customer would write it. Keep the "
    "meaning, the tone, every number and every placeholder in square brackets exactly as they are. Reply with "
    "the rewritten message only."
)
SYNTHETIC_PROMPT = (
    "You write realistic customer-support chats for an online store, for training a support assistant. "
    "The agent follows this store policy exactly:\n\n{policy}\n\n"
    "Write one conversation of 2 to 6 turns. Every line starts with 'Customer:' or 'Agent:'. The customer "
    "writes like a real person (casual, sometimes typos); the agent is polite, concrete and never invents "
    "order numbers, links or prices. Write nothing else."
)


@dataclass
class AugmentConfig:
    noise_copies: int = 0  # noisy copies of each training conversation
    noise_rate: float = 0.08  # chance that a word gets a typo
    paraphrase_copies: int = 0  # paraphrased copies of each training conversation (needs a backend)
    synthetic_per_intent: int = 0  # new conversations per intent (needs a backend, intents and policy)
    intents: Path | None = None  # YAML: {intent: {description: ..., examples: [...]}}
    policy: Path | None = None  # the store policy the agent follows (Markdown)
    seed: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.noise_copies or self.paraphrase_copies or self.synthetic_per_intent)

    @property
    def needs_backend(self) -> bool:
        return bool(self.paraphrase_copies or self.synthetic_per_intent)


def add_noise(text: str, rng: random.Random, rate: float) -> str:
    """``text`` as a hurried customer might have typed it; placeholders and numbers untouched."""
    lower = rng.random() < 0.3
    pieces: list[str] = []
    last = 0
    for protected in _PROTECTED.finditer(text):
        pieces.append(_noisy(text[last : protected.start()], rng, rate, lower))
        pieces.append(protected.group())
        last = protected.end()
    pieces.append(_noisy(text[last:], rng, rate, lower))
    return "".join(pieces)


def _noisy(chunk: str, rng: random.Random, rate: float, lower: bool) -> str:
    chunk = _SLANG.sub(lambda m: SLANG[m.group().lower()] if rng.random() < 0.5 else m.group(), chunk)
    chunk = _WORD.sub(lambda m: _typo(m.group(), rng) if rng.random() < rate else m.group(), chunk)
    return chunk.lower() if lower else chunk


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)  # the first and last letters survive, as in real typos
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    near = _NEIGHBOURS.get(word[i].lower())
    return word[:i] + rng.choice(near) + word[i + 1 :] if near else word


def check_paraphrase(original: str, paraphrase: str) -> str | None:
    """Why a model's paraphrase can't be used, or None when it can."""
    if not paraphrase:
        return "empty"
    if paraphrase.casefold() == original.casefold():
        return "unchanged"
    if len(original.split()) > 3 and original.casefold() in paraphrase.casefold():
        return "copied"  # the original with words around it, as an echo or a chatty model gives
    if Counter(_PLACEHOLDER_OR_NUMBER.findall(original)) != Counter(_PLACEHOLDER_OR_NUMBER.findall(paraphrase)):
        return "changed_placeholders_or_numbers"
    if not 0.5 <= len(paraphrase) / max(1, len(original)) <= 2.0:
        return "length"
    return None


def clean_model_text(text: str) -> str:
    """A model's reply without a leading "Sure, here is..." line or wrapping quotes."""
    lines = text.strip().splitlines()
    if len(lines) > 1 and re.match(r"^(sure|here('s| is)|rewritten|paraphrase)\b.*:\s*$", lines[0], re.IGNORECASE):
        lines = lines[1:]
    return "\n".join(lines).strip().strip('"“”').strip()


def parse_generated(text: str, conversation_id: str, intent: str) -> Conversation:
    """A generated ``Customer: ... / Agent: ...`` conversation; DataError when it is not one."""
    roles = {"customer": "user", "user": "user", "agent": "assistant", "assistant": "assistant", "support": "assistant"}
    turns: list[Turn] = []
    for line in text.strip().splitlines():
        speaker, colon, rest = line.strip().strip("*").partition(":")
        role = roles.get(speaker.strip("* ").lower()) if colon else None
        if role is not None:
            if turns and turns[-1].role == role:
                raise DataError(f"{conversation_id}: two {speaker.strip('* ')} turns in a row")
            turns.append(Turn(role=role, content=rest.strip("* ").strip()))
        elif line.strip() and turns:
            turns[-1].content = f"{turns[-1].content}\n{line.strip()}".strip()
        elif line.strip():
            raise DataError(f"{conversation_id}: the text does not start with 'Customer:'")
    while turns and turns[-1].role != "assistant":
        turns.pop()
    if len(turns) < 2 or turns[0].role != "user" or any(not t.content for t in turns):
        raise DataError(f"{conversation_id}: not a Customer/Agent conversation of 2+ turns")
    return Conversation(id=conversation_id, turns=turns, intent=intent, source="synthetic", augmented="synthetic")


def load_intents(path: Path) -> dict[str, dict[str, Any]]:
    loaded = load_yaml(path, DataError)
    if not isinstance(loaded, dict) or not loaded:
        raise DataError(f"{path}: the intent list must map intent names to descriptions")
    intents: dict[str, dict[str, Any]] = {}
    for name, spec in loaded.items():
        spec = {"description": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("description"), str):
            raise DataError(f"{path}: {printable(str(name))}: description: a text describing the intent is required")
        intents[str(name)] = spec
    return intents


class Augmenter:
    """New training conversations from the training split; ``counts`` records what was made and refused."""

    def __init__(self, config: AugmentConfig, generate: Generate | None, counts: Counter[str]) -> None:
        if config.needs_backend and generate is None:
            raise DataError("paraphrases and synthetic conversations need a backend (--augment-backend)")
        if config.synthetic_per_intent and (config.intents is None or config.policy is None):
            raise DataError("synthetic conversations need --intents and --policy")
        self.config = config
        self.generate = generate
        self.counts = counts
        self.rng = random.Random(config.seed)

    def augment(
        self,
        train: Sequence[Conversation],
        held_out: Iterable[Conversation],
        threshold: float,
        signatures: Signatures,
        progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda items, _: items,
    ) -> list[Conversation]:
        index = NearDuplicateIndex(threshold)
        for position, conversation in enumerate(held_out):
            index.add(str(position), signatures(conversation))
        made: list[Conversation] = []
        for copy in range(self.config.noise_copies):
            made += [self._noisy_copy(c, copy) for c in train]
        for copy in range(self.config.paraphrase_copies):
            made += [p for c in progress(train, f"paraphrasing, copy {copy + 1}") if (p := self._paraphrase(c, copy))]
        if self.config.synthetic_per_intent:
            assert self.config.intents is not None and self.config.policy is not None
            made += self._synthesize(load_intents(self.config.intents), self.config.policy, progress)
        kept: list[Conversation] = []
        for conversation in made:
            if index.matches(signatures(conversation)):
                self.counts["augmented_dropped_near_held_out"] += 1
                continue
            kept.append(conversation)
        return kept

    def _noisy_copy(self, conversation: Conversation, copy: int) -> Conversation:
        self.counts["augmented_noise"] += 1
        rate = self.config.noise_rate
        turns = [
            Turn(role="user", content=add_noise(t.content, self.rng, rate)) if t.role == "user" else t
            for t in conversation.turns
        ]
        return _derived(conversation, turns, "noise", copy)

    def _paraphrase(self, conversation: Conversation, copy: int) -> Conversation | None:
        assert self.generate is not None
        turns: list[Turn] = []
        for turn in conversation.turns:
            if turn.role != "user":
                turns.append(turn)
                continue
            reply = self._ask(PARAPHRASE_PROMPT, turn.content)
            problem = check_paraphrase(turn.content, reply)
            if problem:
                self.counts[f"paraphrase_rejected_{problem}"] += 1
                return None
            turns.append(Turn(role="user", content=reply))
        self.counts["augmented_paraphrase"] += 1
        return _derived(conversation, turns, "paraphrase", copy)

    def _ask(self, system: str, user: str) -> str:
        assert self.generate is not None
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return clean_model_text(self.generate(messages))

    def _synthesize(
        self, intents: dict[str, dict[str, Any]], policy: Path, progress: Callable[[Iterable[Any], str], Iterable[Any]]
    ) -> list[Conversation]:
        assert self.generate is not None
        system = SYNTHETIC_PROMPT.format(policy=policy.read_text(encoding="utf-8").strip())
        made: list[Conversation] = []
        jobs = [(name, n) for name in intents for n in range(self.config.synthetic_per_intent)]
        for name, n in progress(jobs, "synthesizing"):
            spec = intents[name]
            examples = "; ".join(f'"{e}"' for e in spec.get("examples", [])[:3])
            ask = f"Intent: {name}. {spec['description']}"
            if examples:
                ask += f" Customers say things like {examples}."
            try:
                conversation = parse_generated(self._ask(system, ask), f"synthetic-{name}-{n + 1}", name)
            except DataError:
                self.counts["synthetic_rejected_unparseable"] += 1
                continue
            self.counts["augmented_synthetic"] += 1
            made.append(conversation)
        return made


def _derived(conversation: Conversation, turns: list[Turn], kind: str, copy: int) -> Conversation:
    new_id = f"{conversation.id}~{kind}{copy + 1}"
    return conversation.model_copy(update={"id": new_id, "turns": turns, "augmented": kind})
