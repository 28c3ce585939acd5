"""Run a suite: test cases from the split, answers from each backend (cached), then every score.

Decisions:
- Backends are the chat's own (``chatbot.backends``), loaded with the suite entry's settings on top of
  the environment, so an evaluated model answers exactly as it would in the chat: same system prompt,
  same context trimming, same decoding.
- Local engines answer one case at a time (they use every core already); remote ones (``azure``) answer
  ``concurrency`` cases at once.
- Every answer is cached in the tunedesk database, keyed by sha256 of (backend, model fingerprint,
  prompt, generation params). A re-run regenerates nothing; a run killed halfway resumes where it
  stopped, since each answer is stored the moment it is complete. The model fingerprint is the
  artifact's manifest (ONNX/transformers directories) or the deployment (Azure).
- A failed generation (after the backend's own retries) is recorded as an empty answer with its error,
  so one bad case does not sink a nightly run; it counts in the error rate, and it is not cached.
- Latency (time to first token, total, tokens/s) is measured on fresh generations; cached answers keep
  the latency measured when they were generated.
- Model metrics (``perplexity``) are computed here, per backend, because they need the loaded model and
  not only its answers; they are not cached (one forward pass per example). A backend that cannot give
  one is recorded under ``skipped_metrics`` with the reason, and the run goes on.
- The suite's LLM judge (``eval/judge.py``), when it has one, grades the answers after every backend has
  answered, through the same cache; its grades join each backend's summary and examples.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from chatbot.backends import Backend, GenerationParams, backend_class, load_backend
from chatbot.conversation import Message, with_system_prompt
from eval.checks import CaseRules, error_flags, load_cases, summarise_flags, task_completion
from eval.metrics import MODEL_METRICS, TEXT_METRICS, MetricUnavailable, Score, model_metric, score_text
from eval.suite import BackendSpec, Suite
from tunedesk.errors import ConfigError, TunedeskError
from tunedesk.settings import Settings, load_settings

if TYPE_CHECKING:
    from eval.judge import JudgedBackend, JudgeRun

REMOTE_BACKENDS = ("azure",)
OFF_TOPIC_SIMILARITY = 0.1  # answer-question cosine below this is off topic

metadata = MetaData()
cache_table = Table(
    "eval_generations",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("backend", String(64), nullable=False),
    Column("answer", Text, nullable=False),
    Column("ttft_s", Float),
    Column("total_s", Float),
    Column("tokens", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class Example:
    id: str
    intent: str | None
    prompt: list[Message]  # without the system prompt: the backend's configuration adds it
    reference: str

    @property
    def question(self) -> str:
        return next(m["content"] for m in reversed(self.prompt) if m["role"] == "user")


@dataclass
class Generation:
    answer: str
    ttft_s: float | None = None
    total_s: float | None = None
    tokens: int | None = None
    cached: bool = False
    error: str | None = None


@dataclass
class BackendResult:
    name: str
    backend: str
    description: dict[str, Any]
    generations: list[Generation]
    scores: dict[str, Score] = field(default_factory=dict)
    completion: list[bool | None] = field(default_factory=list)
    failed_rules: list[list[str]] = field(default_factory=list)
    flags: list[list[str]] = field(default_factory=list)
    similarity_to_question: list[float] = field(default_factory=list)
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # model metric -> why this backend has none
    judge: JudgedBackend | None = None  # the LLM judge's grades, when the suite's judge graded this backend

    def summary(self) -> dict[str, Any]:
        checked = [c for c in self.completion if c is not None]
        fresh = [g for g in self.generations if not g.cached and not g.error]
        measured = [g for g in self.generations if g.total_s is not None]
        return {
            "backend": self.backend,
            "description": self.description,
            "metrics": {
                name: {"value": s.value, "direction": s.direction, "aggregation": s.aggregation}
                for name, s in self.scores.items()
            },
            "task_completion": sum(checked) / len(checked) if checked else None,
            "task_completion_checked": len(checked),
            "errors": summarise_flags(self.flags),
            "generation_failures": sum(1 for g in self.generations if g.error),
            "latency": latency_summary(measured),
            "cache": {"hits": sum(1 for g in self.generations if g.cached), "generated": len(fresh)},
            "skipped_metrics": self.skipped_metrics,
            **({"judge": self.judge.summary()} if self.judge is not None else {}),
        }


def latency_summary(generations: Sequence[Generation]) -> dict[str, float | None]:
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    ttft = [g.ttft_s for g in generations if g.ttft_s is not None]
    total = [g.total_s for g in generations if g.total_s is not None]
    rates = [g.tokens / g.total_s for g in generations if g.tokens and g.total_s]
    return {
        "ttft_p50_s": pct(ttft, 0.5),
        "ttft_p95_s": pct(ttft, 0.95),
        "total_p50_s": pct(total, 0.5),
        "total_p95_s": pct(total, 0.95),
        "tokens_per_s_p50": pct(rates, 0.5),
        "tokens_per_s_mean": statistics.fmean(rates) if rates else None,
    }


# ---- test cases ---------------------------------------------------------------------------------------------
def ensure_dataset(suite: Suite, settings: Settings) -> Path:
    path = suite.dataset.path
    if path.is_file():
        return path
    if suite.dataset.prepare_from is None:
        raise ConfigError(f"{path}: no such test split; run tunedesk data prepare first, or set dataset.prepare_from")
    from data.prepare import PrepareConfig, prepare

    prepare([suite.dataset.prepare_from], path.parent, PrepareConfig(system_prompt=settings.system_prompt))
    if not path.is_file():
        raise ConfigError(f"preparing {suite.dataset.prepare_from} did not write {path}")
    return path


def load_examples(path: Path, turns: str = "first", limit: int | None = None) -> list[Example]:
    """Test cases from a chat JSONL split: the conversation up to a user turn, and the reference reply."""
    meta_path = path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl")
    metas = [json.loads(line) for line in meta_path.open(encoding="utf-8")] if meta_path.is_file() else []
    examples: list[Example] = []
    conversations = 0  # that gave at least one test case
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if limit is not None and conversations >= limit:
                break
            before = len(examples)
            try:
                messages = json.loads(line)["messages"]
                if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                    raise TypeError("messages")
            except (ValueError, KeyError, TypeError, RecursionError):
                raise ConfigError(f"{path}:{number}: messages: not a chat example") from None
            meta = metas[number - 1] if number - 1 < len(metas) else {}
            base_id = str(meta.get("id") or f"{path.stem}-{number}")
            turns_seen = [m for m in messages if m.get("role") != "system"]
            for index, message in enumerate(turns_seen):
                if message.get("role") != "assistant" or index == 0 or turns_seen[index - 1].get("role") != "user":
                    continue
                examples.append(
                    Example(
                        id=f"{base_id}#{index}",
                        intent=meta.get("intent"),
                        prompt=[{"role": m["role"], "content": m["content"]} for m in turns_seen[:index]],
                        reference=message["content"],
                    )
                )
                if turns == "first":
                    break
            conversations += len(examples) > before
    if not examples:
        raise ConfigError(f"{path}: no user turn followed by an assistant reply")
    return examples


# ---- generation ---------------------------------------------------------------------------------------------
class GenerationCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                rows = conn.execute(select(cache_table).where(cache_table.c.key.in_(keys[start : start + 500])))
                for row in rows.mappings():
                    found[row["key"]] = Generation(
                        row["answer"], row["ttft_s"], row["total_s"], row["tokens"], cached=True
                    )
        return found

    def put(self, key: str, backend: str, generation: Generation) -> None:
        values = {
            "key": key,
            "backend": backend,
            "answer": generation.answer,
            "ttft_s": generation.ttft_s,
            "total_s": generation.total_s,
            "tokens": generation.tokens,
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.execute(sqlite_insert(cache_table).values(**values).on_conflict_do_nothing())
            else:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(pg_insert(cache_table).values(**values).on_conflict_do_nothing())


def fingerprint(backend: Backend) -> str:
    """What identifies the model behind a backend: its description plus the artifact's manifest."""
    description = backend.describe()
    parts = [json.dumps(description, sort_keys=True, default=str)]
    path = description.get("path")
    if path:
        manifest = Path(path) / "tunedesk-manifest.json"
        if manifest.is_file():
            parts.append(manifest.read_text(encoding="utf-8"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_key(model: str, messages: Sequence[Message], params: GenerationParams) -> str:
    payload = json.dumps({"model": model, "messages": list(messages), "params": params.model_dump()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


async def _generate(backend: Backend, messages: list[Message], params: GenerationParams) -> Generation:
    started = time.perf_counter()
    pieces: list[str] = []
    ttft = None
    try:
        async for piece in backend.stream(messages, params):
            if ttft is None:
                ttft = time.perf_counter() - started
            pieces.append(piece)
    except TunedeskError as exc:
        return Generation("".join(pieces), error=f"{type(exc).__name__}: {exc}")
    total = time.perf_counter() - started
    stats = getattr(backend, "last_stats", None)
    tokens = stats.completion_tokens if stats is not None and stats.completion_tokens else len(pieces)
    return Generation("".join(pieces), ttft, total, tokens)


async def generate_all(
    backend: Backend,
    name: str,
    prompts: Sequence[list[Message]],
    params: GenerationParams,
    cache: GenerationCache,
    concurrency: int,
    advance: Callable[[int], None] = lambda n: None,
) -> list[Generation]:
    model = fingerprint(backend)
    keys = [cache_key(model, prompt, params) for prompt in prompts]
    results: list[Generation | None] = [None] * len(prompts)
    cached = cache.get_many(keys)
    for index, key in enumerate(keys):
        if key in cached:
            results[index] = cached[key]
    advance(sum(1 for r in results if r is not None))
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            generation = await _generate(backend, prompts[index], params)
        if generation.error is None:
            await asyncio.to_thread(cache.put, keys[index], name, generation)
        results[index] = generation
        advance(1)

    await asyncio.gather(*(one(i) for i, r in enumerate(results) if r is None))
    return [r for r in results if r is not None]


# ---- scoring ------------------------------------------------------------------------------------------------
def score(
    result: BackendResult,
    examples: Sequence[Example],
    metrics: Sequence[str],
    cases: dict[str, CaseRules],
    policy: str,
    max_new_tokens: int,
) -> None:
    answers = [g.answer for g in result.generations]
    references = [e.reference for e in examples]
    result.scores = score_text([m for m in metrics if m in TEXT_METRICS], answers, references)
    for example, generation in zip(examples, result.generations, strict=True):
        rules = cases.get(example.intent or "")
        if rules is None:
            result.completion.append(None)
            result.failed_rules.append([])
        else:
            verdict = task_completion(generation.answer, rules)
            result.completion.append(verdict.passed)
            result.failed_rules.append(verdict.failed_rules)
        context = "\n".join(m["content"] for m in example.prompt) + "\n" + policy
        hit_limit = generation.tokens is not None and generation.tokens >= max_new_tokens
        result.flags.append(
            error_flags(generation.answer, context=context, reference=example.reference, max_new_tokens_hit=hit_limit)
        )
    if "semantic_similarity" in metrics:
        from eval.metrics import semantic_similarity

        similarity = semantic_similarity(answers, [e.question for e in examples])[0].per_example
        result.similarity_to_question = similarity
        for flags, value, answer in zip(result.flags, similarity, answers, strict=True):
            if answer.strip() and value < OFF_TOPIC_SIMILARITY:
                flags.append("off_topic")


def score_model_metrics(
    result: BackendResult,
    backend: Backend,
    metrics: Sequence[str],
    prompts: Sequence[list[Message]],
    references: Sequence[str],
    params: GenerationParams,
) -> None:
    """The suite's model metrics (``perplexity``) with ``backend``'s own model, or the reason it has none."""
    for name in metrics:
        if name not in MODEL_METRICS:
            continue
        try:
            computed = model_metric(name)(backend, prompts, references, params)
        except MetricUnavailable as exc:
            result.skipped_metrics[name] = str(exc)
            continue
        result.scores[computed.name] = computed


# ---- the run ------------------------------------------------------------------------------------------------
@dataclass
class Run:
    suite: Suite
    examples: list[Example]
    results: list[BackendResult]
    skipped: dict[str, str]
    dataset: Path
    started_at: datetime
    finished_at: datetime
    judge: JudgeRun | None = None


def backend_settings(spec: BackendSpec, suite: Suite) -> Settings:
    overrides = dict(spec.settings)
    if suite.system_prompt is not None:
        overrides.setdefault("system_prompt", suite.system_prompt)
    overrides.setdefault("max_new_tokens", suite.generation.max_new_tokens)
    return load_settings(backend=spec.backend, **overrides)


def run_suite(
    suite: Suite,
    *,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    judge: bool = True,
) -> Run:
    """Generate and score every backend of ``suite``, then let its judge grade them (unless ``judge`` is False).

    ``progress(label, total)`` returns an advance callback."""
    from tunedesk.db import engine

    started = datetime.now(UTC)
    base = load_settings()
    dataset = ensure_dataset(suite, base)
    examples = load_examples(dataset, suite.dataset.turns, suite.dataset.limit)
    cases = load_cases(suite.cases) if suite.cases else {}
    policy = suite.policy.read_text(encoding="utf-8") if suite.policy else ""
    cache = GenerationCache(engine(base))
    g = suite.generation
    results, skipped = [], {}
    for spec in suite.backends:
        settings = backend_settings(spec, suite)
        try:
            backend_class(spec.backend).prepare(settings, lambda message: None)
            backend = load_backend(spec.backend, settings)
        except ConfigError as exc:
            if spec.optional:
                skipped[spec.name] = str(exc)
                continue
            raise ConfigError(f"backend {spec.name}: {exc}") from None
        params = GenerationParams(  # the suite's generation, unless the backend entry overrides a field
            **{**g.model_dump(), **{k: v for k, v in spec.settings.items() if k in GenerationParams.model_fields}}
        )
        prompts = [with_system_prompt(e.prompt, settings.system_prompt) for e in examples]
        concurrency = spec.concurrency or (suite.concurrency if spec.backend in REMOTE_BACKENDS else 1)
        advance = progress(spec.name, len(prompts)) if progress else (lambda n: None)
        generations = asyncio.run(generate_all(backend, spec.name, prompts, params, cache, concurrency, advance))
        result = BackendResult(spec.name, spec.backend, backend.describe(), generations)
        score(result, examples, suite.metrics, cases, policy, params.max_new_tokens)
        score_model_metrics(result, backend, suite.metrics, prompts, [e.reference for e in examples], params)
        results.append(result)
    judged = grade(suite, examples, results, cases, policy, cache, skipped, progress) if judge else None
    return Run(suite, examples, results, skipped, dataset, started, datetime.now(UTC), judged)


def grade(
    suite: Suite,
    examples: Sequence[Example],
    results: Sequence[BackendResult],
    cases: dict[str, CaseRules],
    policy: str,
    cache: GenerationCache,
    skipped: dict[str, str],
    progress: Callable[[str, int], Callable[[int], None]] | None,
) -> JudgeRun | None:
    """The suite's LLM judge over the answers; an optional judge that is not configured is noted in ``skipped``."""
    if suite.judge is None or not results:
        return None
    from eval.judge import judge_settings, load_judge, run_judge

    settings = judge_settings(suite.judge)
    try:
        backend = load_judge(suite.judge, settings)
    except ConfigError as exc:
        if not suite.judge.optional:
            raise ConfigError(f"judge ({suite.judge.backend}): {exc}") from None
        skipped[f"judge ({suite.judge.backend})"] = str(exc)
        return None
    return run_judge(suite, backend, examples, results, cases, policy, cache, progress)


def example_rows(run: Run) -> list[dict[str, Any]]:
    """One row per (backend, example): what was asked, expected and answered, and every score."""
    rows = []
    for result in run.results:
        for index, (example, generation) in enumerate(zip(run.examples, result.generations, strict=True)):
            judgement = result.judge.judgements[index] if result.judge is not None else None
            scores = {name: s.per_example[index] for name, s in result.scores.items() if s.per_example}
            if judgement is not None and judgement.error is None:
                scores["judge_completion"] = float(bool(judgement.completed))
                scores["judge_score"] = float(judgement.score or 0)
            rows.append(
                {
                    "backend": result.name,
                    "id": example.id,
                    "intent": example.intent,
                    "prompt": example.prompt,
                    "reference": example.reference,
                    "answer": generation.answer,
                    "scores": scores,
                    "task_completion": result.completion[index],
                    "failed_rules": result.failed_rules[index],
                    "errors": result.flags[index],
                    "latency": {k: v for k, v in asdict(generation).items() if k in ("ttft_s", "total_s", "tokens")},
                    "cached": generation.cached,
                    "generation_error": generation.error,
                    "judge": judgement.to_json() if judgement is not None else None,
                }
            )
    return rows
