"""Agents' corrections and ratings -> the next fine-tune's data: SFT JSONL and DPO pairs, with provenance.

Decisions:
- A correction (the answer an agent wrote in place of the bot's) is the strongest signal there is: it
  becomes an SFT example (context -> corrected answer) and a DPO pair (corrected preferred over the bot's
  answer). Answers that failed (errors, content filters) give SFT but no DPO pair: the "rejected" side
  would be our own error message, not something the model said.
- With ``approved_min``, answers every rater scored at least that on all three scales, and nobody
  thumbed down, become SFT examples too (the bot's own best answers, reinforced).
- The context is the conversation before the rated answer as the chat recorded it (``chat_answers`` of
  the same thread), with the system prompt the model is served with, so training matches serving.
- Everything is PII-scrubbed with the data stage's redactor, then deduplicated on the normalised
  (context, answer) text; the provenance of merged duplicates is kept together.
- The fine-tuning files hold only what Azure OpenAI and the local trainer accept; provenance (rating ids,
  raters, thread, message, backend, model, time) goes line-aligned into ``*.meta.jsonl``, as ``data
  prepare`` does.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.pii import Redactor
from data.schema import ChatExample
from tunedesk.files import replacing_directory

SCORES = ("naturalness", "correctness", "helpfulness")


@dataclass
class FeedbackSets:
    sft: list[dict[str, Any]] = field(default_factory=list)
    sft_meta: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    dpo_meta: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    redacted: dict[str, int] = field(default_factory=dict)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def context_of(rating: dict[str, Any], answers: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns before the rated answer in its thread (``answers``: the thread's, oldest first), then its prompt."""
    turns: list[dict[str, str]] = []
    for earlier in answers:
        if earlier["message_id"] == rating["message_id"]:
            break
        turns += [
            {"role": "user", "content": earlier["prompt"]},
            {"role": "assistant", "content": earlier["answer"]},
        ]
    return [*turns, {"role": "user", "content": rating["prompt"] or ""}]


def build(
    ratings: Iterable[dict[str, Any]],
    threads: dict[str, list[dict[str, Any]]],
    system_prompt: str | None,
    approved_min: int | None = None,
    failed: frozenset[str] = frozenset(),
) -> FeedbackSets:
    """SFT and DPO sets from current ``ratings`` (store rows); ``threads``: thread id -> its answers, oldest first;
    ``failed``: message ids whose answer was an error."""
    redactor = Redactor()
    out = FeedbackSets()
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rating in ratings:
        by_message[rating["message_id"]].append(rating)

    sft: dict[tuple[str, str], int] = {}
    dpo: dict[tuple[str, str, str], int] = {}

    def conversation(rating: dict[str, Any]) -> list[dict[str, str]]:
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        turns = context_of(rating, threads.get(rating.get("thread_id") or "", []))
        return [*system, *({"role": t["role"], "content": redactor.redact(t["content"])} for t in turns)]

    def provenance(rows: list[dict[str, Any]], why: str) -> dict[str, Any]:
        first = rows[0]
        return {
            "why": why,
            "rating_ids": [r["id"] for r in rows],
            "raters": sorted({r["rater"] for r in rows}),
            "message_id": first["message_id"],
            "thread_id": first.get("thread_id"),
            "backend": first.get("backend"),
            "model": first.get("model"),
            "rated_at": max(str(r["created_at"]) for r in rows),
        }

    def add_sft(rating_rows: list[dict[str, Any]], context: list[dict[str, str]], target: str, why: str) -> None:
        key = (_norm(json.dumps(context)), _norm(target))
        if key in sft:
            merged = out.sft_meta[sft[key]]
            merged["rating_ids"] += [r["id"] for r in rating_rows]
            merged["raters"] = sorted({*merged["raters"], *(r["rater"] for r in rating_rows)})
            out.counts["sft_duplicates"] += 1
            return
        example = {"messages": [*context, {"role": "assistant", "content": target}]}
        ChatExample.model_validate(example)
        sft[key] = len(out.sft)
        out.sft.append(example)
        out.sft_meta.append(provenance(rating_rows, why))

    for message_id, rows in by_message.items():
        scored = [r for r in rows if r["kind"] == "scores"]
        prompt_known = rows[0].get("prompt") and rows[0].get("answer") is not None
        if not prompt_known:
            out.counts["skipped_without_prompt"] += 1
            continue
        for rating in scored:
            if not rating.get("correction"):
                continue
            out.counts["corrections"] += 1
            context = conversation(rating)
            corrected = redactor.redact(rating["correction"])
            rejected = redactor.redact(rating["answer"] or "")
            add_sft([rating], context, corrected, "correction")
            if message_id in failed or not rejected.strip() or _norm(rejected) == _norm(corrected):
                out.counts["dpo_skipped"] += 1
                continue
            key = (_norm(json.dumps(context)), _norm(corrected), _norm(rejected))
            if key in dpo:
                out.counts["dpo_duplicates"] += 1
                continue
            dpo[key] = len(out.dpo)
            out.dpo.append(
                {
                    "input": {"messages": context},
                    "preferred_output": [{"role": "assistant", "content": corrected}],
                    "non_preferred_output": [{"role": "assistant", "content": rejected}],
                }
            )
            out.dpo_meta.append(provenance([rating], "correction"))
        if approved_min is not None and scored and message_id not in failed:
            approved = all(all((r.get(s) or 0) >= approved_min for s in SCORES) for r in scored)
            thumbed_down = any(r["kind"] == "thumbs" and r["thumbs"] == 0 for r in rows)
            if approved and not thumbed_down:
                out.counts["approved"] += 1
                add_sft(scored, conversation(scored[0]), redactor.redact(scored[0]["answer"]), "approved")
    out.redacted = dict(redactor.counts)
    return out


def write(sets: FeedbackSets, out: Path) -> dict[str, Any]:
    """Write ``sft.jsonl``, ``dpo.jsonl``, their ``.meta.jsonl`` and ``summary.json`` into ``out``, all or nothing."""
    summary = {
        "sft_examples": len(sets.sft),
        "dpo_pairs": len(sets.dpo),
        "counts": dict(sets.counts),
        "pii_redacted": sets.redacted,
    }
    with replacing_directory(out) as tmp:
        for name, rows in (
            ("sft.jsonl", sets.sft),
            ("sft.meta.jsonl", sets.sft_meta),
            ("dpo.jsonl", sets.dpo),
            ("dpo.meta.jsonl", sets.dpo_meta),
        ):
            (tmp / name).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return summary
