"""Human ratings and live outcomes: what people said about the answers, next to what the metrics said.

Decisions:
- Sources are the chat's own records (``chatbot.store``): current ratings (a changed rating counts once),
  end-of-conversation surveys and escalations, and the answers table for the conversations themselves.
- The unit of a 1-5 score is the answer: each answer's raters are averaged first, then the mean and its
  95% confidence interval are taken over answers, since ratings of one answer are not independent draws.
  The interval is Student's t (``scipy.stats.ttest_1samp(...).confidence_interval``): closed form,
  deterministic and the usual one for means of Likert scores. It is not clipped to 1-5; with one answer
  there is none, with no spread it is the mean itself.
- Thumbs are one Bernoulli trial per rating; the share up has a Wilson score interval
  (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``), which stays sensible near 0 and 1.
- Inter-rater agreement is Krippendorff's alpha at the ordinal level (the ``krippendorff`` package, value
  domain 1-5) per axis, over answers rated by two or more distinct raters, pooled across backends: it
  describes the raters and the rubric, not a model. Fewer than two such answers, or no spread at all,
  give no alpha but a reason.
- Correlation with the automatic metrics (Spearman's rho and Kendall's tau-b from scipy, two-sided
  p-values) pairs each per-example score of an eval run (``examples.jsonl``) with the mean human score of
  the same example, pooled over the run's backends. A rating belongs to an example through its review
  item's origin (``eval:<run>:<example id>``, same backend) or, failing that, through the exact
  (question, answer) it snapshotted, narrowed to the rating's backend when several examples share them.
- With a run, the per-model table and alpha describe the ratings matched to that run, keyed by the run's
  backend names and models; without one, every current rating, keyed by the (backend, model) it judged.
- Live outcomes are per backend and ISO week (UTC) of a conversation's first answer: a conversation is a
  thread with at least one answer, and its surveys and escalations count in that same cohort, so each
  rate's numerator and denominator are the same conversations. ``since`` selects conversations that
  started at or after it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from chatbot.review import run_models
from chatbot.store import SCORES, RatingFilter, answers_table, outcomes, ratings
from tunedesk.errors import ConfigError

AXES = SCORES  # naturalness, correctness, helpfulness
CONFIDENCE = 0.95
DOMAIN = (1, 2, 3, 4, 5)
MIN_CORRELATION_PAIRS = 3


@dataclass(frozen=True)
class Judgement:
    """One current rating, attached to the answer (``unit``) it judged."""

    unit: Hashable
    backend: str
    model: str | None
    rater: str
    kind: str  # thumbs | scores
    scores: dict[str, int]
    thumbs: int | None


@dataclass
class Mean:
    n: int  # answers
    ratings: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass
class Share:
    n: int
    up: int
    ratio: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass
class ModelRatings:
    backend: str
    model: str | None
    axes: dict[str, Mean]
    thumbs: Share


@dataclass
class Agreement:
    alpha: float | None
    units: int  # answers rated by 2+ distinct raters
    raters: int
    reason: str | None = None


@dataclass
class Correlation:
    metric: str
    axis: str
    n: int
    spearman: float | None = None
    spearman_p: float | None = None
    kendall: float | None = None
    kendall_p: float | None = None
    reason: str | None = None


@dataclass
class WeekOutcomes:
    backend: str
    week: str  # ISO week, e.g. 2026-W47
    conversations: int
    surveys: int = 0
    csat_n: int = 0
    csat_mean: float | None = None
    resolved_n: int = 0  # surveys that answered "resolved?"
    resolution_rate: float | None = None
    escalated: int = 0  # conversations handed to a human
    escalation_rate: float | None = None
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class HumanReport:
    since: str | None
    run: str | None
    ratings: int
    by_model: list[ModelRatings]
    agreement: dict[str, Agreement]
    correlations: list[Correlation]
    matched: dict[str, int]
    outcomes: list[WeekOutcomes]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- statistics ---------------------------------------------------------------------------------------------
def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float | None, ...]:
    """(mean, low, high): the mean and its Student's t confidence interval."""
    if not values:
        return None, None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    if min(values) == max(values):
        return mean, mean, mean
    from scipy import stats

    interval = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return mean, float(interval.low), float(interval.high)


def wilson(up: int, n: int, confidence: float = CONFIDENCE) -> Share:
    if n == 0:
        return Share(0, 0, None, None, None)
    from scipy import stats

    interval = stats.binomtest(up, n).proportion_ci(confidence, method="wilson")
    return Share(n, up, up / n, float(interval.low), float(interval.high))


def _latest(judgements: Iterable[Judgement], axis: str) -> dict[Hashable, dict[str, int]]:
    """unit -> rater -> score on ``axis``; a rater's later judgement of the same unit wins."""
    found: dict[Hashable, dict[str, int]] = {}
    for judgement in judgements:
        value = judgement.scores.get(axis)
        if judgement.kind == "scores" and value is not None:
            found.setdefault(judgement.unit, {})[judgement.rater] = value
    return found


def axis_mean(judgements: Sequence[Judgement], axis: str) -> Mean:
    per_unit = _latest(judgements, axis)
    means = [statistics.fmean(by_rater.values()) for by_rater in per_unit.values()]
    mean, low, high = mean_interval(means)
    return Mean(len(means), sum(len(by_rater) for by_rater in per_unit.values()), mean, low, high)


def thumbs_share(judgements: Sequence[Judgement]) -> Share:
    latest: dict[tuple[Hashable, str], int] = {}
    for judgement in judgements:
        if judgement.kind == "thumbs" and judgement.thumbs is not None:
            latest[(judgement.unit, judgement.rater)] = judgement.thumbs
    return wilson(sum(latest.values()), len(latest))


def by_model(judgements: Sequence[Judgement]) -> list[ModelRatings]:
    groups: dict[tuple[str, str | None], list[Judgement]] = {}
    for judgement in judgements:
        groups.setdefault((judgement.backend, judgement.model), []).append(judgement)
    return [
        ModelRatings(backend, model, {axis: axis_mean(group, axis) for axis in AXES}, thumbs_share(group))
        for (backend, model), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or ""))
    ]


def krippendorff_alpha(per_unit: dict[Hashable, dict[str, int]]) -> Agreement:
    """Ordinal alpha over the units with 2+ distinct raters (``per_unit``: unit -> rater -> score)."""
    shared = {unit: by_rater for unit, by_rater in per_unit.items() if len(by_rater) >= 2}
    raters = sorted({rater for by_rater in shared.values() for rater in by_rater})
    if len(shared) < 2:
        return Agreement(None, len(shared), len(raters), f"needs 2+ answers rated by 2+ raters, found {len(shared)}")
    if len({value for by_rater in shared.values() for value in by_rater.values()}) < 2:
        return Agreement(None, len(shared), len(raters), "every rating is the same value: no variation to agree on")
    import krippendorff
    import numpy as np

    matrix = np.full((len(raters), len(shared)), np.nan)
    row_of = {rater: index for index, rater in enumerate(raters)}
    for column, by_rater in enumerate(shared.values()):
        for rater, value in by_rater.items():
            matrix[row_of[rater], column] = value
    alpha = float(krippendorff.alpha(reliability_data=matrix, value_domain=DOMAIN, level_of_measurement="ordinal"))
    return Agreement(alpha, len(shared), len(raters))


def agreement(judgements: Sequence[Judgement]) -> dict[str, Agreement]:
    return {axis: krippendorff_alpha(_latest(judgements, axis)) for axis in AXES}


def correlate(metric: str, axis: str, automatic: Sequence[float], human: Sequence[float]) -> Correlation:
    """Spearman's rho and Kendall's tau-b of paired values, with scipy's two-sided p-values."""
    n = len(automatic)
    if n < MIN_CORRELATION_PAIRS:
        return Correlation(metric, axis, n, reason=f"needs {MIN_CORRELATION_PAIRS}+ rated examples, found {n}")
    if len(set(automatic)) < 2 or len(set(human)) < 2:
        return Correlation(metric, axis, n, reason="one side is constant: no ranking to compare")
    from scipy import stats

    rho = stats.spearmanr(automatic, human)
    tau = stats.kendalltau(automatic, human)
    return Correlation(metric, axis, n, float(rho.statistic), float(rho.pvalue), float(tau.statistic),
                       float(tau.pvalue))  # fmt: skip


def automatic_scores(row: dict[str, Any]) -> dict[str, float]:
    """Every per-example automatic score of an eval row: text and model metrics, and task completion."""
    values = {name: float(value) for name, value in row.get("scores", {}).items() if value is not None}
    if row.get("task_completion") is not None:
        values["task_completion"] = float(row["task_completion"])
    return values


def correlations(rows: Sequence[dict[str, Any]], judgements: Sequence[Judgement]) -> list[Correlation]:
    """Each automatic metric of ``rows`` against each human axis, over the examples people rated."""
    by_unit = {(row["backend"], row["id"]): automatic_scores(row) for row in rows}
    metrics = sorted({metric for scores in by_unit.values() for metric in scores})
    found = []
    for axis in AXES:
        human = {unit: statistics.fmean(r.values()) for unit, r in _latest(judgements, axis).items() if unit in by_unit}
        for metric in metrics:
            pairs = [(by_unit[unit][metric], value) for unit, value in human.items() if metric in by_unit[unit]]
            found.append(correlate(metric, axis, [a for a, _ in pairs], [h for _, h in pairs]))
    return found


# ---- ratings from the store ---------------------------------------------------------------------------------
def _judgement(rating: dict[str, Any], unit: Hashable, backend: str | None, model: str | None) -> Judgement:
    return Judgement(
        unit=unit,
        backend=backend or "-",
        model=model,
        rater=rating["rater"],
        kind=rating["kind"],
        scores={axis: rating[axis] for axis in AXES if rating.get(axis) is not None},
        thumbs=rating.get("thumbs"),
    )


def rating_judgements(rows: Sequence[dict[str, Any]]) -> list[Judgement]:
    """Ratings as they were given: one answer per ``message_id``, keyed by the (backend, model) judged."""
    return [_judgement(r, r["message_id"], r["backend"], r["model"]) for r in rows]


def _question(prompt: Any) -> str:
    if isinstance(prompt, list):
        return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    return str(prompt)


def eval_origins(engine: Engine, run_name: str) -> dict[str, tuple[str, str]]:
    """Review item id -> (backend, example id) for the items made from the eval run ``run_name``."""
    from chatbot.review import items_table

    prefix = f"eval:{run_name}:"
    i = items_table.c
    with engine.connect() as conn:
        found = conn.execute(select(i.id, i.backend, i.origin).where(i.origin.like(prefix + "%"))).all()
    return {item: (backend, origin[len(prefix) :]) for item, backend, origin in found if origin.startswith(prefix)}


def match_run(
    rated: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    origins: dict[str, tuple[str, str]],
    models: dict[str, str | None],
) -> tuple[list[Judgement], dict[str, int]]:
    """Ratings attached to the run's examples: by review-item origin, else by exact (question, answer)."""
    by_example = {(row["backend"], row["id"]): row for row in rows}
    by_text: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_text.setdefault((_question(row["prompt"]), row["answer"]), []).append(row)
    judgements, counts = [], Counter({"origin": 0, "exact": 0, "unmatched": 0})
    for rating in rated:
        target = origins.get(rating["message_id"])
        if target in by_example:
            matched, how = [by_example[target]], "origin"
        else:
            candidates = by_text.get((rating["prompt"] or "", rating["answer"] or ""), [])
            matched = [row for row in candidates if row["backend"] == rating["backend"]] or candidates
            how = "exact" if matched else "unmatched"
        counts[how] += 1
        for row in matched:
            judgements.append(
                _judgement(rating, (row["backend"], row["id"]), row["backend"], models.get(row["backend"]))
            )
    return judgements, dict(counts)


# ---- live outcomes ------------------------------------------------------------------------------------------
def iso_week(moment: datetime) -> str:
    year, week, _ = _utc(moment).isocalendar()
    return f"{year}-W{week:02d}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def conversation_cohorts(engine: Engine, since: datetime | None = None) -> dict[str, tuple[str, str]]:
    """Thread -> (backend, ISO week) of its first answer, for threads whose first answer is at/after ``since``."""
    a = answers_table.c
    thread = func.coalesce(a.thread_id, a.message_id)
    query = select(thread, a.backend, a.created_at).order_by(a.created_at, a.message_id)
    if since is not None:
        started = select(thread).group_by(thread).having(func.min(a.created_at) >= since)
        query = query.where(thread.in_(started))
    cohorts: dict[str, tuple[str, str]] = {}
    with engine.connect() as conn:
        for thread_id, backend, created_at in conn.execute(query):
            cohorts.setdefault(thread_id, (backend, iso_week(created_at)))
    return cohorts


def live_outcomes(engine: Engine, since: datetime | None = None) -> list[WeekOutcomes]:
    """Conversations, surveys, CSAT, resolution and escalation per backend and ISO week."""
    cohorts = conversation_cohorts(engine, since)
    weeks: dict[tuple[str, str], WeekOutcomes] = {}
    for backend, week in cohorts.values():
        weeks.setdefault((backend, week), WeekOutcomes(backend, week, 0)).conversations += 1
    csat: dict[tuple[str, str], list[int]] = {}
    resolved: dict[tuple[str, str], list[int]] = {}
    escalated: dict[tuple[str, str], set[str]] = {}
    for outcome in outcomes(engine, since=since):  # a conversation's outcomes come after it started
        cohort = cohorts.get(outcome["thread_id"])
        if cohort is None:  # a conversation outside the window, or one the bot never answered
            continue
        summary = weeks[cohort]
        if outcome["kind"] == "survey":
            summary.surveys += 1
            if outcome["csat"] is not None:
                csat.setdefault(cohort, []).append(outcome["csat"])
            if outcome["resolved"] is not None:
                resolved.setdefault(cohort, []).append(outcome["resolved"])
        elif outcome["kind"] == "escalation":
            escalated.setdefault(cohort, set()).add(outcome["thread_id"])
            reason = outcome["reason"] or "unknown"
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
    for cohort, summary in weeks.items():
        scores, answers = csat.get(cohort, []), resolved.get(cohort, [])
        summary.csat_n, summary.csat_mean = len(scores), statistics.fmean(scores) if scores else None
        summary.resolved_n, summary.resolution_rate = len(answers), statistics.fmean(answers) if answers else None
        summary.escalated = len(escalated.get(cohort, ()))
        summary.escalation_rate = summary.escalated / summary.conversations
    return [weeks[key] for key in sorted(weeks, key=lambda key: (key[1], key[0]))]


# ---- the whole report ---------------------------------------------------------------------------------------
def human_report(engine: Engine, since: datetime | None = None, run: Path | None = None) -> HumanReport:
    """Ratings (per model, agreement, correlation with ``run``'s metrics) and live outcomes since ``since``."""
    from eval.history import read_examples

    since = _utc(since) if since is not None else None  # stored times are UTC
    rated = ratings(engine, RatingFilter(since=since))
    correlated: list[Correlation] = []
    matched: dict[str, int] = {}
    if run is None:
        judgements = rating_judgements(rated)
    else:
        if not run.is_dir():
            raise ConfigError(f"{run}: not a directory; pass the directory of a `tunedesk eval run`")
        rows = read_examples(run)
        judgements, matched = match_run(rated, rows, eval_origins(engine, run.name), run_models(run / "results.json"))
        correlated = correlations(rows, judgements)
    return HumanReport(
        since=since.isoformat() if since else None,
        run=run.name if run else None,
        ratings=len(rated) if run is None else matched["origin"] + matched["exact"],
        by_model=by_model(judgements),
        agreement=agreement(judgements),
        correlations=correlated,
        matched=matched,
        outcomes=live_outcomes(engine, since),
    )
