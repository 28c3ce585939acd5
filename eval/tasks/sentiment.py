"""Sentiment suites: fine-tuned classifiers (PyTorch or ONNX) and the TF-IDF baseline on one test split.

Model kinds: ``classifier`` (a run directory, transformers directory or hub id, run by PyTorch),
``onnx`` (a run's ``onnx/`` export, or the run directory itself, run by onnxruntime on CPU) and
``tfidf`` (word + character TF-IDF into logistic regression, fit here on ``dataset.train``).

Decisions:
- Metrics: accuracy, macro F1 and per-class F1 from scikit-learn (``eval.metrics.classification_scores``),
  all on the 0-1 scale; a per-example ``correct`` (1/0) whose mean is the accuracy, for the
  distributions and the worst-examples table; the confusion matrix and throughput (posts per second over
  the whole split, model loading excluded) in each model's details and in the report's own sections.
- Cross-validation (``options: {cv_folds: 5}``) is stratified k-fold macro F1 (``eval.metrics.cross_validated_f1``)
  on the labelled posts of ``options.cv_data`` (default: ``dataset.prepare_from``, else ``dataset.train``),
  reported as ``cv_macro_f1`` (mean) and ``cv_macro_f1_std`` per model that can be refit: the TF-IDF
  baseline always; a classifier only when ``options.cv_config`` names a fine-tuning recipe, since that
  re-fine-tunes it once per fold (minutes on CPU). An ONNX export is the same weights as its classifier
  and is not refit.
- The test split is prepared (stratified, seeded) from ``dataset.prepare_from`` when it is missing, with
  the same ``prepare`` as ``tunedesk sentiment prepare``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data.schema import SentimentExample
from eval.metrics import Score, classification_scores
from eval.tasks import ModelResult, Progress, TaskExample, TaskModelSpec, TaskRun, TaskSuite
from tunedesk.errors import ConfigError, ModelNotFoundError, validation_problems
from tunedesk.tasks.sentiment import LABELS, Prediction, SentimentClassifier, TfidfBaseline, load_classifier

MODEL_KINDS = ("classifier", "onnx", "tfidf")
KIND_SETTINGS: dict[str, tuple[str, ...]] = {"classifier": ("threads",), "onnx": ("threads",), "tfidf": ("c",)}
Predictor = SentimentClassifier | TfidfBaseline


class SentimentOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(64, ge=1)
    seed: int = 0  # the split (when prepared here) and the folds
    cv_folds: int | None = Field(None, ge=2)
    cv_config: Path | None = None  # a finetune/configs/sentiment-*.yaml: re-fine-tune the classifier per fold
    cv_data: Path | None = None  # labelled posts for cross-validation


def evaluate(suite: TaskSuite, progress: Progress | None = None) -> TaskRun:
    """Score every model of a sentiment suite on its test split (and cross-validate when asked)."""
    from data.sentiment import read_posts

    options = _options(suite)
    path = _test_split(suite, options)
    posts = list(read_posts(path))[: suite.dataset.limit]
    results: list[ModelResult] = []
    skipped: dict[str, str] = {}
    for spec in suite.models:
        _check_settings(spec)
        try:
            model = _load(spec, suite)
        except ModelNotFoundError as exc:
            if not spec.optional:
                raise
            skipped[spec.name] = str(exc)
            continue
        results.append(_score(spec, model, posts, options, progress))
    if options.cv_folds:
        _cross_validate(suite, options, results, progress)
    examples = [TaskExample(id=post.id, input=post.text, reference=post.label) for post in posts]
    sections = [_summary_section(results), _confusion_section(results)]
    if options.cv_folds:
        sections.append(_cv_section(results))
    return TaskRun(examples, results, skipped, path, [s for s in sections if s])


def _options(suite: TaskSuite) -> SentimentOptions:
    try:
        return SentimentOptions.model_validate(suite.options)
    except ValidationError as exc:
        problems = "; ".join(f"options.{name}: {message}" for name, message in validation_problems(exc))
        raise ConfigError(f"suite {suite.name}: {problems}") from None


def _check_settings(spec: TaskModelSpec) -> None:
    unknown = sorted(set(spec.settings) - set(KIND_SETTINGS[spec.kind]))
    if unknown:
        allowed = ", ".join(KIND_SETTINGS[spec.kind])
        raise ConfigError(f"models.{spec.name}.settings: unknown {', '.join(unknown)}; {spec.kind} takes {allowed}")


def _test_split(suite: TaskSuite, options: SentimentOptions) -> Path:
    path = suite.dataset.path
    if not path.is_file() and suite.dataset.prepare_from is not None:
        from finetune.sentiment import prepare

        prepare(suite.dataset.prepare_from, path.parent, seed=options.seed)
    if not path.is_file():
        raise ConfigError(f"dataset.path: {path} does not exist (and no dataset.prepare_from to make it)")
    return path


def _train_posts(suite: TaskSuite) -> list[SentimentExample]:
    from data.sentiment import read_posts

    if suite.dataset.train is None:
        raise ConfigError("dataset.train: the tfidf baseline is fit on it; name the training split")
    return list(read_posts(suite.dataset.train))


def _load(spec: TaskModelSpec, suite: TaskSuite) -> Predictor:
    if spec.kind == "tfidf":
        train = _train_posts(suite)
        baseline = TfidfBaseline(c=float(spec.settings.get("c", 10.0)))
        return baseline.fit([p.text for p in train], [p.label for p in train])
    if not spec.model:
        raise ConfigError(f"models.{spec.name}.model: a run directory, ONNX export or hub id is needed")
    threads = spec.settings.get("threads")
    return load_classifier(spec.model, backend="onnx" if spec.kind == "onnx" else "torch", threads=threads)


def _describe(spec: TaskModelSpec, model: Predictor) -> dict[str, Any]:
    described: dict[str, Any] = {"kind": spec.kind, "model": spec.model, "settings": spec.settings}
    if isinstance(model, SentimentClassifier):
        described.update(backend=model.backend, source=model.source, normalization=model.normalization.model_dump())
    else:
        described.update(backend="scikit-learn", normalization=model.normalization.model_dump())
    return described


def _predict(
    model: Predictor, texts: list[str], batch_size: int, advance: Callable[[int], None] | None
) -> tuple[list[Prediction], float]:
    """Predictions in input order, and the seconds they took (chunks of a few batches, for the progress bar)."""
    predictions: list[Prediction] = []
    seconds = 0.0
    chunk = batch_size * 4
    for start in range(0, len(texts), chunk):
        started = time.perf_counter()
        predictions.extend(model.predict(texts[start : start + chunk], batch_size))
        seconds += time.perf_counter() - started
        if advance is not None:
            advance(min(chunk, len(texts) - start))
    return predictions, seconds


def _score(
    spec: TaskModelSpec,
    model: Predictor,
    posts: list[SentimentExample],
    options: SentimentOptions,
    progress: Progress | None,
) -> ModelResult:
    texts = [post.text for post in posts]
    truth = [post.label for post in posts]
    advance = progress(f"{spec.name}: predicting", len(texts)) if progress else None
    predictions, seconds = _predict(model, texts, options.batch_size, advance)
    labels = [label for label, _ in predictions]
    report = classification_scores(truth, labels, LABELS)
    correct = [1.0 if p == t else 0.0 for p, t in zip(labels, truth, strict=True)]
    scores = {
        "accuracy": Score("accuracy", report["accuracy"], aggregation="corpus"),
        "macro_f1": Score("macro_f1", report["macro"]["f1-score"], aggregation="corpus"),
        **{
            f"f1_{label}": Score(f"f1_{label}", report["per_class"][label]["f1-score"], aggregation="corpus")
            for label in LABELS
        },
        "correct": Score("correct", sum(correct) / max(1, len(correct)), per_example=correct),
    }
    details = {
        "labels": list(LABELS),
        "confusion_matrix": report["confusion_matrix"],
        "per_class": report["per_class"],
        "texts_per_s": round(len(texts) / seconds, 1) if seconds else None,
        "backend": model.backend if isinstance(model, SentimentClassifier) else "scikit-learn",
    }
    return ModelResult(
        name=spec.name,
        kind=spec.kind,
        description=_describe(spec, model),
        predictions=labels,
        scores=scores,
        failures=[None] * len(posts),
        seconds=[seconds / max(1, len(posts))] * len(posts),
        details=details,
        example_details=[{"probabilities": probs} for _, probs in predictions],
    )


# ---------------------------------------------------------------------------------- cross-validation


def _cross_validate(
    suite: TaskSuite, options: SentimentOptions, results: list[ModelResult], progress: Progress | None
) -> None:
    """Adds ``details["cv"]`` and the ``cv_macro_f1``/``cv_macro_f1_std`` scores to every refittable model."""
    from data.sentiment import read_posts
    from eval.metrics import cross_validated_f1
    from finetune.sentiment import SentimentConfig, finetune_fit_predict, tfidf_fit_predict

    source = options.cv_data or suite.dataset.prepare_from or suite.dataset.train
    if source is None:
        raise ConfigError("options.cv_data: cross-validation needs labelled posts (or dataset.prepare_from)")
    posts = list(read_posts(source))
    texts, labels = [p.text for p in posts], [p.label for p in posts]
    specs = {spec.name: spec for spec in suite.models}
    for result in results:
        spec = specs[result.name]
        if spec.kind == "tfidf":
            fit_predict = tfidf_fit_predict(c=float(spec.settings.get("c", 10.0)), seed=options.seed)
        elif spec.kind == "classifier" and options.cv_config is not None:
            fit_predict = finetune_fit_predict(SentimentConfig.from_yaml(options.cv_config))
        else:
            why = "same weights as its classifier" if spec.kind == "onnx" else "set options.cv_config to refit it"
            result.details["cv"] = {"skipped": why}
            continue
        advance = progress(f"{result.name}: {options.cv_folds}-fold CV", options.cv_folds or 0) if progress else None
        started = time.perf_counter()
        cv = cross_validated_f1(_counting(fit_predict, advance), texts, labels, options.cv_folds or 5, options.seed)
        cv.update(seconds=round(time.perf_counter() - started, 1), posts=len(posts), data=str(source))
        result.details["cv"] = cv
        result.scores["cv_macro_f1"] = Score("cv_macro_f1", cv["macro_f1_mean"], aggregation="corpus")
        std = Score("cv_macro_f1_std", cv["macro_f1_std"], direction="lower", aggregation="corpus")
        result.scores["cv_macro_f1_std"] = std


def _counting(
    fit_predict: Callable[[list[str], list[str], list[str]], list[str]], advance: Callable[[int], None] | None
) -> Callable[[list[str], list[str], list[str]], list[str]]:
    def counted(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
        predicted = fit_predict(train_texts, train_labels, test_texts)
        if advance is not None:
            advance(1)
        return predicted

    return counted


# ---------------------------------------------------------------------------------------- report


def _num(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _summary_section(results: list[ModelResult]) -> str:
    if not results:
        return ""
    head = "".join(f"<th>F1 {label}</th>" for label in LABELS)
    rows = []
    for r in results:
        cells = "".join(f"<td class=num>{_num(r.scores[f'f1_{label}'].value)}</td>" for label in LABELS)
        rows.append(
            f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(r.kind)}</td>"
            f"<td>{html.escape(str(r.details['backend']))}</td>"
            f"<td class=num>{_num(r.scores['accuracy'].value)}</td>"
            f"<td class=num>{_num(r.scores['macro_f1'].value)}</td>"
            f"{cells}<td class=num>{_num(r.details['texts_per_s'], 1)}</td></tr>"
        )
    return (
        "<h2>Sentiment: per-class F1 and throughput</h2><table><tr><th>model</th><th>kind</th><th>runtime</th>"
        f"<th>accuracy</th><th>macro F1</th>{head}<th>posts/s</th></tr>{''.join(rows)}</table>"
        "<p class=muted>Throughput: posts per second over the whole test split in batches, on this machine's "
        "CPU, model loading excluded.</p>"
    )


def _confusion_table(result: ModelResult) -> str:
    labels, matrix = result.details["labels"], result.details["confusion_matrix"]
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>{''.join(f'<td class=num>{n}</td>' for n in row)}</tr>"
        for label, row in zip(labels, matrix, strict=True)
    )
    return f"<h3>{html.escape(result.name)}</h3><table><tr><th>true \\ predicted</th>{head}</tr>{body}</table>"


def _confusion_section(results: list[ModelResult]) -> str:
    if not results:
        return ""
    from eval.report import _plt, _png

    plt = _plt()
    figure, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), squeeze=False)
    for axis, result in zip(axes[0], results, strict=True):
        labels, matrix = result.details["labels"], result.details["confusion_matrix"]
        axis.imshow(matrix, cmap="Blues")
        axis.set_xticks(range(len(labels)), labels, rotation=30)
        axis.set_yticks(range(len(labels)), labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(result.name, fontsize=9)
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                axis.text(j, i, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black")
    tables = "".join(_confusion_table(result) for result in results)
    return f"<h2>Sentiment: confusion matrices</h2>{_png(figure)}{tables}"


def _cv_section(results: list[ModelResult]) -> str:
    rows = []
    for r in results:
        cv = r.details.get("cv") or {}
        if "skipped" in cv:
            rows.append(
                f"<tr><td>{html.escape(r.name)}</td><td colspan=4 class=muted>{html.escape(cv['skipped'])}</td></tr>"
            )
        elif cv:
            folds = ", ".join(f"{f:.3f}" for f in cv["per_fold"])
            rows.append(
                f"<tr><td>{html.escape(r.name)}</td><td class=num>{cv['folds']}</td>"
                f"<td class=num>{cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f}</td><td>{folds}</td>"
                f"<td class=num>{cv['seconds']:.1f}</td></tr>"
            )
    return (
        "<h2>Sentiment: stratified cross-validation (macro F1)</h2><table><tr><th>model</th><th>folds</th>"
        f"<th>mean ± std</th><th>per fold</th><th>seconds</th></tr>{''.join(rows)}</table>"
    )
