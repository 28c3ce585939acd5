"""A local Azure OpenAI emulator: the test double for every piece of tunedesk that talks to Azure.

An ASGI app (Starlette) that answers with the published Azure OpenAI REST shapes closely enough that
the real ``openai.AzureOpenAI`` and ``openai.OpenAI(base_url=".../openai/v1/")`` clients work against
it unchanged, over real HTTP, with their real retry, pagination and SSE code. ``run_emulator()``
serves it with uvicorn on 127.0.0.1 in a background thread; ``python -m tunedesk.azure_emulator
--port 8099`` serves it by hand.

Decisions:
- Time is a clock the test owns (``advance(seconds)``). Files, jobs and deployments are pure
  functions of what was asked and of "now", so a test jumps to any moment without sleeping, and ids,
  losses and timestamps are reproducible from ``EmulatorConfig.seed``. By hand the clock follows
  real time (``realtime=True``).
- Azure's shapes where they differ from OpenAI's: jobs start ``pending``, ``result_files`` is null
  until success, hyperparameters read -1 until the job runs, only the last three checkpoints are
  kept (the last one named like the model), creates answer 201, streams open with a chunk that has
  ``prompt_filter_results`` and empty ``choices``, errors carry Azure's codes (``DeploymentNotFound``,
  ``"401"``, ``content_filter`` + ``innererror.content_filter_result``) and every response carries
  ``x-ms-region`` and ``apim-request-id``.
- Classic paths (``/openai/...``) need a known ``api-version`` (missing: 404 "Resource not found",
  unknown: 400 "API version not supported"); the v1 paths (``/openai/v1/...``) need none. Auth is the
  ``api-key`` header or an Entra ``Authorization: Bearer`` token from ``EmulatorConfig.bearer_tokens``;
  the v1 paths also take the API key as a bearer token, which is what ``openai.OpenAI`` sends.
- Faults are queued at run time (``emulator.faults.add("rate_limit", times=2)``, or POST
  ``/_emulator/faults``) and consumed by the requests they match. A dropped stream is a real dropped
  connection: the ASGI callable stops mid-body and uvicorn closes the socket, so the client sees the
  incomplete chunked read it would see in production. Content filters fire on marker words.
- One re-entrant lock guards all state; handlers hold it only for short sections without awaits.
- Not emulated: the ``Azure-AsyncOperation`` polling URL (poll the deployment with GET instead),
  embeddings, batches, assistants, token-accurate usage (words count as tokens), Azure's exact
  job-failure codes (unpublished: ``invalidTrainingFile`` is ours) and per-account isolation on the
  management plane (any subscription/group/account names address the one emulated resource).

Shapes followed:
- Data-plane reference (api-version 2024-10-21):
  https://learn.microsoft.com/azure/ai-foundry/openai/reference
- Fine-tuning: jobs, events, checkpoints, results.csv columns:
  https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning and the sample outputs of
  https://learn.microsoft.com/azure/ai-foundry/openai/tutorials/fine-tune
- Content filtering (prompt 400, ``finish_reason: content_filter``, streaming annotations):
  https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter
- The v1 API: https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle
- Quotas, 429 and ``retry-after``: https://learn.microsoft.com/azure/ai-foundry/openai/how-to/quota
- Deployments on the management plane (api-version 2024-10-01):
  https://learn.microsoft.com/rest/api/aiservices/accountmanagement/deployments/create-or-update
- The REST specs all of the above are generated from:
  https://github.com/Azure/azure-rest-api-specs/tree/main/specification/cognitiveservices
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DATA_PLANE_API_VERSIONS = (
    "2024-02-01",
    "2024-06-01",
    "2024-10-21",
    "2024-08-01-preview",
    "2024-10-01-preview",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
V1_API_VERSIONS = ("v1", "preview", "latest")
MANAGEMENT_API_VERSIONS = ("2023-05-01", "2024-10-01", "2025-06-01")
FILE_PURPOSES = ("fine-tune", "assistants", "batch", "vision", "user_data", "evals")
FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
RESULTS_CSV_COLUMNS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "validation_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
CONTENT_SAFETY_API_VERSIONS = ("2023-10-01", "2024-09-01")
CONTENT_SAFETY_CATEGORIES = {"hate": "Hate", "self_harm": "SelfHarm", "sexual": "Sexual", "violence": "Violence"}
CONTENT_SAFETY_MARKER = re.compile(r"EMULATOR_(HATE|SELF_HARM|SEXUAL|VIOLENCE)(?:_([0-7]))?")
"""``EMULATOR_VIOLENCE`` in a text scores Violence 6 on Content Safety; ``EMULATOR_HATE_2`` scores Hate 2."""
DEFAULT_PROMPT_FILTER_WORD = "EMULATOR_BLOCK_PROMPT"
DEFAULT_OUTPUT_FILTER_WORD = "EMULATOR_BLOCK_OUTPUT"
TERMINAL_JOB_STATUSES = ("succeeded", "failed", "cancelled")
FaultKind = Literal["rate_limit", "server_error", "slow_stream", "drop_stream", "stall_stream"]
Responder = Callable[[list[dict[str, Any]], str], str]
"""``(messages, deployment_name) -> answer``: how the emulated model replies."""


def echo_responder(messages: list[dict[str, Any]], deployment: str) -> str:
    """The default model: deterministic, and it repeats the prompt so output filters can be triggered."""
    return f"You said: {_last_user_text(messages)}"


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated resource behaves. Durations are seconds of the emulator clock."""

    api_key: str = "emulator-api-key"  # accepted in the `api-key` header (and as bearer on /openai/v1)
    bearer_tokens: tuple[str, ...] = ("emulator-entra-token",)  # Entra tokens accepted on both planes
    region: str = "swedencentral"  # sent back as `x-ms-region`
    deployments: Mapping[str, str] = field(default_factory=lambda: {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"})
    # base deployments, name -> model, available from the start
    fine_tunable_models: tuple[str, ...] = (
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-2024-08-06",
        "gpt-4.1-mini-2025-04-14",
        "gpt-35-turbo-0125",
    )  # base models a job may start from, and a deployment may serve
    file_processing_s: float = 5.0  # a file reads `pending` this long, then `processed` or `error`
    job_queue_s: float = 30.0  # a job reads `pending` this long, then validates its files and runs
    seconds_per_step: float = 10.0  # one training step
    deployment_provisioning_s: float = 60.0  # `Creating` -> `Succeeded` on the management plane
    min_training_examples: int = 10  # Azure refuses smaller training files
    realtime: bool = False  # the clock also follows wall time (for runs by hand)
    seed: int = 0  # ids, default job seeds and loss curves derive from it


class EmulatorClock:
    """Seconds since the epoch as the emulator sees them: still unless advanced, or following wall time."""

    def __init__(self, realtime: bool = False) -> None:
        self._origin = float(int(time.time()))
        self._monotonic_origin = time.monotonic()
        self._offset = 0.0
        self._realtime = realtime
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            elapsed = time.monotonic() - self._monotonic_origin if self._realtime else 0.0
            return self._origin + self._offset + elapsed

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, f"the clock only moves forward, got {seconds}"
        with self._lock:
            self._offset += seconds


@dataclass
class Fault:
    """One queued misbehaviour, applied to the next ``times`` requests whose path contains ``path``."""

    kind: FaultKind
    times: int = 1
    path: str = ""  # "" matches every request to either plane; e.g. "/chat/completions"
    retry_after_s: float | None = None  # sent as retry-after (whole seconds) and retry-after-ms
    delay_s: float = 0.05  # slow_stream: wall-clock pause before each chunk; stall_stream: the one pause
    after_chunks: int = 2  # drop_stream: SSE events sent before the connection is closed; stall_stream: before
    # the pause (the stream then goes on: a client whose read timeout is shorter gives up mid-answer)
    status: int = 500  # server_error: the 5xx status


class Faults:
    """Run-time fault injection: queued faults and the marker words that trip the content filters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self.prompt_words: dict[str, str] = {}
        self.output_words: dict[str, str] = {}
        self.clear()

    def add(
        self,
        kind: FaultKind,
        *,
        times: int = 1,
        path: str = "",
        retry_after_s: float | None = None,
        delay_s: float = 0.05,
        after_chunks: int = 2,
        status: int = 500,
    ) -> Fault:
        assert kind in get_args(FaultKind), f"unknown fault kind {kind!r}; one of {get_args(FaultKind)}"
        assert times >= 1, "times must be at least 1"
        if kind == "rate_limit" and retry_after_s is None:
            retry_after_s = 1.0
        fault = Fault(kind, times, path, retry_after_s, delay_s, after_chunks, status)
        with self._lock:
            self._queue.append(fault)
        return fault

    def filter_prompts_containing(self, word: str, category: str = "violence") -> None:
        assert category in FILTER_CATEGORIES, f"category must be one of {FILTER_CATEGORIES}"
        with self._lock:
            self.prompt_words[word.lower()] = category

    def filter_outputs_containing(self, word: str, category: str = "hate") -> None:
        assert category in FILTER_CATEGORIES, f"category must be one of {FILTER_CATEGORIES}"
        with self._lock:
            self.output_words[word.lower()] = category

    def clear(self) -> None:
        """Forget queued faults and custom marker words; the default markers stay."""
        with self._lock:
            self._queue.clear()
            self.prompt_words = {DEFAULT_PROMPT_FILTER_WORD.lower(): "violence"}
            self.output_words = {DEFAULT_OUTPUT_FILTER_WORD.lower(): "hate"}

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(**vars(f)) for f in self._queue]

    def take(self, path: str, kinds: tuple[FaultKind, ...]) -> Fault | None:
        """Consume one use of the first queued fault of ``kinds`` that matches ``path``."""
        with self._lock:
            for fault in self._queue:
                if fault.kind in kinds and fault.path in path:
                    fault.times -= 1
                    if fault.times == 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def hit(self, text: str, words: Literal["prompt", "output"]) -> tuple[str, str] | None:
        """The first marker word found in ``text`` and its category."""
        lowered = text.lower()
        with self._lock:
            table = self.prompt_words if words == "prompt" else self.output_words
            return next(((w, c) for w, c in table.items() if w in lowered), None)


class ApiError(Exception):
    """An error answered with Azure's ``{"error": {...}}`` body."""

    def __init__(
        self, http_status: int, code: str | None, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.http_status, self.headers = http_status, headers or {}
        self.body = {"error": {"code": code, "message": message, **extra}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.http_status, headers=self.headers)


def _not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} with id '{ident}' not found.")


def _invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalidPayload", message, param=param, type="invalid_request_error")


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: float
    ready_at: float
    problem: str | None  # why validation failed, None when the file is fine

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "pending"
        return "error" if self.problem else "processed"

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        return {
            "object": "file",
            "id": self.id,
            "bytes": len(self.data),
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": status,
            "status_details": self.problem if status == "error" else None,
        }


@dataclass
class _Job:
    id: str
    model: str
    fine_tuned_model: str  # the name it gets on success
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int
    method: str
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    asked: dict[str, Any]  # hyperparameters as requested ("auto" where not given)
    steps_per_epoch: int
    tokens_per_epoch: int
    created_at: float
    start_at: float
    seconds_per_step: float
    result_file_id: str
    problem: dict[str, str] | None = None  # {code, message, param} when the files do not validate
    cancelled_at: float | None = None
    status_override: str | None = None
    results_published: bool = False  # its results.csv has joined the files (and may since be deleted)

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.steps_per_epoch

    @property
    def end_at(self) -> float:
        return self.start_at + self.total_steps * self.seconds_per_step

    def step_time(self, step: int) -> float:
        return self.start_at + step * self.seconds_per_step

    def status(self, now: float) -> str:
        real = self._real_status(now)
        return self.status_override if self.status_override and real not in TERMINAL_JOB_STATUSES else real

    def _real_status(self, now: float) -> str:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "cancelled"
        if now < self.start_at:
            return "pending"
        if self.problem:
            return "failed"
        return "running" if now < self.end_at else "succeeded"

    def _horizon(self, now: float) -> float:
        return min(now, self.cancelled_at) if self.cancelled_at is not None else now

    def steps_done(self, now: float) -> int:
        if self.problem or self._horizon(now) < self.start_at:
            return 0
        done = int((self._horizon(now) - self.start_at) / self.seconds_per_step + 1e-9)
        return min(self.total_steps, done)

    def metrics(self, step: int) -> dict[str, Any]:
        """A deterministic, decreasing loss curve with a little seeded noise."""
        rng = random.Random(f"{self.seed}:{step}")
        base = 0.1 + 2.2 * math.exp(-3.0 * step / self.total_steps)
        train_loss = base + rng.uniform(-0.05, 0.05)
        row: dict[str, Any] = {
            "step": step,
            "train_loss": train_loss,
            "train_mean_token_accuracy": max(0.0, min(1.0, 1.0 - train_loss / 2.5)),
            "valid_loss": None,
            "valid_mean_token_accuracy": None,
            "full_valid_loss": None,
            "full_valid_mean_token_accuracy": None,
        }
        if self.validation_file:
            valid_loss = base * 1.1 + rng.uniform(-0.05, 0.05)
            row["valid_loss"] = valid_loss
            row["valid_mean_token_accuracy"] = max(0.0, min(1.0, 1.0 - valid_loss / 2.5))
            if step % self.steps_per_epoch == 0:
                row["full_valid_loss"] = base * 1.15
                row["full_valid_mean_token_accuracy"] = max(0.0, min(1.0, 1.0 - base * 1.15 / 2.5))
        return row

    def events(self, now: float) -> list[dict[str, Any]]:
        """Every event that has happened by ``now``, oldest first."""
        timeline: list[tuple[float, str, str, str, dict[str, Any] | None]] = [
            (self.created_at, "info", "message", "Job enqueued. Waiting for jobs ahead to complete.", None)
        ]
        timeline.append((self.start_at, "info", "message", f"Validating training file: {self.training_file}", None))
        if self.problem:
            timeline.append((self.start_at, "error", "message", self.problem["message"], None))
            timeline.append((self.start_at, "error", "message", "Job failed.", None))
        else:
            timeline.append((self.start_at, "info", "message", "Job started.", None))
            for step in range(1, self.total_steps + 1):
                data = self.metrics(step)
                message = f"Step {step}: training loss={data['train_loss']}"
                timeline.append((self.step_time(step), "info", "metrics", message, data))
                if step % self.steps_per_epoch == 0:
                    checkpoint = f"Checkpoint created at step {step}"
                    timeline.append((self.step_time(step), "info", "message", checkpoint, None))
            timeline.append((self.end_at, "info", "message", f"Completed results file: {self.result_file_id}", None))
            timeline.append((self.end_at, "info", "message", "Job succeeded.", None))
        horizon = self._horizon(now)
        events = []
        for index, (at, level, kind, message, payload) in enumerate(timeline):
            if at <= horizon:
                events.append(self._event(index, at, level, kind, message, payload))
        if self.cancelled_at is not None and now >= self.cancelled_at:
            events.append(self._event(len(timeline), self.cancelled_at, "info", "message", "Job cancelled.", None))
        return events

    def _event(self, index: int, at: float, level: str, kind: str, message: str, data: Any) -> dict[str, Any]:
        event = {
            "object": "fine_tuning.job.event",
            "id": "ftevent-" + hashlib.sha256(f"{self.id}:{index}".encode()).hexdigest()[:32],
            "created_at": int(at),
            "level": level,
            "message": message,
            "type": kind,
        }
        return event | ({"data": data} if data else {})

    def checkpoints(self, now: float) -> list[dict[str, Any]]:
        """Epoch-end checkpoints reached by ``now``, oldest first; Azure keeps the last three."""
        done = self.steps_done(now)
        steps = [s for s in range(self.steps_per_epoch, done + 1, self.steps_per_epoch)]
        result = []
        for step in steps[-3:]:
            name = self.fine_tuned_model if step == self.total_steps else f"{self.fine_tuned_model}:ckpt-step-{step}"
            metrics = self.metrics(step)
            result.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": "ftchkpt-" + hashlib.sha256(f"{self.id}:ckpt:{step}".encode()).hexdigest()[:32],
                    "created_at": int(self.step_time(step)),
                    "fine_tuned_model_checkpoint": name,
                    "fine_tuning_job_id": self.id,
                    "step_number": step,
                    "metrics": {k: float(v) for k, v in metrics.items() if v is not None},
                }
            )
        return result

    def results_csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(RESULTS_CSV_COLUMNS)
        for step in range(1, self.total_steps + 1):
            m = self.metrics(step)
            values = [
                m["train_loss"],
                m["train_mean_token_accuracy"],
                m["valid_loss"],
                m["valid_mean_token_accuracy"],
                m["full_valid_loss"],
                m["full_valid_mean_token_accuracy"],
            ]
            writer.writerow([step, *("" if v is None else f"{v:.6f}" for v in values)])
        return out.getvalue().encode()

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        started = now >= self.start_at and not self.problem
        hyper = {
            "n_epochs": self.n_epochs if started else _azure_auto(self.asked["n_epochs"]),
            "batch_size": self.batch_size if started else _azure_auto(self.asked["batch_size"]),
            "learning_rate_multiplier": self.learning_rate_multiplier
            if started
            else _azure_auto(self.asked["learning_rate_multiplier"], 1.0),
        }
        real = self._real_status(now)
        finished_at = {
            "succeeded": self.end_at,
            "failed": self.start_at,
            "cancelled": self.cancelled_at,
        }.get(real)
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": int(self.created_at),
            "finished_at": int(finished_at) if finished_at is not None else None,
            "fine_tuned_model": self.fine_tuned_model if real == "succeeded" else None,
            "hyperparameters": hyper,
            "method": {"type": self.method, self.method: {"hyperparameters": hyper}},
            "organization_id": None,
            "result_files": [self.result_file_id] if real == "succeeded" else None,
            "seed": self.seed,
            "status": status,
            "suffix": self.suffix,
            "trained_tokens": self.tokens_per_epoch * self.n_epochs if real == "succeeded" else None,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "estimated_finish": int(self.end_at) if status in ("pending", "running") and not self.problem else None,
            "integrations": None,
            "error": self.problem if real == "failed" else None,
        }


def _azure_auto(asked: Any, auto: float = -1) -> Any:
    return auto if asked == "auto" else asked


@dataclass
class _Deployment:
    name: str
    model: str
    version: str
    sku: dict[str, Any]
    created_at: float
    ready_at: float
    updated: bool = False

    def state(self, now: float) -> str:
        if now >= self.ready_at:
            return "Succeeded"
        return "Updating" if self.updated else "Creating"

    def serves(self, now: float) -> bool:
        return self.updated or now >= self.ready_at

    def to_arm(self, now: float, scope: str) -> dict[str, Any]:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

        return {
            "id": f"{scope}/deployments/{self.name}",
            "type": "Microsoft.CognitiveServices/accounts/deployments",
            "name": self.name,
            "sku": self.sku,
            "properties": {
                "model": {"format": "OpenAI", "name": self.model, "version": self.version},
                "provisioningState": self.state(now),
                "capabilities": {"chatCompletion": "true"},
                "rateLimits": [{"key": "request", "renewalPeriod": 10, "count": self.sku.get("capacity", 1)}],
                "versionUpgradeOption": "NoAutoUpgrade",
            },
            "systemData": {"createdAt": iso(self.created_at), "lastModifiedAt": iso(self.created_at)},
            "etag": f'"{hashlib.sha256(f"{self.name}:{self.model}:{self.created_at}".encode()).hexdigest()[:16]}"',
        }


class AzureOpenAIEmulator:
    """The emulated Azure OpenAI resource: state, clock, faults, and the ASGI ``app`` serving them."""

    def __init__(self, config: EmulatorConfig | None = None, *, responder: Responder | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = EmulatorClock(realtime=self.config.realtime)
        self.faults = Faults()
        self.responder: Responder = responder or echo_responder
        self._lock = threading.RLock()
        self._rng = random.Random(self.config.seed)
        self._files: dict[str, _File] = {}
        self._jobs: dict[str, _Job] = {}
        self._deployments: dict[str, _Deployment] = {}
        self.reset()
        self.app: ASGIApp = self._build_app()

    # ---- controls for tests -------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward: files process, jobs train, deployments provision."""
        self.clock.advance(seconds)

    def reset(self) -> None:
        """Forget files, jobs, custom deployments and faults; the base deployments come back."""
        with self._lock:
            self._files.clear()
            self._jobs.clear()
            self._deployments.clear()
            now = self.clock.now()
            for name, model in self.config.deployments.items():
                self._deployments[name] = _Deployment(name, model, "1", {"name": "Standard", "capacity": 10}, now, now)
        self.faults.clear()

    def add_deployment(self, name: str, model: str, *, version: str = "1") -> None:
        """A deployment that serves at once, as if it had been provisioned earlier."""
        with self._lock:
            now = self.clock.now()
            self._deployments[name] = _Deployment(name, model, version, {"name": "Standard", "capacity": 10}, now, now)

    def set_job_status(self, job_id: str, status: str | None) -> None:
        """Report ``status`` (any string, e.g. "notRunning") for a job until it ends; None restores it."""
        with self._lock:
            if job_id not in self._jobs:
                raise KeyError(job_id)
            self._jobs[job_id].status_override = status

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{self._rng.getrandbits(128):032x}"

    # ---- app --------------------------------------------------------------------------------------
    def _build_app(self) -> ASGIApp:
        routes: list[Route] = []
        for prefix, classic in (("/openai", True), ("/openai/v1", False)):

            def dp(handler: Callable[[Request], Awaitable[Response]], classic: bool = classic) -> Callable:
                return self._data_plane(handler, classic)

            routes += [
                Route(f"{prefix}/files", dp(self._create_file), methods=["POST"]),
                Route(f"{prefix}/files", dp(self._list_files), methods=["GET"]),
                Route(f"{prefix}/files/{{file_id}}", dp(self._get_file), methods=["GET"]),
                Route(f"{prefix}/files/{{file_id}}", dp(self._delete_file), methods=["DELETE"]),
                Route(f"{prefix}/files/{{file_id}}/content", dp(self._file_content), methods=["GET"]),
                Route(f"{prefix}/fine_tuning/jobs", dp(self._create_job), methods=["POST"]),
                Route(f"{prefix}/fine_tuning/jobs", dp(self._list_jobs), methods=["GET"]),
                Route(f"{prefix}/fine_tuning/jobs/{{job_id}}", dp(self._get_job), methods=["GET"]),
                Route(f"{prefix}/fine_tuning/jobs/{{job_id}}/cancel", dp(self._cancel_job), methods=["POST"]),
                Route(f"{prefix}/fine_tuning/jobs/{{job_id}}/events", dp(self._job_events), methods=["GET"]),
                Route(f"{prefix}/fine_tuning/jobs/{{job_id}}/checkpoints", dp(self._job_checkpoints), methods=["GET"]),
            ]
        routes += [
            Route("/openai/deployments/{deployment}/chat/completions", dp(self._chat, True), methods=["POST"]),
            Route("/openai/v1/chat/completions", dp(self._chat, False), methods=["POST"]),
            Route("/contentsafety/text:analyze", self._content_safety, methods=["POST"]),
        ]
        arm = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}"
        mp = self._management_plane
        routes += [
            Route(f"{arm}/deployments", mp(self._arm_list), methods=["GET"]),
            Route(f"{arm}/deployments/{{name}}", mp(self._arm_put), methods=["PUT"]),
            Route(f"{arm}/deployments/{{name}}", mp(self._arm_get), methods=["GET"]),
            Route(f"{arm}/deployments/{{name}}", mp(self._arm_delete), methods=["DELETE"]),
            Route("/_emulator/{action}", self._admin, methods=["POST"]),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 404
            return ApiError(status, str(status), "Resource not found").response()

        app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
        return _AzureHeaders(app, self.config.region)

    def _data_plane(self, handler: Callable[[Request], Awaitable[Response]], classic: bool) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                version = request.query_params.get("api-version")
                if classic and version is None:
                    raise ApiError(404, "404", "Resource not found")
                if version is not None and version not in (DATA_PLANE_API_VERSIONS if classic else V1_API_VERSIONS):
                    raise ApiError(400, "BadRequest", "API version not supported")
                self._authenticate_data_plane(request, classic)
                self._raise_injected_fault(request)
                return await handler(request)
            except ApiError as error:
                return error.response()

        return endpoint

    def _authenticate_data_plane(self, request: Request, classic: bool) -> None:
        key = request.headers.get("api-key")
        bearer = _bearer(request)
        accepted_bearers = self.config.bearer_tokens if classic else (*self.config.bearer_tokens, self.config.api_key)
        if key == self.config.api_key or (bearer is not None and bearer in accepted_bearers):
            return
        raise ApiError(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
            "for an active subscription and use a correct regional API endpoint for your resource.",
        )

    def _raise_injected_fault(self, request: Request) -> None:
        fault = self.faults.take(request.url.path, ("rate_limit", "server_error"))
        if fault is None:
            return
        headers = {}
        if fault.retry_after_s is not None:
            headers = {
                "retry-after": str(max(1, math.ceil(fault.retry_after_s))),
                "retry-after-ms": str(int(fault.retry_after_s * 1000)),
            }
        if fault.kind == "rate_limit":
            version = request.query_params.get("api-version", "v1")
            raise ApiError(
                429,
                "429",
                f"Requests to the {_operation(request)} Operation under Azure OpenAI API version {version} have "
                "exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after "
                f"{headers['retry-after']} second. Please go here: https://aka.ms/oai/quotaincrease if you would "
                "like to further increase the default rate limit.",
                headers,
            )
        raise ApiError(
            fault.status,
            "InternalServerError",
            "The server had an error while processing your request. Sorry about that!",
            headers,
        )

    async def _admin(self, request: Request) -> Response:
        """By-hand controls: POST /_emulator/advance {"seconds"}, /faults {kind, ...}, /reset."""
        try:
            self._authenticate_data_plane(request, classic=False)
            body = await _json_body(request) if await request.body() else {}
            action = request.path_params["action"]
            if action == "advance":
                self.advance(float(body.get("seconds", 0)))
            elif action == "faults":
                fault = self.faults.add(**body)
                return JSONResponse(vars(fault))
            elif action == "reset":
                self.reset()
            else:
                raise ApiError(404, "404", "Resource not found")
            return JSONResponse({"now": int(self.clock.now())})
        except (TypeError, AssertionError, ValueError) as error:
            return _invalid(str(error)).response()
        except ApiError as error:
            return error.response()

    # ---- files ------------------------------------------------------------------------------------
    async def _create_file(self, request: Request) -> Response:
        form = await request.form()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or isinstance(upload, str):
            raise _invalid("A file is required.", "file")
        if purpose not in FILE_PURPOSES:
            raise _invalid(f"Invalid value for purpose: {purpose!r}; one of {', '.join(FILE_PURPOSES)}.", "purpose")
        data = await upload.read()
        problem = _validate_jsonl(data) if purpose == "fine-tune" else None
        with self._lock:
            now = self.clock.now()
            ready_at = now + self.config.file_processing_s
            file = _File(self._new_id("file"), upload.filename or "upload", purpose, data, now, ready_at, problem)
            self._files[file.id] = file
            return JSONResponse(file.to_json(now), status_code=201)

    async def _list_files(self, request: Request) -> Response:
        purpose = request.query_params.get("purpose")
        with self._lock:
            now = self._materialize_results()
            files = sorted(self._files.values(), key=lambda f: f.created_at, reverse=True)
            items = [f.to_json(now) for f in files if purpose is None or f.purpose == purpose]
        return JSONResponse(_page(items, request, default_limit=10000))

    def _file(self, file_id: str) -> _File:
        self._materialize_results()
        if file_id not in self._files:
            raise _not_found("File", file_id)
        return self._files[file_id]

    async def _get_file(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(self._file(request.path_params["file_id"]).to_json(self.clock.now()))

    async def _delete_file(self, request: Request) -> Response:
        with self._lock:
            file = self._file(request.path_params["file_id"])
            del self._files[file.id]
        return JSONResponse({"object": "file", "id": file.id, "deleted": True})

    async def _file_content(self, request: Request) -> Response:
        with self._lock:
            file = self._file(request.path_params["file_id"])
            if file.status(self.clock.now()) != "processed":
                raise _invalid(f"File {file.id} is not processed and has no content to download.", "file_id")
        return Response(file.data, media_type="application/octet-stream")

    def _materialize_results(self) -> float:
        """Results files appear in the files list once their job has succeeded."""
        now = self.clock.now()
        for job in self._jobs.values():
            if job.status(now) == "succeeded" and not job.results_published:
                data = job.results_csv()
                self._files[job.result_file_id] = _File(
                    job.result_file_id, "results.csv", "fine-tune-results", data, job.end_at, job.end_at, None
                )
                job.results_published = True
        return now

    # ---- fine-tuning jobs -------------------------------------------------------------------------
    async def _create_job(self, request: Request) -> Response:
        body = await _json_body(request)
        model = body.get("model")
        if model not in self.config.fine_tunable_models:
            raise _invalid(f"The specified base model '{model}' does not support fine-tuning.", "model")
        method = body.get("method") or {"type": "supervised"}
        kind = method.get("type") if isinstance(method, dict) else None
        if kind not in ("supervised", "dpo"):
            raise _invalid(f"Unsupported fine-tuning method type {kind!r}; supervised or dpo.", "method.type")
        asked = _hyperparameters(body.get("hyperparameters") or (method.get(kind) or {}).get("hyperparameters") or {})
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise _invalid("suffix must be a string of at most 64 characters.", "suffix")
        with self._lock:
            now = self.clock.now()
            files = {}
            for param in ("training_file", "validation_file"):
                file_id = body.get(param)
                if file_id is None and param == "validation_file":
                    continue
                if file_id not in self._files:
                    raise _invalid(f"The {param.replace('_', ' ')} '{file_id}' does not exist.", param)
                if self._files[file_id].status(now) == "pending":
                    raise _invalid(f"The file '{file_id}' has not been processed yet.", param)
                files[param] = self._files[file_id]
            examples = _examples(files["training_file"].data)
            problem = self._job_problem(files, kind)
            n_epochs = 3 if asked["n_epochs"] == "auto" else asked["n_epochs"]
            batch = max(1, len(examples) // 8) if asked["batch_size"] == "auto" else asked["batch_size"]
            lr = 1.0 if asked["learning_rate_multiplier"] == "auto" else asked["learning_rate_multiplier"]
            seed = body.get("seed")
            job = _Job(
                id=self._new_id("ftjob"),
                model=model,
                fine_tuned_model=f"{model}.ft-{self._new_id('x')[2:]}" + (f"-{suffix}" if suffix else ""),
                training_file=files["training_file"].id,
                validation_file=body.get("validation_file"),
                suffix=suffix,
                seed=self._rng.randrange(2**31) if seed is None else int(seed),
                method=kind,
                n_epochs=n_epochs,
                batch_size=batch,
                learning_rate_multiplier=lr,
                asked=asked,
                steps_per_epoch=max(1, math.ceil(len(examples) / batch)),
                tokens_per_epoch=sum(_count_tokens(json.dumps(e)) for e in examples),
                created_at=now,
                start_at=now + self.config.job_queue_s,
                seconds_per_step=self.config.seconds_per_step,
                result_file_id=self._new_id("file"),
                problem=problem,
            )
            self._jobs[job.id] = job
            return JSONResponse(job.to_json(now), status_code=201)

    def _job_problem(self, files: dict[str, _File], method: str) -> dict[str, str] | None:
        for param, file in files.items():
            problem = file.problem or _method_problem(file.data, method)
            count, minimum = len(_examples(file.data)), self.config.min_training_examples
            if param == "training_file" and not problem and count < minimum:
                problem = f"Training file has {count} example(s), but must have at least {minimum}."
            if problem:
                code = "invalidTrainingFile" if param == "training_file" else "invalidValidationFile"
                return {"code": code, "message": f"The job failed due to an invalid {param}: {problem}", "param": param}
        return None

    def _job(self, request: Request) -> _Job:
        job_id = request.path_params["job_id"]
        if job_id not in self._jobs:
            raise _not_found("Fine-tuning job", job_id)
        return self._jobs[job_id]

    async def _get_job(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(self._job(request).to_json(self.clock.now()))

    async def _list_jobs(self, request: Request) -> Response:
        with self._lock:
            now = self.clock.now()
            jobs = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
            return JSONResponse(_page([j.to_json(now) for j in jobs], request, default_limit=20))

    async def _cancel_job(self, request: Request) -> Response:
        with self._lock:
            job, now = self._job(request), self.clock.now()
            status = job._real_status(now)
            if status in TERMINAL_JOB_STATUSES:
                raise ApiError(400, "BadRequest", f"Fine-tuning job {job.id} is {status} and cannot be cancelled.")
            job.cancelled_at = now
            return JSONResponse(job.to_json(now))

    async def _job_events(self, request: Request) -> Response:
        with self._lock:
            events = self._job(request).events(self.clock.now())
        return JSONResponse(_page(events[::-1], request, default_limit=20))

    async def _job_checkpoints(self, request: Request) -> Response:
        with self._lock:
            checkpoints = self._job(request).checkpoints(self.clock.now())
        return JSONResponse(_page(checkpoints[::-1], request, default_limit=10))

    # ---- chat completions -------------------------------------------------------------------------
    async def _chat(self, request: Request) -> Response:
        body = await _json_body(request)
        name = request.path_params.get("deployment") or body.get("model")
        with self._lock:
            deployment = self._deployments.get(name or "")
            if deployment is None or not deployment.serves(self.clock.now()):
                raise ApiError(
                    404,
                    "DeploymentNotFound",
                    "The API deployment for this resource does not exist. If you created the deployment within "
                    "the last 5 minutes, please wait a moment and try again.",
                )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("'messages' is a required property", "messages")
        prompt = "\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
        hit = self.faults.hit(prompt, "prompt")
        if hit:
            raise ApiError(
                400,
                "content_filter",
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
                "Please modify your prompt and retry. To learn more about our content filtering policies please "
                "read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                param="prompt",
                type=None,
                status=400,
                innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": _filter_results(hit[1])},
            )
        answer = self.responder(messages, deployment.name)
        completion = _Completion.build(answer, body, self.faults.hit(answer, "output"))
        completion.id = "chatcmpl-" + self._new_id("x")[2:31]
        completion.model = deployment.model
        completion.created = int(self.clock.now())
        completion.prompt_tokens = sum(_count_tokens(_text(m.get("content"))) + 3 for m in messages)
        headers = {"x-ratelimit-remaining-requests": "999", "x-ratelimit-remaining-tokens": "99000"}
        if body.get("stream"):
            path = request.url.path
            fault = self.faults.take(path, ("slow_stream", "drop_stream", "stall_stream"))
            return _SSEResponse(completion.chunks(body), fault, headers)
        return JSONResponse(completion.to_json(), headers=headers)

    # ---- Azure AI Content Safety ---------------------------------------------------------------------
    async def _content_safety(self, request: Request) -> Response:
        """``POST /contentsafety/text:analyze``: severities per harm category, as Content Safety answers them.

        The key comes in ``Ocp-Apim-Subscription-Key`` (or an Entra bearer token). A category scores the
        severity its marker names (``CONTENT_SAFETY_MARKER``), or 6 when a prompt filter word of that
        category (``faults.filter_prompts_containing``) is in the text; 0 otherwise. ``rate_limit`` and
        ``server_error`` faults apply as on the other routes; a ``slow_stream`` fault delays the answer by
        its ``delay_s`` (wall clock), which is how a test makes the service time out.
        Shapes: https://learn.microsoft.com/rest/api/contentsafety/text-operations/analyze-text"""
        try:
            version = request.query_params.get("api-version")
            if version not in CONTENT_SAFETY_API_VERSIONS:
                raise ApiError(
                    404 if version is None else 400,
                    "InvalidRequestBody" if version else "404",
                    "Resource not found" if version is None else f"The api-version '{version}' is not supported.",
                )
            key, bearer = request.headers.get("ocp-apim-subscription-key"), _bearer(request)
            if key != self.config.api_key and (bearer is None or bearer not in self.config.bearer_tokens):
                raise ApiError(
                    401,
                    "401",
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                    "valid key for an active subscription and use a correct regional API endpoint for your resource.",
                )
            self._raise_injected_fault(request)
            body = await _json_body(request)
            text = body.get("text")
            if not isinstance(text, str) or not text:
                raise ApiError(400, "InvalidRequestBody", "The text field is required.", target="text")
            if len(text) > 10000:
                raise ApiError(
                    400, "InvalidRequestBody", "The text exceeds the limit of 10000 characters.", target="text"
                )
            delay = self.faults.take(request.url.path, ("slow_stream",))
            if delay is not None:
                await asyncio.sleep(delay.delay_s)
            return JSONResponse(self._content_safety_scores(text, body))
        except ApiError as error:
            return error.response()

    def _content_safety_scores(self, text: str, body: dict[str, Any]) -> dict[str, Any]:
        asked = body.get("categories") or list(CONTENT_SAFETY_CATEGORIES.values())
        eight_levels = body.get("outputType") == "EightSeverityLevels"
        severity = dict.fromkeys(CONTENT_SAFETY_CATEGORIES.values(), 0)
        for category, level in CONTENT_SAFETY_MARKER.findall(text):
            name = CONTENT_SAFETY_CATEGORIES[category.lower()]
            severity[name] = max(severity[name], int(level or 6))
        hit = self.faults.hit(text, "prompt")
        if hit:
            name = CONTENT_SAFETY_CATEGORIES[hit[1]]
            severity[name] = max(severity[name], 6)
        return {
            "blocklistsMatch": [],
            "categoriesAnalysis": [
                {"category": name, "severity": level if eight_levels else level // 2 * 2}
                for name, level in severity.items()
                if name in asked
            ],
        }

    # ---- management plane ---------------------------------------------------------------------------
    def _management_plane(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                authorization = request.headers.get("authorization")
                if authorization is None:
                    message = "Authentication failed. The 'Authorization' header is missing."
                    raise ApiError(401, "AuthenticationFailed", message)
                if _bearer(request) not in self.config.bearer_tokens:
                    raise ApiError(401, "InvalidAuthenticationToken", "The access token is invalid.")
                version = request.query_params.get("api-version")
                if version is None:
                    raise ApiError(
                        400,
                        "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.",
                    )
                if version not in MANAGEMENT_API_VERSIONS:
                    raise ApiError(
                        400,
                        "InvalidApiVersionParameter",
                        f"The api-version '{version}' is invalid. The supported versions are "
                        f"'{', '.join(MANAGEMENT_API_VERSIONS)}'.",
                    )
                self._raise_injected_fault(request)
                return await handler(request)
            except ApiError as error:
                return error.response()

        return endpoint

    @staticmethod
    def _arm_scope(request: Request) -> str:
        p = request.path_params
        return (
            f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/Microsoft.CognitiveServices"
            f"/accounts/{p['account']}"
        )

    async def _arm_put(self, request: Request) -> Response:
        body = await _json_body(request)
        sku = body.get("sku") or {}
        model = (body.get("properties") or {}).get("model") or {}
        if not isinstance(sku.get("name"), str) or not isinstance(sku.get("capacity", 1), int):
            raise ApiError(400, "InvalidResourceProperties", "The sku needs a name and an integer capacity.")
        if model.get("format") != "OpenAI" or not model.get("name"):
            raise ApiError(400, "InvalidResourceProperties", "properties.model needs format 'OpenAI' and a name.")
        name = request.path_params["name"]
        with self._lock:
            now = self.clock.now()
            fine_tuned = {j.fine_tuned_model for j in self._jobs.values() if j.status(now) == "succeeded"}
            known = {*self.config.fine_tunable_models, *self.config.deployments.values(), *fine_tuned}
            if model["name"] not in known:
                raise ApiError(
                    400,
                    "DeploymentModelNotSupported",
                    f"The model '{model['name']}' of version '{model.get('version')}' is not supported.",
                )
            existing = name in self._deployments
            self._deployments[name] = _Deployment(
                name,
                model["name"],
                str(model.get("version", "1")),
                {"name": sku["name"], "capacity": sku.get("capacity", 1)},
                now,
                now + self.config.deployment_provisioning_s,
                updated=existing,
            )
            return JSONResponse(
                self._deployments[name].to_arm(now, self._arm_scope(request)), status_code=200 if existing else 201
            )

    async def _arm_get(self, request: Request) -> Response:
        name = request.path_params["name"]
        with self._lock:
            if name not in self._deployments:
                raise ApiError(404, "DeploymentNotFound", f"Deployment '{name}' not found.")
            return JSONResponse(self._deployments[name].to_arm(self.clock.now(), self._arm_scope(request)))

    async def _arm_list(self, request: Request) -> Response:
        with self._lock:
            now, scope = self.clock.now(), self._arm_scope(request)
            return JSONResponse({"value": [d.to_arm(now, scope) for d in self._deployments.values()]})

    async def _arm_delete(self, request: Request) -> Response:
        with self._lock:
            existed = self._deployments.pop(request.path_params["name"], None) is not None
        return Response(status_code=200 if existed else 204)


@dataclass
class _Completion:
    """One chat answer, rendered either as a JSON body or as Azure-flavoured SSE chunks."""

    texts: list[list[str]]  # per choice, the answer split into stream-sized pieces
    finish_reason: str
    filtered: str | None  # the output-filter category that cut the answer short
    id: str = ""
    model: str = ""
    created: int = 0
    prompt_tokens: int = 0

    @classmethod
    def build(cls, answer: str, body: dict[str, Any], hit: tuple[str, str] | None) -> _Completion:
        words = re.findall(r"\S+\s*", answer)
        finish, filtered = "stop", None
        if hit:  # the answer stops just before the words that tripped the filter
            cut = next((i for i in range(len(words)) if hit[0] in "".join(words[: i + 1]).lower()), len(words))
            words, finish, filtered = words[:cut], "content_filter", hit[1]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and len(words) > limit:
            words, finish = words[:limit], "length"
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 128:
            raise _invalid(f"Invalid value for n: {n!r}.", "n")
        return cls([words] * n, finish, filtered)

    @property
    def completion_tokens(self) -> int:
        return sum(len(words) for words in self.texts)

    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}

    def _envelope(self, obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_emu",
        }

    def to_json(self) -> dict[str, Any]:
        choices = []
        for index, words in enumerate(self.texts):
            content = None if self.filtered else "".join(words)
            choices.append(
                {
                    "index": index,
                    "finish_reason": self.finish_reason,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "content_filter_results": _filter_results(self.filtered),
                }
            )
        return {
            **self._envelope("chat.completion"),
            "choices": choices,
            "usage": self.usage(),
            "prompt_filter_results": _prompt_filter_results(),
        }

    def chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = [
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": _prompt_filter_results(),
            }
        ]

        def chunk(index: int, delta: dict[str, Any], finish: str | None, filters: dict[str, Any]) -> dict[str, Any]:
            choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            choice["content_filter_results"] = filters
            return {**self._envelope("chat.completion.chunk"), "choices": [choice]}

        for index, words in enumerate(self.texts):
            chunks.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}, None, {}))
            chunks += [chunk(index, {"content": w}, None, _filter_results(None)) for w in words]
            chunks.append(chunk(index, {}, self.finish_reason, _filter_results(self.filtered) if self.filtered else {}))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**self._envelope("chat.completion.chunk"), "choices": [], "usage": self.usage()})
        return chunks


class _StreamDropped(Exception):
    """Raised inside the SSE response to make uvicorn abort the connection mid-body."""


class _SSEResponse(Response):
    """``data: {...}`` events then ``data: [DONE]``; a fault may slow the events or drop the connection."""

    def __init__(self, chunks: list[dict[str, Any]], fault: Fault | None, headers: dict[str, str]) -> None:
        # Not Response.__init__: it would announce content-length 0 for a body that is streamed.
        self.status_code, self.media_type, self.background = 200, "text/event-stream", None
        self.init_headers({"cache-control": "no-cache", **headers})
        self.events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
        self.fault = fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.Event()

        async def watch_for_disconnect() -> None:  # so a slow stream stops when its client gives up
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            for sent, event in enumerate(self.events):
                if self.fault and self.fault.kind == "drop_stream" and sent >= self.fault.after_chunks:
                    raise _StreamDropped(f"connection dropped after {sent} events (injected fault)")
                stalls = self.fault and self.fault.kind == "stall_stream" and sent == self.fault.after_chunks
                if self.fault and (self.fault.kind == "slow_stream" or stalls):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(disconnected.wait(), self.fault.delay_s)
                if disconnected.is_set():
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


class _AzureHeaders:
    """Adds the headers every Azure OpenAI response carries."""

    def __init__(self, app: ASGIApp, region: str) -> None:
        self.app, self.region = app, region.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4()).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-ms-region", self.region), (b"apim-request-id", request_id), (b"x-request-id", request_id)]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- helpers ----------------------------------------------------------------------------------------
def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _operation(request: Request) -> str:
    path = request.url.path
    if path.endswith("/chat/completions"):
        return "ChatCompletions_Create"
    return "FineTuning_Jobs" if "/fine_tuning/" in path else "Files"


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(
            400, None, "We could not parse the JSON body of your request.", type="invalid_request_error"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, None, "The request body must be a JSON object.", type="invalid_request_error")
    return body


def _page(items: list[dict[str, Any]], request: Request, default_limit: int) -> dict[str, Any]:
    """OpenAI/Azure cursor pagination: ``after`` is the id of the last item of the previous page."""
    try:
        limit = int(request.query_params.get("limit", default_limit))
    except ValueError:
        raise _invalid("limit must be an integer.", "limit") from None
    if limit < 1:
        raise _invalid("limit must be at least 1.", "limit")
    after, start = request.query_params.get("after"), 0
    if after is not None:
        ids = [item["id"] for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    page = items[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "has_more": start + limit < len(items),
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def _hyperparameters(given: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Callable[[Any], bool]] = {
        "n_epochs": lambda v: isinstance(v, int) and 1 <= v <= 50,
        "batch_size": lambda v: isinstance(v, int) and 1 <= v <= 256,
        "learning_rate_multiplier": lambda v: isinstance(v, int | float) and v > 0,
    }
    unknown = set(given) - set(checks)
    if unknown:
        raise _invalid(f"Unknown hyperparameters: {', '.join(sorted(unknown))}.", "hyperparameters")
    asked = {}
    for name, ok in checks.items():
        value = given.get(name, "auto")
        if value != "auto" and not ok(value):
            raise _invalid(f"Invalid value for {name}: {value!r}.", f"hyperparameters.{name}")
        asked[name] = value
    return asked


def _examples(data: bytes) -> list[Any]:
    try:
        return [json.loads(line) for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError):
        return []


def _validate_jsonl(data: bytes) -> str | None:
    """Azure's minimal upload check: UTF-8 JSONL, one object per line with a ``messages`` list."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "Validation of jsonl file failed: the file is not UTF-8 encoded."
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        return "Validation of jsonl file failed: No valid json line found in file."
    for number, line in lines:
        try:
            example = json.loads(line)
        except ValueError:
            return f"Validation of jsonl file failed: line {number} is not valid JSON."
        if not isinstance(example, dict) or not isinstance(_messages_of(example), list):
            return f"Validation of jsonl file failed: line {number} has no 'messages' list."
    return None


def _method_problem(data: bytes, method: str) -> str | None:
    """Whether the examples fit the training method: chat messages for SFT, preference pairs for DPO."""
    for number, example in enumerate(_examples(data), start=1):
        if method == "supervised" and not isinstance(example.get("messages"), list):
            return f"line {number} has no 'messages' list, which supervised fine-tuning needs."
        if method == "dpo" and not (
            isinstance((example.get("input") or {}).get("messages"), list)
            and isinstance(example.get("preferred_output"), list)
            and isinstance(example.get("non_preferred_output"), list)
        ):
            return f"line {number} needs input.messages, preferred_output and non_preferred_output for DPO."
    return None


def _messages_of(example: dict[str, Any]) -> Any:
    """The chat of an example: ``messages`` for supervised lines, ``input.messages`` for DPO lines."""
    return example.get("messages", (example.get("input") or {}).get("messages"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


def _count_tokens(text: str) -> int:
    return len(text.split())


def _prompt_filter_results() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": _filter_results(None, prompt=True)}]


def _filter_results(filtered: str | None, *, prompt: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {
        c: {"filtered": c == filtered, "severity": "high" if c == filtered else "safe"} for c in FILTER_CATEGORIES
    }
    if prompt:
        results["jailbreak"] = {"filtered": False, "detected": False}
    return results


# ---- runner -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningEmulator:
    """A served emulator: where to reach it, with which credentials, and its controls."""

    emulator: AzureOpenAIEmulator
    endpoint: str  # e.g. http://127.0.0.1:54321, the `azure_endpoint` and the management base URL

    @property
    def api_key(self) -> str:
        return self.emulator.config.api_key

    @property
    def bearer_token(self) -> str:
        return self.emulator.config.bearer_tokens[0]

    @property
    def faults(self) -> Faults:
        return self.emulator.faults

    @property
    def clock(self) -> EmulatorClock:
        return self.emulator.clock

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)


class _HideDroppedStreams(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _StreamDropped))


def _quiet_dropped_streams() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedStreams) for f in logger.filters):
        logger.addFilter(_HideDroppedStreams())


def _server(emulator: AzureOpenAIEmulator, **options: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(emulator.app, http="h11", ws="none", lifespan="off", timeout_graceful_shutdown=1, **options)
    _quiet_dropped_streams()
    return uvicorn.Server(config)


@contextmanager
def run_emulator(
    port: int = 0, *, emulator: AzureOpenAIEmulator | None = None, config: EmulatorConfig | None = None
) -> Iterator[RunningEmulator]:
    """Serve an emulator on 127.0.0.1 (a free port when ``port`` is 0) in a background thread."""
    assert emulator is None or config is None, "pass an emulator or a config, not both"
    emulator = emulator or AzureOpenAIEmulator(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    server = _server(emulator, log_config=None, access_log=False)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="azure-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the Azure OpenAI emulator did not start; see the uvicorn log above")
        time.sleep(0.01)
    try:
        yield RunningEmulator(emulator, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tunedesk.azure_emulator", description="Serve a local Azure OpenAI emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on")
    parser.add_argument("--api-key", default=EmulatorConfig.api_key, help="the key clients send as api-key")
    parser.add_argument("--seconds-per-step", type=float, default=2.0, help="wall seconds per training step")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and loss curves")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = EmulatorConfig(
        api_key=args.api_key,
        seconds_per_step=args.seconds_per_step,
        job_queue_s=2 * args.seconds_per_step,
        file_processing_s=1.0,
        deployment_provisioning_s=5.0,
        realtime=True,
        seed=args.seed,
    )
    emulator = AzureOpenAIEmulator(config)
    key_note = EmulatorConfig.api_key if args.api_key == EmulatorConfig.api_key else "the one you passed"
    print(
        f"Azure OpenAI emulator on http://{args.host}:{args.port} (api-key: {key_note}; deployments: "
        f"{', '.join(config.deployments)}; POST /_emulator/advance|faults|reset to steer it)",
        flush=True,
    )
    _server(emulator, host=args.host, port=args.port).run()


if __name__ == "__main__":
    main()
