"""The optional LLM judge: any chat backend grades each answer against a published rubric.

Decisions:
- The rubric is a Markdown file a support lead reads and edits (``eval/rubrics/support.md``); its text,
  less ``<!-- -->`` notes, is the judge's system message. The case is the user message, built here: the
  conversation, the reference answer, the case's rules (description, required facts, forbidden claims,
  escalation, policy sections), the policy passages and the candidate answer, each in its own tag, then
  the reply format. The format lives in code, not in the rubric, so editing the rubric cannot break parsing.
- A verdict is one JSON object with exactly ``completed`` (bool), ``score`` (integer 1-5) and ``reason``
  (one line). A Markdown code fence around it is tolerated; nothing else is (no text around it, no
  ``"4"`` for ``4``, no extra keys). An unusable reply is asked once more, in one message that carries the
  case, the reply and what was wrong with it, so no context trimming can leave the judge without the case.
  A second unusable reply, or a failed call, is recorded as ``judge_error`` with the raw reply: a run
  never crashes on the judge and never guesses a score.
- Judge calls go through the harness's generation cache (the judge backend's model fingerprint, the
  messages, the parameters), so a re-run asks nothing again unless the rubric, the case or the answer
  changed. Raw replies are cached, not verdicts: a cached reply is parsed again, and its retry is cached
  too. Decoding is greedy (temperature 0), and the context window defaults to 128k tokens (engines clamp
  it to their model's), since a judge must read the whole case.
- Policy passages: the sections the case names (``policy:`` in its rules); else the whole policy when it
  fits ``max_policy_chars``; else the sections sharing the most rare words (by inverse document
  frequency over the sections) with the conversation and the reference, in the policy's order.
- Agreement with the rule-based task completion is Cohen's kappa (scikit-learn) over the cases both
  graded. It is None, with the reason, below two such cases or when both gave one label throughout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from chatbot.backends import Backend, GenerationParams, backend_class, load_backend
from chatbot.conversation import Message
from eval.checks import CaseRules
from eval.harness import REMOTE_BACKENDS, BackendResult, Example, GenerationCache, generate_all
from eval.metrics import Score
from eval.suite import JudgeSpec, Suite
from tunedesk.errors import ConfigError
from tunedesk.settings import Settings, load_settings

DEFAULT_RUBRIC = Path(__file__).resolve().parent / "rubrics" / "support.md"
JUDGE_ERROR = "judge_error"
JUDGE_CONTEXT_WINDOW = 131_072
VERDICT_FORMAT = '{"completed": true or false, "score": an integer from 1 to 5, "reason": "one line"}'
ASK = f"Reply with only this JSON object and no other text: {VERDICT_FORMAT}"
ROLES = {"user": "Customer", "assistant": "Agent"}
NOTE = re.compile(r"<!--.*?-->", re.DOTALL)
FENCE = re.compile(r"\A```(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
HEADING = re.compile(r"^#{1,3}\s+(.+?)\s*#*\s*$")
WORD = re.compile(r"[a-z0-9]{3,}")


# ---- the rubric -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rubric:
    path: Path
    text: str  # what the judge is sent: the file less its <!-- --> notes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_rubric(path: Path | None = None) -> Rubric:
    """The rubric at ``path`` (default: the shipped support rubric); errors name the ``judge.rubric`` field."""
    path = path or DEFAULT_RUBRIC
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"judge.rubric: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"judge.rubric: {path} is not UTF-8 (byte {exc.start}); re-save it as UTF-8") from None
    text = NOTE.sub("", raw).strip()
    if not text:
        raise ConfigError(f"judge.rubric: {path} has no instructions outside its <!-- --> notes")
    return Rubric(path, text)


# ---- verdicts -------------------------------------------------------------------------------------------------
class Verdict(BaseModel):
    """What the judge must reply, field for field."""

    model_config = ConfigDict(extra="forbid")

    completed: StrictBool
    score: StrictInt = Field(ge=1, le=5)
    reason: StrictStr

    @field_validator("reason")
    @classmethod
    def _one_line(cls, reason: str) -> str:
        line = " ".join(reason.split())
        if not line:
            raise ValueError("empty")
        return line


class VerdictError(ValueError):
    """A judge reply that is not a usable verdict; the message says why."""


def parse_verdict(reply: str) -> Verdict:
    """The verdict in ``reply``: one JSON object, optionally in a code fence; ``VerdictError`` otherwise."""
    text = reply.strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise VerdictError("the reply was empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise VerdictError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise VerdictError(f"a JSON {type(data).__name__}, not an object")
    try:
        return Verdict.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'verdict'}: {e['msg']}" for e in exc.errors())
        raise VerdictError(problems) from None


@dataclass
class Judgement:
    """One answer's grade: a verdict, or ``error == "judge_error"`` with the judge's last raw reply."""

    completed: bool | None = None
    score: int | None = None
    reason: str = ""
    error: str | None = None
    raw: str | None = None
    retried: bool = False

    @classmethod
    def of(cls, verdict: Verdict, retried: bool) -> Judgement:
        return cls(verdict.completed, verdict.score, verdict.reason, retried=retried)

    @classmethod
    def failed(cls, why: str, raw: str, retried: bool) -> Judgement:
        return cls(reason=why, error=JUDGE_ERROR, raw=raw, retried=retried)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- the prompt -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    title: str
    text: str  # with its heading line


def policy_sections(policy: str) -> list[Section]:
    """The policy split before each ``#``-``###`` heading; text before the first heading has title ""."""
    sections: list[Section] = []
    title = ""
    lines: list[str] = []
    for line in policy.splitlines():
        heading = HEADING.match(line)
        if heading and lines:
            sections.append(Section(title, "\n".join(lines).strip()))
            lines = []
        if heading:
            title = heading.group(1)
        lines.append(line)
    if "\n".join(lines).strip():
        sections.append(Section(title, "\n".join(lines).strip()))
    return [s for s in sections if s.text]


def policy_passages(policy: str, rules: CaseRules | None, about: str, budget: int, intent: str | None) -> str:
    """What the judge is shown of the policy for one case (see the module's decisions)."""
    if not policy.strip():
        return ""
    sections = policy_sections(policy)
    if rules is not None and rules.policy:
        by_title = {s.title.lower(): s for s in sections}
        missing = [title for title in rules.policy if title.lower() not in by_title]
        if missing:
            known = ", ".join(s.title for s in sections if s.title)
            raise ConfigError(f"cases: {intent}: policy: no section {', '.join(missing)} in the policy; it has {known}")
        return "\n\n".join(by_title[title.lower()].text for title in rules.policy)
    if len(policy) <= budget:
        return policy.strip()
    words = set(WORD.findall(about.lower()))
    vocabularies = [set(WORD.findall(s.text.lower())) for s in sections]
    overlap = [sum(idf(word, vocabularies) for word in words & vocabulary) for vocabulary in vocabularies]
    chosen, used = [], 0
    for index in sorted(range(len(sections)), key=lambda i: -overlap[i]):
        if overlap[index] <= 0:
            break
        if used + len(sections[index].text) <= budget:
            chosen.append(index)
            used += len(sections[index].text)
    return "\n\n".join(sections[i].text for i in sorted(chosen))


def idf(word: str, vocabularies: Sequence[set[str]]) -> float:
    """How rare ``word`` is across the sections: 0 when every section has it."""
    return math.log(len(vocabularies) / max(1, sum(1 for vocabulary in vocabularies if word in vocabulary)))


def conversation_text(prompt: Sequence[Message]) -> str:
    return "\n\n".join(f"{ROLES.get(m['role'], m['role'])}: {m['content']}" for m in prompt if m["role"] != "system")


def rules_text(intent: str | None, rules: CaseRules | None) -> str:
    if rules is None:
        return f"No rules for this case (intent: {intent or 'unknown'}): judge by the rubric, reference and policy."
    lines = [f"Intent: {intent}"]
    if rules.description:
        lines.append(f"What a correct answer does: {rules.description}")
    if rules.require:
        lines.append("Required (each line: at least one of these, written as search patterns):")
        lines += [f"- {' | '.join(group)}" for group in rules.require]
    lines.append("Forbidden claims:" if rules.forbid else "Forbidden claims: none listed")
    lines += [f"- {pattern}" for pattern in rules.forbid]
    lines.append(f"Escalation to a human expected: {'yes' if rules.escalate else 'no'}")
    if rules.policy:
        lines.append(f"Policy sections to follow: {', '.join(rules.policy)}")
    return "\n".join(lines)


def case_text(example: Example, answer: str, rules: CaseRules | None, passages: str) -> str:
    """The user message that puts one case before the judge, without the reply format."""
    blocks = {
        "conversation": conversation_text(example.prompt),
        "reference_answer": example.reference,
        "case_rules": rules_text(example.intent, rules),
        "policy": passages or "No policy passages were given.",
        "candidate_answer": answer if answer.strip() else "(empty)",
    }
    body = "\n\n".join(f"<{tag}>\n{text}\n</{tag}>" for tag, text in blocks.items())
    return f"Grade the candidate answer to the customer's last message in the conversation.\n\n{body}"


def judge_messages(rubric: Rubric, case: str) -> list[Message]:
    return [{"role": "system", "content": rubric.text}, {"role": "user", "content": f"{case}\n\n{ASK}"}]


def retry_messages(rubric: Rubric, case: str, reply: str, problem: str) -> list[Message]:
    """The case again, with the unusable reply and what was wrong with it, in one message."""
    reminder = (
        f"<your_previous_reply>\n{reply}\n</your_previous_reply>\n\n"
        f"That reply could not be read as a verdict: {problem}. {ASK}"
    )
    return [{"role": "system", "content": rubric.text}, {"role": "user", "content": f"{case}\n\n{reminder}"}]


# ---- grading ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    kappa: float | None
    cases: int  # graded by both the rules and the judge
    note: str | None = None


def agreement(rules: Sequence[bool | None], judge: Sequence[bool | None]) -> Agreement:
    """Cohen's kappa between the rule-based and the judge's completion, over the cases both graded."""
    pairs = [(r, j) for r, j in zip(rules, judge, strict=True) if r is not None and j is not None]
    if len(pairs) < 2:
        return Agreement(None, len(pairs), "fewer than two cases graded by both the rules and the judge")
    if len({value for pair in pairs for value in pair}) < 2:
        return Agreement(None, len(pairs), "undefined: the rules and the judge gave one and the same label throughout")
    from sklearn.metrics import cohen_kappa_score

    kappa = float(cohen_kappa_score([r for r, _ in pairs], [j for _, j in pairs]))
    return Agreement(None if math.isnan(kappa) else kappa, len(pairs), "undefined" if math.isnan(kappa) else None)


@dataclass
class JudgedBackend:
    """The judge's grades of one backend's answers, next to the rules' verdicts on the same answers."""

    judgements: list[Judgement]
    rules: list[bool | None]
    cache_hits: int = 0
    generated: int = 0

    def completion_rate(self) -> float | None:
        verdicts = [j.completed for j in self.judgements if j.completed is not None]
        return sum(verdicts) / len(verdicts) if verdicts else None

    def mean_score(self) -> float | None:
        scores = [j.score for j in self.judgements if j.score is not None]
        return statistics.fmean(scores) if scores else None

    def summary(self) -> dict[str, Any]:
        agreed = agreement(self.rules, [j.completed for j in self.judgements])
        errors = sum(1 for j in self.judgements if j.error)
        return {
            "judged": len(self.judgements),
            "judge_errors": errors,
            "retried": sum(1 for j in self.judgements if j.retried),
            "completion_rate": self.completion_rate(),
            "mean_score": self.mean_score(),
            "kappa_vs_rules": agreed.kappa,
            "kappa_cases": agreed.cases,
            "kappa_note": agreed.note,
            "cache": {"hits": self.cache_hits, "generated": self.generated},
        }


@dataclass
class JudgeRun:
    """Who judged, by which rubric, and the grades per judged backend."""

    backend: str
    description: dict[str, Any]
    rubric: Rubric
    by_backend: dict[str, JudgedBackend] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        rules = [r for judged in self.by_backend.values() for r in judged.rules]
        verdicts = [j.completed for judged in self.by_backend.values() for j in judged.judgements]
        pooled = agreement(rules, verdicts)
        return {
            "backend": self.backend,
            "description": self.description,
            "rubric": str(self.rubric.path),
            "rubric_sha256": self.rubric.sha256,
            "backends": list(self.by_backend),
            "kappa_vs_rules": pooled.kappa,
            "kappa_cases": pooled.cases,
            "kappa_note": pooled.note,
        }


async def judge_cases(
    backend: Backend,
    name: str,
    rubric: Rubric,
    cases: Sequence[str],
    params: GenerationParams,
    cache: GenerationCache,
    concurrency: int,
    advance: Callable[[int], None] = lambda n: None,
) -> tuple[list[Judgement], list[bool]]:
    """A judgement per case text, asking again once where the reply was unusable; and which calls were cached."""
    first = await generate_all(
        backend, name, [judge_messages(rubric, c) for c in cases], params, cache, concurrency, advance
    )
    judgements: list[Judgement | None] = [None] * len(cases)
    retries: list[tuple[int, list[Message]]] = []
    for index, (case, reply) in enumerate(zip(cases, first, strict=True)):
        if reply.error:
            judgements[index] = Judgement.failed(reply.error, reply.answer, retried=False)
            continue
        try:
            judgements[index] = Judgement.of(parse_verdict(reply.answer), retried=False)
        except VerdictError as exc:
            retries.append((index, retry_messages(rubric, case, reply.answer, str(exc))))
    second = await generate_all(backend, name, [m for _, m in retries], params, cache, concurrency)
    for (index, _), reply in zip(retries, second, strict=True):
        if reply.error:
            judgements[index] = Judgement.failed(reply.error, reply.answer, retried=True)
            continue
        try:
            judgements[index] = Judgement.of(parse_verdict(reply.answer), retried=True)
        except VerdictError as exc:
            judgements[index] = Judgement.failed(str(exc), reply.answer, retried=True)
    return [j for j in judgements if j is not None], [g.cached for g in [*first, *second]]


def judge_params(spec: JudgeSpec) -> GenerationParams:
    """Greedy, with room for the verdict."""
    return GenerationParams(
        max_new_tokens=spec.max_new_tokens, temperature=0.0, top_p=1.0, top_k=50, repetition_penalty=1.0, seed=0
    )


def judge_settings(spec: JudgeSpec) -> Settings:
    """The judge's settings: ``spec.settings`` on top of the environment; a typo fails, optional judge or not."""
    try:
        return load_settings(**{"context_window": JUDGE_CONTEXT_WINDOW, **spec.settings, "backend": spec.backend})
    except ConfigError as exc:
        raise ConfigError(f"judge.settings: {exc}") from None


def load_judge(spec: JudgeSpec, settings: Settings) -> Backend:
    """The judge's backend; ``ConfigError`` when its configuration (a deployment, a key...) is missing."""
    backend_class(spec.backend).prepare(settings, lambda message: None)
    return load_backend(spec.backend, settings)


def run_judge(
    suite: Suite,
    backend: Backend,
    examples: Sequence[Example],
    results: Sequence[BackendResult],
    cases: dict[str, CaseRules],
    policy: str,
    cache: GenerationCache,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> JudgeRun:
    """Grade the answers of the suite's judged backends; each result gets its ``judge`` and judge scores."""
    spec = suite.judge
    assert spec is not None, "run_judge needs a suite with a judge"
    rubric = load_rubric(spec.rubric)
    params = judge_params(spec)
    concurrency = spec.concurrency or (suite.concurrency if spec.backend in REMOTE_BACKENDS else 1)
    run = JudgeRun(spec.backend, backend.describe(), rubric)
    passages = []
    for example in examples:
        rules = cases.get(example.intent or "")
        about = conversation_text(example.prompt) + "\n" + example.reference
        passages.append(policy_passages(policy, rules, about, spec.max_policy_chars, example.intent))
    for result in results:
        if spec.backends is not None and result.name not in spec.backends:
            continue
        texts = [
            case_text(example, generation.answer, cases.get(example.intent or ""), shown)
            for example, generation, shown in zip(examples, result.generations, passages, strict=True)
        ]
        advance = progress(f"judge {result.name}", len(texts)) if progress else (lambda n: None)
        name = f"judge:{spec.backend}"
        judgements, cached = asyncio.run(judge_cases(backend, name, rubric, texts, params, cache, concurrency, advance))
        hits = sum(cached)
        judged = JudgedBackend(judgements, list(result.completion), hits, len(cached) - hits)
        result.judge = judged
        for metric, value in (("judge_completion", judged.completion_rate()), ("judge_score", judged.mean_score())):
            if value is not None:
                result.scores[metric] = Score(metric, value, direction="higher", aggregation="mean")
        run.by_backend[result.name] = judged
    return run
