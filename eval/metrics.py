"""Scores for generated text and for classifiers, each registered with its direction and aggregation.

Decisions:
- The reference libraries compute the numbers: sacrebleu (BLEU, chrF), rouge-score (ROUGE-1/2/L with
  Porter stemming), scikit-learn (precision, recall, F1, confusion matrix, stratified k-fold). We
  add what a nightly run needs around them (per-example scores for the worst-examples table, one
  registry that says whether higher is better, how to aggregate), never our own variant of a formula.
- BLEU and chrF are reported at corpus level (what papers and sacrebleu report) and per example
  (sentence level, BLEU with effective order so short answers are not all zero). ROUGE and semantic
  similarity are means of per-example scores, as rouge-score and sentence-transformers users report them.
- Semantic similarity is the cosine between all-MiniLM-L6-v2 sentence embeddings
  (``tunedesk.embeddings``, shared with the chat's policy grounding).
- Scores are on 0-100 for BLEU/chrF/ROUGE (sacrebleu's scale) and -1..1 for similarity.
- Metrics that need the model itself, not only its text (perplexity of the references), have their own
  registry, ``MODEL_METRICS``: the same name, direction and aggregation, but a lazy ``"module:attr"``
  computed by the harness per backend (``compute(backend, prompts, references, params) -> Score``), so
  importing this module never imports torch. A backend that cannot give the metric raises
  ``MetricUnavailable`` with the reason, which the run records instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from tunedesk.embeddings import sentence_encoder
from tunedesk.errors import ConfigError, TunedeskError

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


@dataclass(frozen=True)
class ModelMetricSpec:
    name: str
    direction: Direction
    aggregation: str
    target: str  # "module:attr" of compute(backend, prompts, references, params) -> Score


MODEL_METRICS: dict[str, ModelMetricSpec] = {
    spec.name: spec
    for spec in (ModelMetricSpec("perplexity", "lower", "corpus", "eval.perplexity:reference_perplexity"),)
}


class MetricUnavailable(TunedeskError):
    """A model metric this backend cannot give (no weights in this process...): recorded, not fatal."""


def model_metric(name: str) -> Callable[..., Score]:
    """The compute function of the model metric ``name``, imported now."""
    module, _, attr = MODEL_METRICS[name].target.partition(":")
    compute: Callable[..., Score] = getattr(importlib.import_module(module), attr)
    return compute


def known_metrics() -> list[str]:
    """Every name a suite's ``metrics`` may list."""
    return [*TEXT_METRICS, *MODEL_METRICS]


def direction_of(metric: str) -> Direction | None:
    """The registered direction of a metric (or of a metric a text metric produces, such as ``rougeL``)."""
    for spec in TEXT_METRICS.values():
        if metric in spec.produces:
            return spec.direction
    model_spec = MODEL_METRICS.get(metric)
    return model_spec.direction if model_spec else None


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
