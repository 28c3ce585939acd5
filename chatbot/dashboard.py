"""The admin page: the last 24 hours of the chat, hour by hour, from the database.

Decisions:
- The numbers come from tunedesk's records (answers, ratings, outcomes), not from the process's
  metrics: they survive restarts and add up across several server processes behind a load balancer.
- Hours are UTC buckets ending with the current hour; an hour without data is a gap in the line (not
  a zero that would look like a perfect or a disastrous hour).
- p95 latency is ``numpy.percentile`` (linear) over the hour's successful answers; the error rate is
  failed answers over all answers; thumbs ratio is up over all current thumbs; CSAT is the mean 1-5 of
  current surveys, resolution the share answering "yes"; escalations are counted by reason.
- The page is one HTML document with the plots inline (SVG), so it works with no static files and
  prints as it looks.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from sqlalchemy import Engine, select

from chatbot import store


@dataclass
class Hourly:
    """The last 24 hours; every list has one entry per hour (None where the hour has no data).

    ``day`` holds the same measures over the whole 24 hours."""

    hours: list[datetime]
    answers: list[int]
    p95_latency_s: list[float | None]
    error_rate: list[float | None]
    thumbs_up_ratio: list[float | None]
    csat: list[float | None]
    resolution_rate: list[float | None]
    escalations: dict[str, list[int]]
    day: dict[str, Any] = field(default_factory=dict)


def _bucket(moment: datetime, start: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int((moment - start).total_seconds() // 3600)


def _share(rows: Sequence[Any], hit: Callable[[Any], bool]) -> float | None:
    return sum(1 for row in rows if hit(row)) / len(rows) if rows else None


def _p95(rows: Sequence[Any]) -> float | None:
    import numpy as np

    times = [r.total_s for r in rows if not r.error and r.total_s is not None]
    return float(np.percentile(times, 95)) if times else None


def _csat(rows: Sequence[dict[str, Any]]) -> float | None:
    scores = [r["csat"] for r in rows if r["csat"] is not None]
    return sum(scores) / len(scores) if scores else None


def _resolution(rows: Sequence[dict[str, Any]]) -> float | None:
    return _share([r for r in rows if r["resolved"] is not None], lambda r: r["resolved"] == 1)


def _thumbs_up(rows: Sequence[dict[str, Any]]) -> float | None:
    return _share(rows, lambda r: r["thumbs"] == 1)


def _errors(rows: Sequence[Any]) -> float | None:
    return _share(rows, lambda r: bool(r.error))


REASONS: tuple[str, ...] = get_args(store.Escalation)  # user_request, bot_unsure, guardrail


def last_24_hours(engine: Engine, now: datetime | None = None) -> Hourly:
    """Hourly volume, p95 latency, error rate, thumbs ratio, CSAT, resolution and escalations."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    hours = [start + timedelta(hours=i) for i in range(24)]
    a = store.answers_table.c
    with engine.connect() as conn:
        answers = conn.execute(select(a.created_at, a.error, a.total_s).where(a.created_at >= start)).all()
    thumbs = store.ratings(engine, store.RatingFilter(since=start, kind="thumbs"))
    outcomes = store.outcomes(engine, since=start)
    surveys = [o for o in outcomes if o["kind"] == "survey"]
    escalations = [o for o in outcomes if o["kind"] == "escalation"]

    def per_hour(rows: Sequence[Any], when: Callable[[Any], datetime]) -> list[list[Any]]:
        buckets: list[list[Any]] = [[] for _ in hours]
        for row in rows:
            index = _bucket(when(row), start)
            if 0 <= index < len(hours):
                buckets[index].append(row)
        return buckets

    answered = per_hour(answers, lambda r: r.created_at)
    rated = per_hour(thumbs, lambda r: r["created_at"])
    surveyed = per_hour(surveys, lambda r: r["created_at"])
    escalated = per_hour(escalations, lambda r: r["created_at"])
    return Hourly(
        hours=hours,
        answers=[len(rows) for rows in answered],
        p95_latency_s=[_p95(rows) for rows in answered],
        error_rate=[_errors(rows) for rows in answered],
        thumbs_up_ratio=[_thumbs_up(rows) for rows in rated],
        csat=[_csat(rows) for rows in surveyed],
        resolution_rate=[_resolution(rows) for rows in surveyed],
        escalations={
            reason: [sum(1 for r in rows if r["reason"] == reason) for rows in escalated] for reason in REASONS
        },
        day={
            "answers": sum(len(rows) for rows in answered),
            "p95_latency_s": _p95([r for rows in answered for r in rows]),
            "error_rate": _errors([r for rows in answered for r in rows]),
            "thumbs_up_ratio": _thumbs_up([r for rows in rated for r in rows]),
            "csat": _csat([r for rows in surveyed for r in rows]),
            "resolution_rate": _resolution([r for rows in surveyed for r in rows]),
            "escalations": sum(len(rows) for rows in escalated),
        },
    )


def plot(data: Hourly) -> str:
    """The seven panels, as one inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x = list(range(len(data.hours)))
    ticks = x[::3]
    figure, axes = plt.subplots(4, 2, figsize=(11, 11))
    panels: list[tuple[str, list[Any], tuple[float, float] | None]] = [
        ("Answers per hour", data.answers, None),
        ("p95 time to answer (s)", data.p95_latency_s, None),
        ("Error rate", data.error_rate, (0, 1.05)),
        ("Thumbs up ratio", data.thumbs_up_ratio, (0, 1.05)),
        ("CSAT (1-5)", data.csat, (1, 5.1)),
        ("Resolution rate", data.resolution_rate, (0, 1.05)),
        ("Escalations to a human", [], None),
    ]
    for axis, (title, values, limits) in zip(axes.flat, panels, strict=False):
        axis.set_title(title, fontsize=10)
        axis.set_xticks(ticks, [data.hours[i].strftime("%H:00") for i in ticks], fontsize=8)
        axis.set_xlim(-0.5, len(x) - 0.5)
        if title == "Answers per hour":
            axis.bar(x, values, color="#4c72b0")
        elif title.startswith("Escalations"):
            bottom = [0] * len(x)
            for reason, color in zip(REASONS, ("#dd8452", "#c44e52", "#8172b3"), strict=True):
                counts = data.escalations[reason]
                axis.bar(x, counts, bottom=bottom, label=reason.replace("_", " "), color=color)
                bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
            axis.legend(fontsize=8)
        else:
            axis.plot(x, [float("nan") if v is None else v for v in values], marker="o", color="#4c72b0")
        if limits:
            axis.set_ylim(*limits)
        else:
            axis.set_ylim(bottom=0)
            axis.yaxis.set_major_locator(MaxNLocator(integer=title != "p95 time to answer (s)"))
    axes.flat[7].axis("off")
    axes[-1][0].set_xlabel("hour (UTC)")
    figure.tight_layout()
    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, searchable, selectable
        figure.savefig(out, format="svg")
    plt.close(figure)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _totals(day: dict[str, Any]) -> str:
    def show(value: float | None, pattern: str) -> str:
        return "no data" if value is None else pattern.format(value)

    rows = [
        ("answers", str(day["answers"])),
        ("p95 time to answer", show(day["p95_latency_s"], "{:.2f} s")),
        ("error rate", show(day["error_rate"], "{:.1%}")),
        ("thumbs up", show(day["thumbs_up_ratio"], "{:.1%}")),
        ("CSAT", show(day["csat"], "{:.2f} / 5")),
        ("resolved", show(day["resolution_rate"], "{:.1%}")),
        ("escalations", str(day["escalations"])),
    ]
    cells = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="totals">{cells}</table>'


def page(data: Hourly, signed_in_as: str) -> str:
    first, last = data.hours[0], data.hours[-1] + timedelta(hours=1)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunedesk: last 24 hours</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} .muted{{color:#666}}
.totals th{{text-align:left;font-weight:normal;color:#666;padding-right:1.5rem}} .totals td{{text-align:right}}</style>
</head>
<body>
<h1>Support chat: the last 24 hours</h1>
<p class="muted">{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC · {data.day["answers"]} answers ·
{data.day["escalations"]} escalations · signed in as {html.escape(signed_in_as)} ·
<a href="/">back to the chat</a> · <a href="/metrics">/metrics</a></p>
<h2>The whole day</h2>
{_totals(data.day)}
<h2>Hour by hour</h2>
<figure>{plot(data)}</figure>
</body></html>
"""
