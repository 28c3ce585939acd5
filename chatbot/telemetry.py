"""The chat's Prometheus metrics, served on ``/metrics`` by ``chatbot.server``.

Latency buckets span a cached echo (milliseconds) to a slow CPU model answering at length (a minute).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
ANSWER_SECONDS = Histogram("tunedesk_answer_seconds", "Time to the whole answer", ["backend"], buckets=SECONDS)
TTFT_SECONDS = Histogram("tunedesk_ttft_seconds", "Time to the first streamed piece", ["backend"], buckets=SECONDS)
TOKENS = Counter("tunedesk_streamed_tokens", "Pieces streamed to the UI (one per token for local models)", ["backend"])
ERRORS = Counter("tunedesk_answer_errors", "Answers that failed, by kind", ["backend", "kind"])
RATINGS = Counter("tunedesk_ratings", "Ratings stored, by what was rated and the score", ["field", "score"])


def count_rating(row: dict) -> None:
    if row["kind"] == "thumbs":
        RATINGS.labels(field="thumbs", score="up" if row["thumbs"] else "down").inc()
        return
    for field in ("naturalness", "correctness", "helpfulness"):
        if row.get(field):
            RATINGS.labels(field=field, score=str(row[field])).inc()
