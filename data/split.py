"""Duplicates out, then an honest train/validation/test split, then a check that nothing leaked.

Decisions:
- Exact duplicates: the same turns after lower-casing and collapsing whitespace.
- Near duplicates: MinHash over word 5-gram shingles (datasketch, 128 permutations). The LSH banding
  is weighted against misses (a missed pair is a leak; a false candidate costs one comparison), and
  each candidate is confirmed by its estimated Jaccard similarity (0.8 by default). Of each
  near-duplicate pair the later conversation goes.
- The split is grouped by conversation id (records that share an id never straddle splits) and
  stratified by intent (scikit-learn, seeded). When some intent has too few conversations to be
  stratified, the split falls back to unstratified and says so in the report.
- The leakage check runs after the split, on what is written: no conversation id, no exact text and no
  near-duplicate pair may cross two splits.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from data.support_chat import Conversation

SHINGLE = 5
NUM_PERM = 128


_WHITESPACE = re.compile(r"\s+")


def text_key(conversation: Conversation) -> str:
    """The conversation's text, lower-cased with whitespace collapsed: equal keys are exact duplicates."""
    return "\n".join(t.role + ":" + _WHITESPACE.sub(" ", t.content.lower()).strip() for t in conversation.turns)


def _minhash(conversation: Conversation):  # type: ignore[no-untyped-def]
    from datasketch import MinHash

    words = re.findall(r"\w+", " ".join(t.content.lower() for t in conversation.turns))
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    signature = MinHash(num_perm=NUM_PERM, seed=1)
    signature.update_batch([shingle.encode() for shingle in shingles])  # vectorised: ~10x update()
    return signature


class Signatures:
    """MinHash signatures by conversation, computed once: deduplication and the leakage check share them."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Conversation, object]] = {}

    def __call__(self, conversation: Conversation):  # type: ignore[no-untyped-def]
        hit = self._by_id.get(id(conversation))
        if hit is None or hit[0] is not conversation:
            hit = (conversation, _minhash(conversation))
            self._by_id[id(conversation)] = hit
        return hit[1]


def remove_duplicates(
    conversations: Sequence[Conversation],
    threshold: float,
    counts: Counter[str],
    signatures: Signatures | None = None,
) -> list[Conversation]:
    """Drop exact duplicates, then near duplicates (Jaccard >= ``threshold``), keeping the first."""
    seen: set[str] = set()
    unique: list[Conversation] = []
    for conversation in conversations:
        key = text_key(conversation)
        if key in seen:
            counts["exact_duplicates"] += 1
            continue
        seen.add(key)
        unique.append(conversation)
    signature_of = signatures or Signatures()
    index = NearDuplicateIndex(threshold)
    kept: list[Conversation] = []
    for position, conversation in enumerate(unique):
        signature = signature_of(conversation)
        if index.matches(signature):
            counts["near_duplicates"] += 1
            continue
        index.add(str(position), signature)
        kept.append(conversation)
    return kept


class NearDuplicateIndex:
    """MinHash LSH tuned for recall, with every candidate confirmed by its Jaccard estimate."""

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=(0.05, 0.95))
        self._signatures: dict[str, object] = {}

    def matches(self, signature) -> list[str]:  # type: ignore[no-untyped-def]
        return [
            key for key in self._lsh.query(signature)
            if signature.jaccard(self._signatures[key]) >= self.threshold
        ]  # fmt: skip

    def add(self, key: str, signature) -> None:  # type: ignore[no-untyped-def]
        self._lsh.insert(key, signature)
        self._signatures[key] = signature


@dataclass
class Split:
    train: list[Conversation]
    val: list[Conversation]
    test: list[Conversation]
    stratified: bool

    def parts(self) -> dict[str, list[Conversation]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_conversations(conversations: Sequence[Conversation], val: float, test: float, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    groups: dict[str, list[Conversation]] = {}
    for conversation in conversations:
        groups.setdefault(conversation.id, []).append(conversation)
    ids = list(groups)
    intents = [groups[i][0].intent or "unknown" for i in ids]
    held_out = val + test
    if not ids or held_out <= 0:
        return Split(list(conversations), [], [], stratified=False)

    def cut(items: list[str], labels: list[str], fraction: float) -> tuple[list[str], list[str], bool]:
        smallest = min(Counter(labels).values())
        stratify = labels if smallest >= 2 and round(len(items) * fraction) >= len(set(labels)) else None
        kept, taken = train_test_split(items, test_size=fraction, random_state=seed, stratify=stratify)
        return list(kept), list(taken), stratify is not None

    train_ids, rest_ids, stratified = cut(ids, intents, held_out)
    val_ids, test_ids = rest_ids, list[str]()
    if test > 0 and val > 0 and len(rest_ids) >= 2:
        rest_labels = [groups[i][0].intent or "unknown" for i in rest_ids]
        val_ids, test_ids, rest_stratified = cut(rest_ids, rest_labels, test / held_out)
        stratified = stratified and rest_stratified
    elif test > 0 and val == 0:
        val_ids, test_ids = [], rest_ids

    def gather(selected: list[str]) -> list[Conversation]:
        chosen = set(selected)
        return [c for c in conversations if c.id in chosen]

    return Split(gather(train_ids), gather(val_ids), gather(test_ids), stratified)


def find_leaks(split: Split, threshold: float, signatures: Signatures | None = None) -> list[str]:
    """Every way a conversation of one split shows up in another; empty when the split is honest."""
    leaks: list[str] = []
    parts = split.parts()
    owner: dict[str, str] = {}
    texts: dict[str, str] = {}
    signature_of = signatures or Signatures()
    index = NearDuplicateIndex(threshold)
    for name, conversations in parts.items():
        for position, conversation in enumerate(conversations):
            if owner.get(conversation.id, name) != name:
                leaks.append(f"conversation {conversation.id} is in {owner[conversation.id]} and {name}")
            owner.setdefault(conversation.id, name)
            key = text_key(conversation)
            if texts.get(key, name) != name:
                leaks.append(f"conversation {conversation.id} in {name} repeats one in {texts[key]}")
            texts.setdefault(key, name)
            signature = signature_of(conversation)
            for other in index.matches(signature):
                other_split = other.split(":", 1)[0]
                if other_split != name:
                    leaks.append(f"conversation {conversation.id} in {name} is a near duplicate of {other}")
            index.add(f"{name}:{position}:{conversation.id}", signature)
    return leaks
