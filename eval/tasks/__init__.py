"""Evaluation of the sibling tasks (sentiment, summarization, captioning) in the harness's run format.

A support-chat suite sends prompts through chat backends; a task suite instead names *models* of one task
(a fine-tuned run directory, a hub id, a baseline) and a test split, and ``eval.tasks.<task>.evaluate``
scores each model. The harness records the result exactly like a chat run (``results.json``,
``examples.jsonl``, history, the regression gate, the same ``report.html``), so one nightly job and one
report format serve all four tasks.

The contract a task module keeps (``eval/tasks/<task>.py``):
- ``evaluate(suite: TaskSuite, progress: Progress | None) -> TaskRun``
- ``MODEL_KINDS``: the ``kind`` values its suite's models may have (checked when the suite loads).

Decisions:
- A task suite is a YAML mapping with ``task: <name>``; without that key it is a support-chat suite, so
  every existing suite keeps working.
- ``options`` is the task's own settings (folds, chunk size...), validated by the task module, because
  the shared schema cannot know them.
- Metric values use the units of their library (ROUGE and BLEU 0-100 as sacrebleu and the chat suite
  report them; F1 and accuracy 0-1), so thresholds read the same in every suite.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval.metrics import Score

TASKS = ("sentiment", "summarization", "captioning", "redteam", "fairness")
TaskName = Literal["sentiment", "summarization", "captioning", "redteam", "fairness"]
Progress = Callable[[str, int], Callable[[int], None]]  # progress(label, total) -> advance(n)


class TaskDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path  # the held-out examples the models are scored on
    train: Path | None = None  # for baselines fit at evaluation time (TF-IDF) and cross-validation
    prepare_from: Path | None = None  # raw examples split into train/validation/test when ``path`` is missing
    limit: int | None = Field(None, ge=1)  # only the first N examples


class TaskModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # what the model is, per task: e.g. "classifier", "tfidf" (sentiment); "lora", "lead" (summarization)
    model: str | None = None  # a run directory, a registry name or a hub id
    settings: dict[str, Any] = Field(default_factory=dict)  # kind-specific knobs
    optional: bool = False  # skipped, with a note, when the model is missing


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted: names and ids that must be unique."""
    return sorted(value for value, count in Counter(values).items() if count > 1)


class TaskSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: TaskName
    name: str
    description: str = ""
    dataset: TaskDataset
    models: list[TaskModelSpec] = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    primary_metric: str

    @model_validator(mode="after")
    def _unique_names(self) -> TaskSuite:
        duplicated = repeated(model.name for model in self.models)
        if duplicated:
            raise ValueError(f"model names must be unique: {', '.join(duplicated)}")
        return self


@dataclass
class TaskExample:
    id: str
    input: str  # what the model reads, as shown in the report: the post, the document, the image reference
    reference: str  # the label, the reference summary, the reference caption


@dataclass
class ModelResult:
    """One model's scores on the test split."""

    name: str
    kind: str
    description: dict[str, Any]  # what was loaded: model, path, sha, settings; goes into results.json
    predictions: list[str]  # one per example; "" where it failed
    scores: dict[str, Score] = field(default_factory=dict)  # aggregate + per-example where meaningful
    failures: list[str | None] = field(default_factory=list)  # per example: why it failed, else None
    seconds: list[float] = field(default_factory=list)  # per example wall time (latency)
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able task extras: confusion matrix, CV, chunking
    example_details: list[dict[str, Any]] = field(default_factory=list)  # per example JSON-able extras

    def summary(self) -> dict[str, Any]:
        """The shape of a chat backend's summary, so history, gate and report read it unchanged."""
        from eval.harness import Generation, latency_summary

        failed = sum(1 for f in self.failures if f)
        total = len(self.predictions) or 1
        timed = [Generation(answer, total_s=s) for answer, s in zip(self.predictions, self.seconds, strict=False)]
        return {
            "backend": self.kind,
            "description": self.description,
            "metrics": {
                name: {"value": s.value, "direction": s.direction, "aggregation": s.aggregation}
                for name, s in self.scores.items()
            },
            "task_completion": None,
            "task_completion_checked": 0,
            "errors": {"error_rate": failed / total, "by_kind": {"failed": failed / total}},
            "generation_failures": failed,
            "latency": latency_summary(timed),  # the chat runs' percentiles, so the two compare
            "cache": {"hits": 0, "generated": len(self.predictions)},
            "skipped_metrics": {},
            "details": self.details,
        }


@dataclass
class TaskRun:
    examples: list[TaskExample]
    results: list[ModelResult]
    skipped: dict[str, str]  # model name -> why it was not evaluated
    dataset: Path
    sections: list[str] = field(default_factory=list)  # extra HTML for report.html (confusion matrices, CV...)


def task_module(task: str) -> Any:
    return importlib.import_module(f"eval.tasks.{task}")


def run_task(suite: TaskSuite, progress: Progress | None = None) -> TaskRun:
    """Score every model of ``suite`` with its task module."""
    run: TaskRun = task_module(suite.task).evaluate(suite, progress)
    return run


def example_rows(run: TaskRun) -> list[dict[str, Any]]:
    """One row per (model, example), in the chat run's ``examples.jsonl`` shape."""
    rows = []
    for result in run.results:
        for index, example in enumerate(run.examples):
            failure = result.failures[index] if result.failures else None
            rows.append(
                {
                    "backend": result.name,
                    "id": example.id,
                    "intent": None,
                    "prompt": [{"role": "user", "content": example.input}],
                    "reference": example.reference,
                    "answer": result.predictions[index],
                    "scores": {name: s.per_example[index] for name, s in result.scores.items() if s.per_example},
                    "task_completion": None,
                    "failed_rules": [],
                    "errors": ["failed"] if failure else [],
                    "latency": {"total_s": result.seconds[index]} if result.seconds else {},
                    "cached": False,
                    "generation_error": failure,
                    "judge": None,
                    **(result.example_details[index] if result.example_details else {}),
                }
            )
    return rows
