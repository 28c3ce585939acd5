"""``report.html``: one self-contained page a person would rather look at than read.

It has, top to bottom: the verdict against the baseline, a metric table per backend, the LLM judge's
grades when the suite has a judge (with its agreement with the rules and the cases they disagree on), score
distributions, a latency histogram, the trend over the last runs, the human ratings of the run's answers
when people rated any (means with 95% CIs, agreement, correlation with the metrics), and the 20 worst
answers with what was asked, expected and flagged. Plots are matplotlib PNGs inlined as base64, so the
file can be mailed or archived as is.

Decisions:
- Human ratings are read from the database when the page is rendered, not stored in ``results.json``:
  ratings keep arriving after the run, and ``tunedesk eval report`` re-renders with the current ones.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eval.history import Delta, higher_is_better

if TYPE_CHECKING:
    from eval.human import HumanReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b}.muted{color:#777}.verdict{padding:.8rem 1rem;
border-radius:6px;font-weight:600}.pass{background:#e7f6ec}.fail{background:#fde8eb}img{max-width:100%}
pre{white-space:pre-wrap;margin:0;font-family:inherit}
"""


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distributions(rows: list[dict[str, Any]], backends: Sequence[str], metrics: Sequence[str]) -> str:
    plt = _plt()
    shown = [m for m in metrics if any(m in r["scores"] for r in rows)][:4]
    if not shown:
        return ""
    figure, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
    for axis, metric in zip(axes[0], shown, strict=True):
        for backend in backends:
            values = [r["scores"][metric] for r in rows if r["backend"] == backend and metric in r["scores"]]
            axis.hist(values, bins=20, alpha=0.5, label=backend)
        axis.set_title(metric)
    axes[0][0].legend(fontsize=8)
    return _png(figure)


def latency_histogram(rows: list[dict[str, Any]], backends: Sequence[str]) -> str:
    plt = _plt()
    figure, axis = plt.subplots(figsize=(7, 3.2))
    drawn = False
    for backend in backends:
        values = [r["latency"]["total_s"] for r in rows if r["backend"] == backend and r["latency"].get("total_s")]
        if values:
            axis.hist(values, bins=30, alpha=0.5, label=backend)
            drawn = True
    if not drawn:
        plt.close(figure)
        return ""
    axis.set_xlabel("seconds per answer")
    axis.legend(fontsize=8)
    return _png(figure)


def trend(points: list[tuple[str, dict[str, dict[str, float]]]], metric: str) -> str:
    """``points``: (run id, backend -> metric -> value), oldest first."""
    if len(points) < 2:
        return ""
    plt = _plt()
    figure, axis = plt.subplots(figsize=(7, 3.2))
    backends = sorted({b for _, scores in points for b in scores})
    for backend in backends:
        xs = [i for i, (_, scores) in enumerate(points) if metric in scores.get(backend, {})]
        axis.plot(xs, [points[i][1][backend][metric] for i in xs], marker="o", label=backend)
    axis.set_xticks(range(len(points)), [run[:16] for run, _ in points], rotation=30, fontsize=7)
    axis.set_title(f"{metric}, last {len(points)} runs")
    axis.legend(fontsize=8)
    return _png(figure)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return html.escape(str(value))


def render(
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    deltas: list[Delta] | None = None,
    baseline_id: str | None = None,
    history: list[tuple[str, dict[str, dict[str, float]]]] | None = None,
    primary_metric: str = "rougeL",
    human: HumanReport | None = None,
    sections: Sequence[str] | None = None,
) -> str:
    """The page; ``sections`` are a task suite's own HTML parts (confusion matrices, cross-validation...),
    placed after the metric table."""
    from eval.history import flat_metrics

    backends = list(results["backends"])
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(results['run_id'])}</title><style>{STYLE}</style>"
    ]
    parts.append(f"<h1>Evaluation: {html.escape(results['suite'])}</h1>")
    parts.append(
        f"<p class='muted'>run {html.escape(results['run_id'])} &middot; {results['examples']} test cases from "
        f"{html.escape(results['dataset']['path'])} &middot; {html.escape(results['started_at'])}</p>"
    )
    if results.get("skipped"):
        for name, why in results["skipped"].items():
            parts.append(f"<p class='muted'>skipped {html.escape(name)}: {html.escape(why)}</p>")
    if deltas is not None:
        regressions = [d for d in deltas if d.regressed]
        css, word = ("fail", "REGRESSION") if regressions else ("pass", "no regression")
        parts.append(f"<p class='verdict {css}'>{word} against {html.escape(baseline_id or '-')}</p>")
        parts.append("<table><tr><th>backend</th><th>metric</th><th>baseline</th><th>this run</th><th>change</th>"
                     "<th>p (paired bootstrap)</th><th>threshold</th></tr>")  # fmt: skip
        for d in deltas:
            better = (d.change > 0) == higher_is_better(d.metric)
            css = "bad" if d.regressed else ("good" if better and d.change != 0 else "")
            parts.append(
                f"<tr><td>{html.escape(d.backend)}</td><td>{html.escape(d.metric)}</td><td class=num>{_fmt(d.baseline)}"
                f"</td><td class=num>{_fmt(d.current)}</td><td class='num {css}'>{d.change:+.3f}</td>"
                f"<td class=num>{_fmt(d.p_value)}</td><td class=num>{_fmt(d.threshold)}</td></tr>"
            )
        parts.append("</table>")

    parts.append("<h2>Metrics</h2>")
    flat = {b: flat_metrics(results["backends"][b]) for b in backends}
    metrics = sorted({m for values in flat.values() for m in values})
    parts.append("<table><tr><th>metric</th>" + "".join(f"<th>{html.escape(b)}</th>" for b in backends) + "</tr>")
    for metric in metrics:
        arrow = "&uarr;" if higher_is_better(metric) else "&darr;"
        cells = "".join(f"<td class=num>{_fmt(flat[b].get(metric))}</td>" for b in backends)
        parts.append(f"<tr><td>{html.escape(metric)} {arrow}</td>{cells}</tr>")
    parts.append("</table>")
    for b in backends:
        for metric, why in results["backends"][b].get("skipped_metrics", {}).items():
            parts.append(f"<p class='muted'>no {html.escape(metric)} for {html.escape(b)}: {html.escape(why)}</p>")
    parts.append("<h3>Errors by kind (share of answers)</h3><table><tr><th>kind</th>")
    parts.append("".join(f"<th>{html.escape(b)}</th>" for b in backends) + "</tr>")
    kinds = results["backends"][backends[0]]["errors"]["by_kind"] if backends else {}
    for kind in kinds:
        cells = "".join(
            f"<td class=num>{_fmt(results['backends'][b]['errors']['by_kind'][kind])}</td>" for b in backends
        )
        parts.append(f"<tr><td>{html.escape(kind)}</td>{cells}</tr>")
    parts.append("</table>")
    parts.extend(sections or [])
    if results.get("judge"):
        parts.append(judge_section(results, rows))

    parts.append(
        "<h2>Score distributions</h2>"
        + distributions(rows, backends, [primary_metric, "chrf", "bleu", "semantic_similarity"])
    )
    parts.append("<h2>Latency</h2>")
    latency = latency_histogram(rows, backends)
    parts.append(latency or "<p class='muted'>every answer came from the cache; latencies are from earlier runs</p>")
    if history:
        parts.append(f"<h2>Trend</h2>{trend(history, primary_metric)}")
    if human is not None and human.by_model:
        parts.append(human_section(human))

    ranked_by = primary_metric
    if not any(primary_metric in r["scores"] for r in rows):  # an aggregate (macro F1): rank by a per-example score
        ranked_by = next((m for r in rows for m in r["scores"]), primary_metric)
    parts.append(f"<h2>Worst 20 answers by {html.escape(ranked_by)}</h2>")
    judged = any(row.get("judge") for row in rows)
    parts.append("<table><tr><th>backend</th><th>case</th><th>question</th><th>reference</th><th>answer</th>"
                 f"<th>{html.escape(ranked_by)}</th><th>flags</th>"
                 + ("<th>judge</th>" if judged else "") + "</tr>")  # fmt: skip
    ranked = sorted((r for r in rows if ranked_by in r["scores"]), key=lambda r: r["scores"][ranked_by])
    for row in ranked[:20]:
        question = next((m["content"] for m in reversed(row["prompt"]) if m["role"] == "user"), "")
        flags = ", ".join(row["errors"] + row["failed_rules"]) or "-"
        parts.append(
            f"<tr><td>{html.escape(row['backend'])}</td><td>{html.escape(row['id'])}<br><span class=muted>"
            f"{html.escape(row['intent'] or '')}</span></td><td><pre>{html.escape(question)}</pre></td>"
            f"<td><pre>{html.escape(row['reference'])}</pre></td><td><pre>{html.escape(row['answer'])}</pre></td>"
            f"<td class=num>{_fmt(row['scores'][ranked_by])}</td><td>{html.escape(flags)}</td>"
            + (f"<td>{_judgement(row.get('judge'))}</td>" if judged else "")
            + "</tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def _judgement(judgement: dict[str, Any] | None) -> str:
    if not judgement:
        return "-"
    if judgement.get("error"):
        return f"<span class=bad>judge error</span> <span class=muted>{html.escape(judgement['reason'])}</span>"
    word = "completed" if judgement["completed"] else "not completed"
    return f"{judgement['score']}/5 {word}<br><span class=muted>{html.escape(judgement['reason'])}</span>"


def _disagree(row: dict[str, Any]) -> bool:
    return row["task_completion"] is not None and row["task_completion"] != row["judge"]["completed"]


def judge_section(results: dict[str, Any], rows: list[dict[str, Any]], shown: int = 10) -> str:
    """The judge's grades per backend, its agreement with the rules, and the cases where they part ways."""
    judge = results["judge"]
    parts = [
        "<h2>LLM judge</h2>",
        f"<p class='muted'>graded by {html.escape(judge['backend'])} "
        f"{html.escape(str(judge['description'].get('deployment') or judge['description'].get('model') or ''))} with "
        f"the rubric {html.escape(judge['rubric'])} (sha256 {judge['rubric_sha256'][:12]}); agreement is Cohen's "
        f"kappa with the rule-based task completion, over the cases both graded</p>",
        "<table><tr><th>backend</th><th>completed</th><th>mean score (1-5)</th><th>kappa vs rules</th>"
        "<th>judge errors</th><th>asked twice</th></tr>",
    ]
    for name, summary in results["backends"].items():
        j = summary.get("judge")
        if j is None:
            continue
        kappa = f"{_fmt(j['kappa_vs_rules'])} <span class=muted>n={j['kappa_cases']}</span>"
        if j["kappa_note"]:
            kappa += f" <span class=muted>{html.escape(j['kappa_note'])}</span>"
        parts.append(
            f"<tr><td>{html.escape(name)}</td><td class=num>{_fmt(j['completion_rate'])}</td>"
            f"<td class=num>{_fmt(j['mean_score'])}</td><td class=num>{kappa}</td>"
            f"<td class='num{' bad' if j['judge_errors'] else ''}'>{j['judge_errors']} / {j['judged']}</td>"
            f"<td class=num>{j['retried']}</td></tr>"
        )
    parts.append("</table>")
    parted = [r for r in rows if r.get("judge") and (r["judge"]["error"] or _disagree(r))]
    if parted:
        parts.append(f"<h3>Where the judge and the rules disagree, or the judge failed (first {shown})</h3>")
        parts.append("<table><tr><th>backend</th><th>case</th><th>answer</th><th>rules</th><th>judge</th></tr>")
        for row in parted[:shown]:
            rules = "passed" if row["task_completion"] else ", ".join(row["failed_rules"]) or "-"
            parts.append(
                f"<tr><td>{html.escape(row['backend'])}</td><td>{html.escape(row['id'])}<br><span class=muted>"
                f"{html.escape(row['intent'] or '')}</span></td><td><pre>{html.escape(row['answer'])}</pre></td>"
                f"<td>{html.escape(rules)}</td><td>{_judgement(row['judge'])}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def human_means_plot(human: HumanReport) -> str:
    """Mean score per axis and model, with the 95% confidence interval as error bars."""
    from eval.human import AXES

    plt = _plt()
    figure, axis = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(len(human.by_model), 1)
    for index, entry in enumerate(human.by_model):
        shown = [
            (position, entry.axes[name]) for position, name in enumerate(AXES) if entry.axes[name].mean is not None
        ]
        means = [m.mean or 0.0 for _, m in shown]
        below = [m.mean - m.ci_low if m.mean is not None and m.ci_low is not None else 0.0 for _, m in shown]
        above = [m.ci_high - m.mean if m.mean is not None and m.ci_high is not None else 0.0 for _, m in shown]
        xs = [position + index * width for position, _ in shown]
        axis.bar(xs, means, width, yerr=[below, above], capsize=3, label=f"{entry.backend} ({entry.model or '-'})")
    axis.set_xticks([p + 0.4 - width / 2 for p in range(len(AXES))], list(AXES))
    axis.set_ylim(1, 5.5)
    axis.set_ylabel("mean rating (1-5)")
    axis.legend(fontsize=8)
    return _png(figure)


def _ci_cell(value: float | None, low: float | None, high: float | None, n: int) -> str:
    return f"<td class=num>{_fmt(value)} [{_fmt(low)}, {_fmt(high)}] <span class=muted>n={n}</span></td>"


def human_section(human: HumanReport) -> str:
    from eval.human import AXES

    m = human.matched
    parts = [
        "<h2>Human ratings</h2>",
        f"<p class='muted'>{m.get('origin', 0)} ratings of this run's review items, {m.get('exact', 0)} matched "
        "by the exact question and answer; mean of each answer's raters, 95% t-interval over answers; thumbs up "
        "with a Wilson interval</p>",
        "<table><tr><th>backend</th><th>model</th>"
        + "".join(f"<th>{a}</th>" for a in AXES)
        + "<th>thumbs up</th></tr>",
    ]
    for entry in human.by_model:
        means = "".join(_ci_cell(a.mean, a.ci_low, a.ci_high, a.n) for a in entry.axes.values())
        t = entry.thumbs
        parts.append(
            f"<tr><td>{html.escape(entry.backend)}</td><td>{html.escape(entry.model or '-')}</td>{means}"
            f"{_ci_cell(t.ratio, t.ci_low, t.ci_high, t.n)}</tr>"
        )
    parts.append("</table><h3>Agreement between raters (Krippendorff's alpha, ordinal)</h3><table>")
    parts.append("<tr><th>axis</th><th>alpha</th><th>answers</th><th>raters</th><th>note</th></tr>")
    for name, a in human.agreement.items():
        parts.append(
            f"<tr><td>{name}</td><td class=num>{_fmt(a.alpha)}</td><td class=num>{a.units}</td>"
            f"<td class=num>{a.raters}</td><td class=muted>{html.escape(a.reason or '')}</td></tr>"
        )
    parts.append("</table><h3>Automatic metrics against people (Spearman's &rho;, Kendall's &tau;)</h3><table>")
    parts.append("<tr><th>metric</th>" + "".join(f"<th>{a}</th>" for a in AXES) + "</tr>")
    by_metric: dict[str, dict[str, str]] = {}
    for c in human.correlations:
        by_metric.setdefault(c.metric, {})[c.axis] = (
            f"&rho; {_fmt(c.spearman)} (p {_fmt(c.spearman_p)}) &middot; &tau; {_fmt(c.kendall)}, n={c.n}"
            if c.reason is None
            else f"<span class=muted>{html.escape(c.reason)}</span>"
        )
    for metric, by_axis in by_metric.items():
        row = "".join(f"<td>{by_axis.get(a, '-')}</td>" for a in AXES)
        parts.append(f"<tr><td>{html.escape(metric)}</td>{row}</tr>")
    parts.append("</table>")
    parts.append(human_means_plot(human))
    return "\n".join(parts)
