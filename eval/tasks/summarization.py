"""Summarization suites: LoRA (or any causal LM) map-reduce summaries and the lead-k and TextRank baselines.

Model kinds: ``lora`` (a summarisation run directory), ``lm`` (any causal LM as it is: a registry
name, transformers directory or hub id, prompted the same way: the zero-shot before of the
fine-tune's after), ``lead`` (the first ``sentences`` sentences, default 3) and ``textrank``
(``sentences`` most central ones, default 4: the reference summaries have 4 or 5).

Decisions:
- Text metrics are ``eval.metrics.score_text``'s ROUGE-1/2/L (mean of per-example F1, Porter stemming)
  and BLEU (corpus), 0-100 like the chat suite.
- ``faithfulness`` (0-1, higher is better) is the share of the summary's dates, numbers and names that
  the document states (``tunedesk.tasks.summarization_facts``); a summary stating no fact scores 0 in
  the mean, so saying nothing cannot raise it. The unsupported facts are listed per example.
- The length ratio (summary words / reference words; 1 is the reference's length) is reported in
  ``details``, per example and in the report section, not as a score: the regression gate reads every
  score as higher-is-better or lower-is-better, and this one is neither.
- Per example: the number of chunks, their character spans and per-chunk notes (map-reduce models),
  so the report shows what each summary was made from.
- The test split is the prepared ``<split>-documents.jsonl``; when it is missing it is prepared from
  ``dataset.prepare_from`` with ``finetune.summarization.prepare`` (same split as training, by id hash).
"""

from __future__ import annotations

import html
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data.schema import SummaryExample
from eval.metrics import Score, score_text
from eval.tasks import ModelResult, Progress, TaskExample, TaskModelSpec, TaskRun, TaskSuite
from tunedesk.errors import ConfigError, ModelNotFoundError, TunedeskError, validation_problems
from tunedesk.tasks.summarization import DEFAULT_MAX_NEW_TOKENS, lead_k, textrank
from tunedesk.tasks.summarization_facts import faithfulness

MODEL_KINDS = ("lora", "lm", "lead", "textrank")
TEXT_METRICS = ("rouge", "bleu")


class SummarizationOptions(BaseModel):
    """``options`` of a summarization suite: how to prepare the split when it is missing."""

    model_config = ConfigDict(extra="forbid")

    split_seed: int = 0
    validation_documents: int = Field(8, ge=0)
    test_documents: int = Field(8, ge=1)
    chunk_chars: int | None = Field(None, ge=200)  # for prepare; models read their own from the run


class LMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_chars: int | None = Field(None, ge=200)
    max_new_tokens: int = Field(DEFAULT_MAX_NEW_TOKENS, ge=1)
    repetition_penalty: float = Field(1.0, gt=0)
    device: str = "auto"


class LeadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentences: int = Field(3, ge=1)


class TextRankSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentences: int = Field(4, ge=1)
    damping: float = Field(0.85, gt=0, lt=1)


SETTINGS: dict[str, type[BaseModel]] = {
    "lora": LMSettings,
    "lm": LMSettings,
    "lead": LeadSettings,
    "textrank": TextRankSettings,
}
# One document in: its summary and the example's extra details (chunking).
Summarize = Callable[[str], tuple[str, dict[str, Any]]]


def evaluate(suite: TaskSuite, progress: Progress | None = None) -> TaskRun:
    """Score every model of a summarization suite on its test documents."""
    from data.legal_summary import read_documents

    options = _parse(SummarizationOptions, suite.options, "options")
    path = _test_split(suite, options)
    documents = list(read_documents(path))[: suite.dataset.limit]
    examples = [TaskExample(d.id, d.document, d.summary) for d in documents]
    results: list[ModelResult] = []
    skipped: dict[str, str] = {}
    for index, spec in enumerate(suite.models):
        settings = _parse(SETTINGS[spec.kind], spec.settings, f"models.{index}.settings")
        try:
            summarize, description = _load(spec, settings)
        except (TunedeskError, OSError) as exc:  # a hub id offline is an OSError from transformers
            if not spec.optional or isinstance(exc, ConfigError):
                raise
            skipped[spec.name] = str(exc)
            continue
        results.append(_score(spec, description, summarize, documents, progress))
    return TaskRun(examples, results, skipped, path, sections=[report_section(results, skipped)])


def _parse(model: type[Any], values: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{where}.{name}: {message}" for name, message in validation_problems(exc))
        raise ConfigError(problems) from None


def _test_split(suite: TaskSuite, options: SummarizationOptions) -> Path:
    path = suite.dataset.path
    if not path.is_file() and suite.dataset.prepare_from is not None:
        from finetune.summarization import SummarizationConfig, prepare

        config = SummarizationConfig.model_validate(
            {
                "documents": suite.dataset.prepare_from,
                "prepared": path.parent,
                "validation_documents": options.validation_documents,
                "test_documents": options.test_documents,
                "split_seed": options.split_seed,
                **({"chunk_chars": options.chunk_chars} if options.chunk_chars else {}),
            }
        )
        prepare(config)
        if not path.is_file():
            raise ConfigError(
                f"dataset.path: {path} was not written by prepare, which writes test-documents.jsonl in {path.parent}"
            )
    if not path.is_file():
        raise ConfigError(f"dataset.path: {path} does not exist (and no dataset.prepare_from to make it)")
    return path


def _load(spec: TaskModelSpec, settings: Any) -> tuple[Summarize, dict[str, Any]]:
    if spec.kind == "lead":
        k = settings.sentences
        return (lambda document: (lead_k(document, k), {})), {"kind": "lead", "sentences": k}
    if spec.kind == "textrank":
        k, damping = settings.sentences, settings.damping
        return (
            (lambda document: (textrank(document, k, damping), {})),
            {"kind": "textrank", "sentences": k, "damping": damping},
        )
    if not spec.model:
        raise ConfigError(f"models.{spec.name}.model: a run directory, registry name or hub id is needed")
    if _missing(spec.model):
        raise ModelNotFoundError(f"{spec.model} does not exist (train it first)")
    from tunedesk.tasks.summarization import Summarizer

    summarizer = Summarizer(
        spec.model,
        chunk_chars=settings.chunk_chars,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty,
        device=settings.device,
    )

    def summarize(document: str) -> tuple[str, dict[str, Any]]:
        result = summarizer.summarize(document)
        return result.summary, result.metadata()

    return summarize, {"kind": spec.kind, **summarizer.describe()}


def _missing(model: str) -> bool:
    """A local path that does not exist (yet): ``runs/x`` before training. Hub ids and names are tried."""
    path = Path(model).expanduser()
    local = model.startswith((".", "/", "~")) or (path.parent.is_dir() and path.parent != Path("."))
    return local and not path.exists()


def _score(
    spec: TaskModelSpec,
    description: dict[str, Any],
    summarize: Summarize,
    documents: list[SummaryExample],
    progress: Progress | None,
) -> ModelResult:
    advance = progress(spec.name, len(documents)) if progress else None
    predictions: list[str] = []
    failures: list[str | None] = []
    seconds: list[float] = []
    details: list[dict[str, Any]] = []
    for document in documents:
        started = time.perf_counter()
        try:
            summary, extra = summarize(document.document)
            failure = None
        except TunedeskError as exc:
            summary, extra, failure = "", {}, str(exc)
        seconds.append(time.perf_counter() - started)
        checked = faithfulness(summary, document.document)
        words = len(summary.split())
        details.append(
            {
                "length_ratio": round(words / max(1, len(document.summary.split())), 3),
                **checked.as_dict(),
                "chunks": extra.get("chunks", 1),
                **{k: v for k, v in extra.items() if k != "chunks"},
            }
        )
        predictions.append(summary)
        failures.append(failure)
        if advance:
            advance(1)
    scores = score_text(TEXT_METRICS, predictions, [d.summary for d in documents])
    faithful = [d["faithfulness"] if d["faithfulness"] is not None else 0.0 for d in details]
    scores["faithfulness"] = Score("faithfulness", statistics.fmean(faithful) if faithful else 0.0, faithful)
    ratios = [d["length_ratio"] for d in details]
    summary_details = {
        "length_ratio": round(statistics.fmean(ratios), 3) if ratios else None,
        "chunks_mean": round(statistics.fmean(d["chunks"] for d in details), 2) if details else None,
        "documents_chunked": sum(1 for d in details if d["chunks"] > 1),
        "unsupported_facts": sum(len(d["unsupported"]) for d in details),
        "facts": sum(d["facts"] for d in details),
    }
    return ModelResult(
        name=spec.name,
        kind=spec.kind,
        description=description,
        predictions=predictions,
        scores=scores,
        failures=failures,
        seconds=seconds,
        details=summary_details,
        example_details=details,
    )


def report_section(results: list[ModelResult], skipped: dict[str, str]) -> str:
    """An HTML table of every model's scores, a ROUGE-L/faithfulness plot, and each model's unsupported facts."""
    columns = ("rouge1", "rouge2", "rougeL", "bleu", "faithfulness")
    head = "".join(f"<th>{c}</th>" for c in (*columns, "length ratio", "chunks (mean)", "s / doc"))
    rows = []
    for result in results:
        cells = "".join(f"<td>{result.scores[c].value:.3g}</td>" for c in columns if c in result.scores)
        seconds = statistics.fmean(result.seconds) if result.seconds else 0.0
        rows.append(
            f"<tr><th>{html.escape(result.name)} ({html.escape(result.kind)})</th>{cells}"
            f"<td>{result.details.get('length_ratio')}</td><td>{result.details.get('chunks_mean')}</td>"
            f"<td>{seconds:.2f}</td></tr>"
        )
    parts = [
        "<h2>Summarization</h2>",
        f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>",
        _plot(results) if results else "",
    ]
    for name, why in skipped.items():
        parts.append(f"<p>skipped <b>{html.escape(name)}</b>: {html.escape(why)}</p>")
    for result in results:
        unsupported = [
            (index, fact) for index, d in enumerate(result.example_details) for fact in d.get("unsupported", [])
        ]
        if unsupported:
            items = "".join(f"<li>example {i + 1}: {html.escape(fact)}</li>" for i, fact in unsupported[:20])
            more = f"<p>... and {len(unsupported) - 20} more</p>" if len(unsupported) > 20 else ""
            parts.append(f"<h3>{html.escape(result.name)}: facts not in the source</h3><ul>{items}</ul>{more}")
    return "\n".join(parts)


def _plot(results: list[ModelResult]) -> str:
    from eval.report import _plt, _png

    plt = _plt()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [r.name for r in results]
    axes[0].bar(names, [r.scores["rougeL"].value for r in results], color="#4c72b0")
    axes[0].set_title("ROUGE-L (0-100)")
    axes[1].bar(names, [r.scores["faithfulness"].value for r in results], color="#55a868")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("faithfulness (share of facts in the source)")
    for axis in axes:
        axis.tick_params(axis="x", rotation=20)
    return _png(figure)
