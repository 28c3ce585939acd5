"""An evaluation suite: one YAML file that says what to evaluate, on what, how, and what counts as a regression.

Decisions:
- A suite starts with a comment giving the command that runs it; relative paths are relative to the
  directory the command runs in (the project root for the shipped suites).
- The dataset is a chat JSONL test split (``tunedesk data prepare`` output, with its ``.meta.jsonl`` for
  intents). ``prepare_from`` names the raw logs to prepare it from when it is missing, so a fresh clone
  can run the nightly suite with one command.
- Each backend entry is a name, a backend and settings overrides (any ``TUNEDESK_*`` field); an
  ``optional`` backend whose configuration is missing is skipped with a note instead of failing the run.
- ``metrics`` names text metrics (scored on the answers) and model metrics (``perplexity``: scored with
  the backend's own weights, skipped with a note on backends that have none).
- Thresholds are the largest drop (or rise, for lower-is-better metrics) from the baseline that is not a
  regression, in the metric's own units.
- ``judge`` (optional) names a chat backend that grades answers against a published rubric
  (``eval/judge.py``). It decodes greedily, always: its settings may configure the connection and the
  model, not the sampling. An ``optional`` judge whose configuration is missing is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eval.tasks import TaskSuite, repeated
from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import load_yaml

SAMPLING_FIELDS = frozenset({"max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed"})


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path
    prepare_from: Path | None = None
    turns: Literal["first", "all"] = "first"  # which assistant turns become test cases
    limit: int | None = Field(None, ge=1)  # the first N conversations (after a seeded shuffle when shuffle)


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    backend: str
    settings: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False
    concurrency: int | None = Field(None, ge=1)  # default: 1 for local engines, the suite's for remote ones


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    seed: int = 0


class JudgeSpec(BaseModel):
    """An LLM judge: which backend grades, by which rubric, and whose answers."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    settings: dict[str, Any] = Field(default_factory=dict)  # any TUNEDESK_* field but the sampling ones
    rubric: Path | None = None  # default: the shipped eval/rubrics/support.md
    backends: list[str] | None = Field(None, min_length=1)  # the suite backends whose answers it grades; all
    optional: bool = False
    concurrency: int | None = Field(None, ge=1)  # default: the suite's for remote backends, 1 for local ones
    max_new_tokens: int = Field(200, ge=16)  # room for the JSON verdict
    max_policy_chars: int = Field(8000, ge=0)  # a longer policy is cut to the sections closest to the case

    @field_validator("settings")
    @classmethod
    def _no_sampling(cls, settings: dict[str, Any]) -> dict[str, Any]:
        sampling = sorted(set(settings) & SAMPLING_FIELDS)
        if sampling:
            raise ValueError(
                f"{', '.join(sampling)}: the judge always decodes greedily (temperature 0); "
                "set judge.max_new_tokens for a longer reply"
            )
        return settings


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    dataset: DatasetSpec
    backends: list[BackendSpec] = Field(min_length=1)
    generation: GenerationSpec = Field(default_factory=lambda: GenerationSpec.model_validate({}))
    metrics: list[str] = Field(default_factory=lambda: ["bleu", "chrf", "rouge", "semantic_similarity"])
    cases: Path | None = None  # task-completion rules by intent
    policy: Path | None = None  # what the bot may quote: prices, links, numbers in it are not "invented"
    system_prompt: str | None = None  # default: the chat's (TUNEDESK_SYSTEM_PROMPT); "" for none
    concurrency: int = Field(4, ge=1)
    thresholds: dict[str, float] = Field(default_factory=dict)
    primary_metric: str = "rougeL"  # what the worst-examples table and the trend plot use
    judge: JudgeSpec | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        duplicated = repeated(backend.name for backend in self.backends)
        if duplicated:
            raise ValueError(f"backend names must be unique: {', '.join(duplicated)}")
        return self


def load_suite(path: Path) -> Suite | TaskSuite:
    """Read and check a suite file; errors name the file and the field.

    A mapping with a ``task`` key is a sibling-task suite (``eval.tasks``), any other a support-chat suite."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a suite is a YAML mapping (name, dataset, backends, ...)")
    if "task" in raw:
        return load_task_suite(path, raw)
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None
    from eval.metrics import known_metrics

    unknown = [m for m in suite.metrics if m not in known_metrics()]
    if unknown:
        raise ConfigError(f"{path}: metrics: unknown {', '.join(unknown)}; known: {', '.join(known_metrics())}")
    if suite.judge is not None:
        check_judge(path, suite)
    return suite


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{field or 'suite'}: {message}" for field, message in validation_problems(exc))


def load_task_suite(path: Path, raw: dict[str, Any]) -> TaskSuite:
    """A sibling-task suite: the shared schema, then the kinds its task module knows."""
    from eval.tasks import task_module

    try:
        suite = TaskSuite.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None
    kinds = task_module(suite.task).MODEL_KINDS
    for index, model in enumerate(suite.models):
        if model.kind not in kinds:
            raise ConfigError(
                f"{path}: models.{index}.kind: unknown kind {model.kind!r} for task {suite.task}; "
                f"choose one of: {', '.join(kinds)}"
            )
    return suite


def check_judge(path: Path, suite: Suite) -> None:
    """What pydantic cannot see: the judge's backend exists, and it grades backends the suite has."""
    from chatbot.backends import BACKENDS

    judge = suite.judge
    assert judge is not None, "check_judge needs a suite with a judge"
    if judge.backend not in BACKENDS:
        known = ", ".join(BACKENDS)
        raise ConfigError(f"{path}: judge.backend: unknown backend {judge.backend!r}; choose one of: {known}")
    names = [backend.name for backend in suite.backends]
    unknown = [name for name in judge.backends or [] if name not in names]
    if unknown:
        raise ConfigError(
            f"{path}: judge.backends: no backend named {', '.join(unknown)}; the suite has {', '.join(names)}"
        )
