"""Scoring throughput: tunedesk's BLEU/chrF/ROUGE against the same metrics computed pair by pair.

The baseline is how most evaluation scripts score a set: one call per example through the libraries'
per-example entry points (what ``evaluate.load(...).compute(predictions=[p], references=[r])`` does for
each example), that is ``sacrebleu.sentence_bleu``, ``sacrebleu.sentence_chrf`` and a ``RougeScorer`` built for
the call, then corpus BLEU and chrF over the whole set. Ours is ``eval.metrics.score_text``. Both run in
this process on the same pairs; the scores must be identical (checked before timing is reported).

Pairs: agent replies from the support sample, each scored against another reply of the same intent
(realistic length and vocabulary), repeated to ``--pairs``.

    python bench/eval_scoring.py --pairs 10000

The last line is JSON with the figures and ``"ours_vs_evaluate"``, the speed ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METRICS = ("bleu", "chrf", "rouge")


def pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (ROOT / "data/samples/support/raw.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["speaker"].lower() in ("agent", "assistant"):
                by_intent[row.get("intent") or ""].append(row["text"])
    rng = random.Random(seed)
    intents = sorted(by_intent)
    predictions, references = [], []
    for _ in range(n):
        replies = by_intent[rng.choice(intents)]
        predictions.append(rng.choice(replies))
        references.append(rng.choice(replies))
    return predictions, references


def baseline(predictions: list[str], references: list[str]) -> dict[str, list[float] | float]:
    import sacrebleu
    from rouge_score import rouge_scorer

    bleu, chrf, r1, r2, rl = [], [], [], [], []
    for prediction, reference in zip(predictions, references, strict=True):
        bleu.append(sacrebleu.sentence_bleu(prediction, [reference]).score)
        chrf.append(sacrebleu.sentence_chrf(prediction, [reference]).score)
        scores = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(reference, prediction)
        r1.append(100 * scores["rouge1"].fmeasure)
        r2.append(100 * scores["rouge2"].fmeasure)
        rl.append(100 * scores["rougeL"].fmeasure)
    return {
        "bleu": sacrebleu.corpus_bleu(predictions, [references]).score,
        "chrf": sacrebleu.corpus_chrf(predictions, [references]).score,
        "bleu_per_example": bleu,
        "chrf_per_example": chrf,
        "rouge1": r1,
        "rouge2": r2,
        "rougeL": rl,
    }


def ours(predictions: list[str], references: list[str]) -> dict[str, list[float] | float]:
    from eval.metrics import score_text

    scores = score_text(METRICS, predictions, references)
    return {
        "bleu": scores["bleu"].value,
        "chrf": scores["chrf"].value,
        "bleu_per_example": scores["bleu"].per_example,
        "chrf_per_example": scores["chrf"].per_example,
        "rouge1": scores["rouge1"].per_example,
        "rouge2": scores["rouge2"].per_example,
        "rougeL": scores["rougeL"].per_example,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    predictions, references = pairs(args.pairs)
    import rouge_score.rouge_scorer  # noqa: F401
    import sacrebleu  # noqa: F401  (imports are not what is measured)

    import eval.metrics  # noqa: F401

    started = time.perf_counter()
    reference_scores = baseline(predictions, references)
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    our_scores = ours(predictions, references)
    ours_s = time.perf_counter() - started

    mismatches = []
    for key, expected in reference_scores.items():
        got = our_scores[key]
        if isinstance(expected, list):
            diffs = [abs(a - b) for a, b in zip(expected, got, strict=True)]
            if max(diffs) > 1e-9:
                mismatches.append(f"{key}: max difference {max(diffs)}")
        elif abs(expected - got) > 1e-9:
            mismatches.append(f"{key}: {expected} vs {got}")
    print(f"pairs: {len(predictions)}")
    print(f"pair by pair (evaluate-style): {baseline_s:.2f} s, {len(predictions) / baseline_s:,.0f} examples/s")
    print(f"tunedesk score_text:           {ours_s:.2f} s, {len(predictions) / ours_s:,.0f} examples/s")
    print(f"identical scores: {'yes' if not mismatches else 'NO: ' + '; '.join(mismatches)}")
    print(
        json.dumps(
            {
                "pairs": len(predictions),
                "metrics": ["bleu", "chrf", "rouge1", "rouge2", "rougeL"],
                "evaluate_style_s": round(baseline_s, 3),
                "ours_s": round(ours_s, 3),
                "evaluate_style_examples_per_s": round(len(predictions) / baseline_s, 1),
                "ours_examples_per_s": round(len(predictions) / ours_s, 1),
                "identical": not mismatches,
                "ours_vs_evaluate": round(baseline_s / ours_s, 2),
            }
        )
    )
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
