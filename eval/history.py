"""Run history, comparison with significance, and the regression gate.

Decisions:
- Each run's aggregates go to the tunedesk database (``eval_runs``, ``eval_scores``); the per-example
  rows stay in the run directory (``examples.jsonl``), which ``compare`` reads back.
- ``compare`` pairs examples by id and backend name and tests each metric's mean per-example delta with a
  paired bootstrap (10,000 resamples, seeded): the p-value is twice the smaller tail share of resampled
  deltas on either side of zero. Corpus-level BLEU/chrF are tested through their sentence-level scores.
- The gate compares a run's aggregates with the baseline's: a metric regresses when it moves the wrong
  way by more than its threshold. Metrics without a threshold are reported, never gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Column, DateTime, Float, ForeignKey, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine

from eval.metrics import direction_of
from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import jsonl_lines, parse_json, read_text

LOWER_IS_BETTER = ("error_rate",)

metadata = MetaData()
runs_table = Table(
    "eval_runs",
    metadata,
    Column("run_id", String(255), primary_key=True),
    Column("suite", String(255), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("directory", String(1024), nullable=False),
)
scores_table = Table(
    "eval_scores",
    metadata,
    Column("run_id", String(255), ForeignKey("eval_runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("backend", String(255), primary_key=True),
    Column("metric", String(128), primary_key=True),
    Column("value", Float, nullable=False),
)


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """A backend's summary as metric -> value: text metrics, task completion, error rate, latency."""
    values = {name: float(m["value"]) for name, m in summary["metrics"].items()}
    if summary.get("task_completion") is not None:
        values["task_completion"] = float(summary["task_completion"])
    values["error_rate"] = float(summary["errors"]["error_rate"])
    for key in ("ttft_p50_s", "total_p95_s"):
        if summary["latency"].get(key) is not None:
            values[f"latency_{key}"] = float(summary["latency"][key])
    return values


def higher_is_better(metric: str) -> bool:
    return not (metric in LOWER_IS_BETTER or metric.startswith("latency_") or direction_of(metric) == "lower")


class History:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, run_id: str, suite: str, started_at: datetime, directory: Path, results: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(runs_table).values(
                    run_id=run_id, suite=suite, started_at=started_at, directory=str(directory.resolve())
                )
            )
            rows = [
                {"run_id": run_id, "backend": backend, "metric": metric, "value": value}
                for backend, summary in results["backends"].items()
                for metric, value in flat_metrics(summary).items()
            ]
            if rows:
                conn.execute(insert(scores_table), rows)

    def runs(self, suite: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = select(runs_table).order_by(runs_table.c.started_at.desc()).limit(limit)
        if suite:
            query = query.where(runs_table.c.suite == suite)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def scores(self, run_id: str) -> dict[str, dict[str, float]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores_table).where(scores_table.c.run_id == run_id)).mappings()
            found: dict[str, dict[str, float]] = {}
            for row in rows:
                found.setdefault(row["backend"], {})[row["metric"]] = row["value"]
        return found

    def compare_with(
        self,
        base: dict[str, Any],
        scores: dict[str, dict[str, float]],
        rows: list[dict[str, Any]],
        thresholds: dict[str, float],
    ) -> list[Delta]:
        """Deltas of ``scores`` (and their per-example ``rows``) against the recorded run ``base``."""
        return compare(self.scores(base["run_id"]), scores, read_examples(Path(base["directory"])), rows, thresholds)

    def resolve(self, ref: str, suite: str | None = None, *, before: str | None = None) -> dict[str, Any]:
        """A run by id, by directory, or ``last`` (the newest run of ``suite`` other than ``before``)."""
        if ref == "last":
            for run in self.runs(suite, limit=50):
                if run["run_id"] != before:
                    return run
            raise ConfigError(f"no earlier run of suite {suite!r} to compare with; run it once first")
        for run in self.runs(None, limit=100_000):
            if run["run_id"] == ref or Path(run["directory"]) == Path(ref).resolve():
                return run
        raise ConfigError(f"no run {ref!r} in the history (tunedesk eval history lists them)")


class PromptTurn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class ExampleRow(BaseModel):
    """The fields of an ``examples.jsonl`` row that compare, the human report and the review queue read."""

    model_config = ConfigDict(extra="allow")
    backend: str
    id: str
    prompt: str | list[PromptTurn]
    answer: str
    scores: dict[str, float | None] = Field(default_factory=dict)
    task_completion: float | None = None
    errors: Any = None


def read_examples(directory: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``examples.jsonl``; a row that is not one names ``file:line: field``."""
    path = directory / "examples.jsonl"
    if not path.is_file():
        raise ConfigError(f"{path}: missing; is {directory} an eval run directory?")
    rows = []
    for number, line in jsonl_lines(read_text(path)):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        raw = parse_json(line, where)
        try:
            rows.append(ExampleRow.model_validate(raw).model_dump())
        except ValidationError as exc:
            field, message = validation_problems(exc)[0]
            raise ConfigError(f"{where}: {field or 'row'}: {message}") from None
    return rows


def paired_bootstrap(deltas: list[float], resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value that the mean of paired ``deltas`` is zero."""
    if not deltas or all(d == 0 for d in deltas):
        return 1.0
    import numpy as np

    values = np.asarray(deltas, dtype=float)
    means = values[np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    tail = min(int((means > 0).sum()), int((means < 0).sum()))
    return min(1.0, 2 * max(tail, 1) / resamples)


@dataclass
class Delta:
    backend: str
    metric: str
    baseline: float
    current: float
    p_value: float | None
    threshold: float | None

    @property
    def change(self) -> float:
        return self.current - self.baseline

    @property
    def regressed(self) -> bool:
        if self.threshold is None:
            return False
        worse = -self.change if higher_is_better(self.metric) else self.change
        return worse > self.threshold


def example_values(rows: list[dict[str, Any]], backend: str) -> dict[str, dict[str, float]]:
    """metric -> example id -> per-example value, for one backend's rows."""
    values: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["backend"] != backend:
            continue
        for metric, value in row["scores"].items():
            if value is not None:  # a metric that could not score this example
                values.setdefault(metric, {})[row["id"]] = value
        if row.get("task_completion") is not None:
            values.setdefault("task_completion", {})[row["id"]] = float(row["task_completion"])
        values.setdefault("error_rate", {})[row["id"]] = float(bool(row["errors"]))
    return values


def compare(
    baseline: dict[str, dict[str, float]],
    current: dict[str, dict[str, float]],
    baseline_rows: list[dict[str, Any]] | None = None,
    current_rows: list[dict[str, Any]] | None = None,
    thresholds: dict[str, float] | None = None,
) -> list[Delta]:
    """Deltas for every (backend, metric) both runs have, with paired-bootstrap p-values when rows are given."""
    thresholds = thresholds or {}
    deltas = []
    for backend in sorted(set(baseline) & set(current)):
        before_examples = example_values(baseline_rows, backend) if baseline_rows else {}
        after_examples = example_values(current_rows, backend) if current_rows else {}
        for metric in sorted(set(baseline[backend]) & set(current[backend])):
            p_value = None
            before, after = before_examples.get(metric, {}), after_examples.get(metric, {})
            shared = sorted(set(before) & set(after))
            if shared:
                p_value = paired_bootstrap([after[i] - before[i] for i in shared])
            deltas.append(
                Delta(
                    backend,
                    metric,
                    baseline[backend][metric],
                    current[backend][metric],
                    p_value,
                    thresholds.get(metric),
                )
            )
    return deltas
