"""The chat's telemetry: an OpenTelemetry span and metrics for every turn, rating and outcome.

Decisions:
- The instruments are OpenTelemetry's, read by three exporters at once: Prometheus (always; served on
  ``/metrics`` by ``chatbot.server``), Azure Monitor / Application Insights when
  ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (``azure-monitor-opentelemetry``, which also gets
  the traces and the ``tunedesk`` logs), and any OTLP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT``
  is set. One meter provider feeds them all, so every backend reports the same numbers.
- Each chat turn is one span, ``chat <backend>``, with the GenAI semantic-convention attributes where
  they exist (``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.usage.output_tokens``,
  ``error.type``) and tunedesk's own for the rest (time to first token, policy sections used).
- Nothing a customer or agent typed goes into telemetry: prompts, answers and comments stay in the
  database; spans and metrics carry only names, numbers and ids.
- Latency buckets span a cached echo (milliseconds) to a slow CPU model answering at length (a minute).
- ``setup`` runs once per process (the server calls it before Chainlit loads the app); instruments are
  created at import from the API's proxies and bind to the providers when they are set.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger("tunedesk.telemetry")
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
SERVICE = "tunedesk-chat"

meter = metrics.get_meter("tunedesk.chat")
tracer = trace.get_tracer("tunedesk.chat")
ANSWERS = meter.create_counter("tunedesk.answers", unit="{answer}", description="Answers given, failed ones included")
ANSWER_SECONDS = meter.create_histogram("tunedesk.answer.duration", unit="s", description="Time to the whole answer")
TTFT_SECONDS = meter.create_histogram("tunedesk.answer.ttft", unit="s", description="Time to the first streamed piece")
TOKENS = meter.create_counter(
    "tunedesk.answer.tokens", unit="{token}", description="Pieces streamed (one per token for local models)"
)
ERRORS = meter.create_counter("tunedesk.answer.errors", unit="{answer}", description="Answers that failed, by kind")
RATINGS = meter.create_counter("tunedesk.ratings", unit="{rating}", description="Ratings stored, by field and score")
OUTCOMES = meter.create_counter(
    "tunedesk.outcomes", unit="{conversation}", description="Surveys and escalations, by answer and reason"
)
PERSISTENCE_ERRORS = meter.create_counter(
    "tunedesk.persistence.errors", unit="{statement}", description="Chat history statements that failed"
)

_lock = threading.Lock()
_done = False


def setup() -> str:
    """Install the meter and tracer providers (once per process); returns where telemetry goes."""
    global _done
    with _lock:
        if _done:
            return "already set up"
        _done = True
        return _install()


def _install() -> str:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE)})
    prometheus = PrometheusMetricReader()
    views = [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(SECONDS))
        for name in ("tunedesk.answer.duration", "tunedesk.answer.ttft")
    ]
    targets = ["/metrics"]
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            resource=resource,
            metric_readers=[prometheus],
            views=views,
            logger_name="tunedesk",
            enable_live_metrics=False,
        )
        targets.append("Azure Monitor")
    else:
        metrics.set_meter_provider(MeterProvider(metric_readers=[prometheus], resource=resource, views=views))
        trace.set_tracer_provider(TracerProvider(resource=resource))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider: Any = trace.get_tracer_provider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        targets.append("OTLP")
    where = ", ".join(targets)
    log.info("telemetry goes to %s", where)
    return where


def count_rating(row: dict[str, Any]) -> None:
    where = {"backend": row.get("backend") or "unknown"}
    if row["kind"] == "thumbs":
        RATINGS.add(1, where | {"field": "thumbs", "score": "up" if row["thumbs"] else "down"})
        return
    for field in ("naturalness", "correctness", "helpfulness"):
        if row.get(field):
            RATINGS.add(1, where | {"field": field, "score": str(row[field])})


def count_outcome(row: dict[str, Any]) -> None:
    where = {"backend": row.get("backend") or "unknown", "kind": row["kind"]}
    if row["kind"] == "escalation":
        OUTCOMES.add(1, where | {"reason": row["reason"]})
        return
    resolved = {None: "unanswered", 1: "yes", 0: "no"}[row["resolved"]]
    OUTCOMES.add(1, where | {"resolved": resolved, "csat": str(row["csat"] or "unanswered")})
