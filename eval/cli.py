"""``tunedesk eval ...``: run a suite, compare runs, list the history, re-render a report, human ratings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tunedesk.console import err, friendly_errors
from tunedesk.settings import load_settings

if TYPE_CHECKING:
    from eval.human import HumanReport
    from eval.tasks import TaskSuite

app = typer.Typer(
    help="Evaluate backends on a test split: scores, report, history, regression gate.", no_args_is_help=True
)
out = Console()
REGRESSION_EXIT = 3
SECTIONS_FILE = "sections.html"  # a task suite's extra report sections (confusion matrices...)


def _history() -> Any:
    from eval.history import History
    from tunedesk.db import engine

    return History(engine(load_settings()))


def _trend(history: Any, suite: str, limit: int = 10) -> list[tuple[str, dict[str, dict[str, float]]]]:
    runs = list(reversed(history.runs(suite, limit=limit)))
    return [(run["run_id"], history.scores(run["run_id"])) for run in runs]


@app.command()
@friendly_errors
def run(
    suite_file: Annotated[Path, typer.Argument(help="Suite YAML, e.g. eval/suites/support-nightly.yaml.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where run directories go.")] = Path("runs/eval"),
    baseline: Annotated[str | None, typer.Option(help="Compare with this run: an id, a directory, or 'last'.")] = None,
    fail_on_regression: Annotated[
        bool, typer.Option(help=f"Exit {REGRESSION_EXIT} when a metric moves past its threshold.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations of the split.")] = None,
    only: Annotated[list[str] | None, typer.Option("--backend", help="Only these backends of the suite.")] = None,
    judge: Annotated[bool, typer.Option(help="Let the suite's LLM judge grade the answers, if it has one.")] = True,
) -> None:
    """Generate (cached) and score every backend of a suite; write results.json, examples.jsonl, report.html.

    Example: tunedesk eval run eval/suites/support-nightly.yaml --baseline last --fail-on-regression"""
    from eval.harness import example_rows, run_suite
    from eval.suite import load_suite
    from eval.tasks import TaskSuite
    from tunedesk.models import sha256_file

    suite = load_suite(suite_file)
    if isinstance(suite, TaskSuite):
        _run_task_suite(suite, suite_file, out_dir, baseline, fail_on_regression, limit, only)
        return
    if limit is not None:
        suite.dataset.limit = limit
    suite.backends = _only(suite.backends, only, "backend", suite_file)
    with _progress() as progress:
        result = run_suite(suite, progress=progress, judge=judge)
    rows = example_rows(result)
    summaries = {r.name: r.summary() for r in result.results}
    results: dict[str, Any] = {
        "suite": suite.name,
        "suite_file": str(suite_file),
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "examples": len(result.examples),
        "dataset": {"path": str(result.dataset), "sha256": sha256_file(result.dataset), "turns": suite.dataset.turns},
        "generation": suite.generation.model_dump(),
        "metrics": suite.metrics,
        "thresholds": suite.thresholds,
        "primary_metric": suite.primary_metric,
        "backends": summaries,
        "skipped": result.skipped,
    }
    if result.judge is not None:
        results["judge"] = result.judge.summary()
    directory, deltas = _record(results, rows, result.started_at, out_dir, baseline)
    _print_summary(summaries, suite.primary_metric)
    _print_judge(summaries)
    for name, why in result.skipped.items():
        err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    for backend_result in result.results:
        for metric, why in backend_result.skipped_metrics.items():
            err.print(f"[yellow]no {metric}[/] for {backend_result.name}: {why}", highlight=False)
    _finish(directory, deltas, fail_on_regression)


def _only(entries: list[Any], names: list[str] | None, what: str, suite_file: Path) -> list[Any]:
    """The suite's backends (or models) named by ``--backend``; all of them without it."""
    from tunedesk.errors import ConfigError

    if not names:
        return entries
    unknown = set(names) - {entry.name for entry in entries}
    if unknown:
        raise ConfigError(f"{suite_file}: no {what} named {', '.join(sorted(unknown))}")
    return [entry for entry in entries if entry.name in names]


@contextmanager
def _progress() -> Iterator[Any]:
    """A rich progress display; ``progress(label, total)`` adds a bar and returns its advance callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:

        def progress(label: str, total: int) -> Any:
            task = bar.add_task(label, total=total)
            return lambda n: bar.advance(task, n)

        yield progress


def _run_task_suite(
    suite: TaskSuite,
    suite_file: Path,
    out_dir: Path,
    baseline: str | None,
    fail_on_regression: bool,
    limit: int | None,
    only: list[str] | None,
) -> None:
    """A sentiment, summarization or captioning suite: its task module scores models; recorded like a chat run."""
    from eval.tasks import example_rows, run_task
    from tunedesk.models import sha256_file

    if limit is not None:
        suite.dataset.limit = limit
    suite.models = _only(suite.models, only, "model", suite_file)
    started = datetime.now(UTC)
    with _progress() as progress:
        run = run_task(suite, progress)
    rows = example_rows(run)
    summaries = {r.name: r.summary() for r in run.results}
    results: dict[str, Any] = {
        "suite": suite.name,
        "task": suite.task,
        "suite_file": str(suite_file),
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "examples": len(run.examples),
        "dataset": {"path": str(run.dataset), "sha256": sha256_file(run.dataset)},
        "options": suite.options,
        "metrics": sorted({m for r in run.results for m in r.scores}),
        "thresholds": suite.thresholds,
        "primary_metric": suite.primary_metric,
        "backends": summaries,
        "skipped": run.skipped,
    }
    directory, deltas = _record(results, rows, started, out_dir, baseline, sections=run.sections)
    _print_summary(summaries, suite.primary_metric)
    for name, why in run.skipped.items():
        err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    _finish(directory, deltas, fail_on_regression)


def _record(
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    started_at: datetime,
    out_dir: Path,
    baseline: str | None,
    sections: list[str] | None = None,
) -> tuple[Path, list[Any] | None]:
    """Give the run an id, compare it with its baseline, write its directory and record it in the history."""
    from eval.history import flat_metrics
    from eval.report import render
    from tunedesk.errors import ConfigError
    from tunedesk.files import atomic_writer, write_text_atomically

    suite = results["suite"]
    history = _history()
    stem = run_id = f"{started_at.strftime('%Y%m%dT%H%M%S')}-{suite}"
    taken = {run["run_id"] for run in history.runs(suite, limit=50)}
    suffix = 0
    while run_id in taken:  # two runs in one second
        suffix += 1
        run_id = f"{stem}-{suffix}"
    results = {"run_id": run_id, **results}
    directory = out_dir / run_id
    deltas, baseline_id, base = None, None, None
    if baseline:
        try:
            base = history.resolve(baseline, suite, before=run_id)
        except ConfigError:
            if baseline != "last":
                raise
            err.print(f"no earlier run of {suite}: this run becomes the baseline")
    if base is not None:
        baseline_id = base["run_id"]
        current = {name: flat_metrics(summary) for name, summary in results["backends"].items()}
        deltas = history.compare_with(base, current, rows, results["thresholds"])
        results["baseline"] = baseline_id
        results["regressions"] = [
            {"backend": d.backend, "metric": d.metric, "baseline": d.baseline, "current": d.current,
             "threshold": d.threshold}
            for d in deltas
            if d.regressed
        ]  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_writer(directory / "examples.jsonl") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if sections:
        write_text_atomically(directory / SECTIONS_FILE, "\n".join(sections))
    write_text_atomically(directory / "results.json", json.dumps(results, indent=2) + "\n")
    history.record(run_id, suite, started_at, directory, results)
    write_text_atomically(
        directory / "report.html",
        render(results, rows, deltas=deltas, baseline_id=baseline_id, history=_trend(history, suite),
               primary_metric=results["primary_metric"], human=_human_for(directory), sections=sections),
    )  # fmt: skip
    return directory, deltas


def _finish(directory: Path, deltas: list[Any] | None, fail_on_regression: bool) -> None:
    err.print(f"report: {directory / 'report.html'}")
    typer.echo(str(directory))
    if deltas is not None:
        regressed = [d for d in deltas if d.regressed]
        for d in regressed:
            err.print(
                f"[bold red]regression[/] {d.backend} {d.metric}: {d.baseline:.4f} -> {d.current:.4f} "
                f"(threshold {d.threshold}, p={d.p_value if d.p_value is not None else '-'})",
                highlight=False,
            )
        if regressed and fail_on_regression:
            raise typer.Exit(REGRESSION_EXIT)


def _print_summary(summaries: dict[str, Any], primary: str) -> None:
    from eval.history import flat_metrics

    flat = {name: flat_metrics(summary) for name, summary in summaries.items()}
    metrics = sorted({m for values in flat.values() for m in values})
    table = Table("metric", *summaries)
    for metric in metrics:
        table.add_row(metric, *(f"{flat[b][metric]:.4f}" if metric in flat[b] else "-" for b in summaries))
    table.add_row("cache hits", *(str(s["cache"]["hits"]) for s in summaries.values()))
    err.print(table)


def _print_judge(summaries: dict[str, Any]) -> None:
    for name, summary in summaries.items():
        judged = summary.get("judge")
        if judged is None:
            continue
        kappa = judged["kappa_vs_rules"]
        err.print(
            f"judge on {name}: completion {_number(judged['completion_rate'])}, mean score "
            f"{_number(judged['mean_score'], 2)}, kappa vs rules {_number(kappa)} over {judged['kappa_cases']} cases, "
            f"{judged['judge_errors']} judge errors, {judged['cache']['generated']} new judge calls",
            highlight=False,
        )


@app.command("compare")
@friendly_errors
def compare_runs(
    baseline: Annotated[str, typer.Argument(help="Baseline run: id or directory.")],
    candidate: Annotated[str, typer.Argument(help="Candidate run: id or directory.")],
) -> None:
    """Deltas per backend and metric, with paired-bootstrap p-values over the shared test cases.

    Example: tunedesk eval compare 20261101T020000-support-nightly 20261102T020000-support-nightly"""
    from eval.history import read_examples

    history = _history()
    a, b = history.resolve(baseline), history.resolve(candidate)
    thresholds = json.loads((Path(b["directory"]) / "results.json").read_text()).get("thresholds", {})
    deltas = history.compare_with(a, history.scores(b["run_id"]), read_examples(Path(b["directory"])), thresholds)
    table = Table("backend", "metric", a["run_id"], b["run_id"], "change", "p", "regressed", title="compare")
    for d in deltas:
        p = "-" if d.p_value is None else f"{d.p_value:.4f}"
        table.add_row(
            d.backend,
            d.metric,
            f"{d.baseline:.4f}",
            f"{d.current:.4f}",
            f"{d.change:+.4f}",
            p,
            "yes" if d.regressed else "",
        )
    out.print(table)


@app.command("history")
@friendly_errors
def list_history(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    metric: Annotated[str, typer.Option(help="Metric to show per backend.")] = "rougeL",
    limit: Annotated[int, typer.Option(help="How many of the newest runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Every run with all its scores, as JSON.")] = False,
) -> None:
    """List past runs, newest first, with one metric per backend.

    Example: tunedesk eval history --suite support-nightly --metric task_completion"""
    history = _history()
    if as_json:
        runs = [
            {**r, "started_at": str(r["started_at"]), "scores": history.scores(r["run_id"])}
            for r in history.runs(suite, limit)
        ]
        typer.echo(json.dumps(runs, indent=2))
        return
    table = Table("run", "suite", "started", metric, "directory")
    for record in history.runs(suite, limit):
        scores = history.scores(record["run_id"])
        shown = ", ".join(f"{b} {v[metric]:.3f}" for b, v in scores.items() if metric in v) or "-"
        table.add_row(record["run_id"], record["suite"], str(record["started_at"])[:19], shown, record["directory"])
    out.print(table)


@app.command("report")
@friendly_errors
def report(run_ref: Annotated[str, typer.Argument(help="Run id or directory.")]) -> None:
    """Render a run's report.html again (with the trend as the history now stands).

    Example: tunedesk eval report runs/eval/20261102T020000-support-nightly"""
    from eval.history import read_examples
    from eval.report import render
    from tunedesk.files import write_text_atomically

    history = _history()
    record = history.resolve(run_ref)
    directory = Path(record["directory"])
    results = json.loads((directory / "results.json").read_text())
    rows = read_examples(directory)
    deltas = None
    if results.get("baseline"):
        base = history.resolve(results["baseline"])
        deltas = history.compare_with(base, history.scores(record["run_id"]), rows, results.get("thresholds", {}))
    sections_file = directory / SECTIONS_FILE
    page = render(
        results,
        rows,
        deltas=deltas,
        baseline_id=results.get("baseline"),
        history=_trend(history, record["suite"]),
        primary_metric=results.get("primary_metric", "rougeL"),
        human=_human_for(directory),
        sections=[sections_file.read_text(encoding="utf-8")] if sections_file.is_file() else None,
    )
    write_text_atomically(directory / "report.html", page)
    typer.echo(str(directory / "report.html"))


def _run_directory(ref: str) -> Path:
    """A run directory given as a path, or as a run id from the history."""
    path = Path(ref)
    if path.is_dir():
        return path
    return Path(_history().resolve(ref)["directory"])


def _human_for(directory: Path) -> HumanReport | None:
    """The human ratings matched to the run in ``directory``, or None when people rated none of its answers."""
    from eval.human import human_report
    from tunedesk.db import engine

    found = human_report(engine(load_settings()), run=directory)
    return found if found.by_model else None


@app.command("human")
@friendly_errors
def human(
    since: Annotated[datetime | None, typer.Option(help="Only ratings and conversations from this time on.")] = None,
    run_ref: Annotated[
        str | None, typer.Option("--run", help="An eval run (directory or id): match ratings to its examples.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Everything, as JSON.")] = False,
) -> None:
    """Human ratings per model (means with 95% CIs, thumbs up), inter-rater agreement, correlation with a run's
    metrics, and live CSAT, resolution and escalation per backend and week.

    Example: tunedesk eval human --since 2026-11-01 --run runs/eval/20261102T020000-support-nightly"""
    from eval.human import human_report
    from tunedesk.console import local_time
    from tunedesk.db import engine

    directory = _run_directory(run_ref) if run_ref else None
    found = human_report(engine(load_settings()), local_time(since), directory)
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    _print_human(found)


def _interval(mean: float | None, low: float | None, high: float | None, n: int, percent: bool = False) -> str:
    if mean is None:
        return "-"
    show = (lambda v: f"{100 * v:.0f}%") if percent else (lambda v: f"{v:.2f}")
    spread = f" [{show(low)}, {show(high)}]" if low is not None and high is not None else ""
    return f"{show(mean)}{spread} n={n}"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_human(found: HumanReport) -> None:
    from eval.human import AXES

    if found.run:
        m = found.matched
        err.print(
            f"run {found.run}: {m['origin']} ratings matched by review item, {m['exact']} by exact answer, "
            f"{m['unmatched']} not of this run",
            highlight=False,
        )
    if not found.by_model:
        err.print("no ratings" + (f" of run {found.run}" if found.run else "") + (" since then" if found.since else ""))
    else:
        table = Table("backend", "model", *AXES, "thumbs up", title="Human ratings (mean [95% CI])")
        for entry in found.by_model:
            axes = (_interval(a.mean, a.ci_low, a.ci_high, a.n) for a in entry.axes.values())
            t = entry.thumbs
            table.add_row(entry.backend, entry.model or "-", *axes, _interval(t.ratio, t.ci_low, t.ci_high, t.n, True))
        out.print(table)
        table = Table("axis", "Krippendorff's alpha (ordinal)", "answers", "raters", "note", title="Agreement")
        for axis, a in found.agreement.items():
            table.add_row(axis, _number(a.alpha), str(a.units), str(a.raters), a.reason or "")
        out.print(table)
    if found.correlations:
        table = Table("metric", "axis", "n", "Spearman", "p", "Kendall", "p", "note", title="Metric vs people")
        for c in found.correlations:
            table.add_row(
                c.metric,
                c.axis,
                str(c.n),
                _number(c.spearman),
                _number(c.spearman_p, 4),
                _number(c.kendall),
                _number(c.kendall_p, 4),
                c.reason or "",
            )
        out.print(table)
    if not found.outcomes:
        err.print("no chat conversations" + (" since then" if found.since else ""))
        return
    table = Table(
        "week", "backend", "conversations", "surveys", "CSAT", "resolved", "escalated", "reasons", title="Live outcomes"
    )
    for w in found.outcomes:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(w.reasons.items())) or "-"
        table.add_row(
            w.week,
            w.backend,
            str(w.conversations),
            str(w.surveys),
            _interval(w.csat_mean, None, None, w.csat_n),
            _interval(w.resolution_rate, None, None, w.resolved_n, True),
            f"{w.escalated} ({100 * (w.escalation_rate or 0):.0f}%)",
            reasons,
        )
    out.print(table)
