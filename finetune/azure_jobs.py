"""Azure OpenAI fine-tune jobs: check, upload, create, follow, cancel, and read their results.

Decisions:
- ``submit`` validates the files locally first (the checks of ``tunedesk data validate``), so a file Azure
  would reject after a queue wait is rejected in a second, with ``file:line: field``; ``validate=False``
  skips that for files Azure accepts and our checks do not.
- Uploads use ``files.create(purpose="fine-tune")`` and wait until Azure reports them ``processed``;
  a file in ``error`` stops the submit with Azure's ``status_details``.
- Supervised jobs send the GA ``hyperparameters``; DPO jobs send ``method`` (Azure serves DPO on preview
  api-versions), unset hyperparameters stay Azure's ``auto``.
- Every job submitted here is recorded locally (``azure_fine_tune_jobs``: files with their sha256, the
  config, the last status seen, the error, the deployment), so ``list`` and ``last`` work from any shell.
- Terminal states are succeeded, failed and cancelled; any other status string, known or not, means
  "still going", is shown as Azure sent it and polled again.
- Events come newest first from the API; ``follow`` prints each once, oldest first, until the job ends.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Engine

from data.validate import parse_target, validate_file
from tunedesk.azure import AzureError
from tunedesk.errors import ConfigError
from tunedesk.files import atomic_writer
from tunedesk.models import sha256_file

TERMINAL = ("succeeded", "failed", "cancelled")
Method = Literal["supervised", "dpo"]

metadata = MetaData()
jobs_table = Table(
    "azure_fine_tune_jobs",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("endpoint", String(512), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("base_model", String(256), nullable=False),
    Column("status", String(64), nullable=False),
    Column("fine_tuned_model", String(512)),
    Column("training_path", String(1024), nullable=False),
    Column("training_sha256", String(64), nullable=False),
    Column("training_file_id", String(128), nullable=False),
    Column("validation_path", String(1024)),
    Column("validation_sha256", String(64)),
    Column("validation_file_id", String(128)),
    Column("config", JSON, nullable=False),
    Column("error", JSON),
    Column("deployment", String(256)),
)


@dataclass(frozen=True)
class JobSpec:
    """What to train: files, base model and the knobs Azure exposes (None = Azure's ``auto``)."""

    training: Path
    model: str
    validation: Path | None = None
    suffix: str | None = None
    seed: int | None = None
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    method: Method = "supervised"

    def hyperparameters(self) -> dict[str, Any]:
        given = {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }
        return {key: value for key, value in given.items() if value is not None}

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "suffix": self.suffix,
            "seed": self.seed,
            "method": self.method,
            "hyperparameters": self.hyperparameters(),
        }


@dataclass
class Poll:
    """How to wait: seconds between polls, and the longest wait (None: until it ends)."""

    every_s: float = 10.0
    timeout_s: float | None = None
    started: float = field(default_factory=time.monotonic)

    def sleep_or_give_up(self, what: str) -> None:
        if self.timeout_s is not None and time.monotonic() - self.started > self.timeout_s:
            raise AzureError(f"gave up waiting for {what} after {self.timeout_s:g} s; it goes on in Azure")
        time.sleep(self.every_s)


class JobStore:
    """The local record of submitted jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, job: Any, endpoint: str, spec: JobSpec, files: dict[str, tuple[Path, str, str]]) -> None:
        now = datetime.now(UTC)
        training = files["training"]
        validation = files.get("validation")
        row = {
            "job_id": job.id,
            "endpoint": endpoint,
            "submitted_at": now,
            "updated_at": now,
            "base_model": spec.model,
            "status": str(job.status),
            "fine_tuned_model": job.fine_tuned_model,
            "training_path": str(training[0]),
            "training_sha256": training[1],
            "training_file_id": training[2],
            "validation_path": str(validation[0]) if validation else None,
            "validation_sha256": validation[1] if validation else None,
            "validation_file_id": validation[2] if validation else None,
            "config": spec.config(),
            "error": None,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(jobs_table).values(**row))

    def observe(self, job: Any) -> None:
        """Remember what Azure last said about a job we submitted (no-op for jobs submitted elsewhere)."""
        error = job_error(job)
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs_table)
                .where(jobs_table.c.job_id == job.id)
                .values(
                    status=str(job.status),
                    fine_tuned_model=job.fine_tuned_model,
                    error=error,
                    updated_at=datetime.now(UTC),
                )
            )

    def set_deployment(self, job_id: str, deployment: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.job_id == job_id).values(deployment=deployment))

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.job_id == job_id)).mappings().first()
        return dict(row) if row else None

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        query = select(jobs_table).order_by(jobs_table.c.submitted_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def resolve(self, ref: str) -> str:
        """A job id from ``ref``: the id itself, or ``last`` for the newest job submitted from here."""
        if ref != "last":
            return ref
        newest = self.recent(1)
        if not newest:
            raise ConfigError("no job submitted from here yet; pass a job id (tunedesk finetune azure list)")
        return str(newest[0]["job_id"])


def job_error(job: Any) -> dict[str, Any] | None:
    """Azure's ``{code, message, param}`` of a failed job, or None."""
    error = getattr(job, "error", None)
    if error is None:
        return None
    details = error.model_dump() if hasattr(error, "model_dump") else dict(error)
    return {key: value for key, value in details.items() if value is not None} or None


def describe_failure(job: Any) -> str:
    error = job_error(job) or {}
    said = f"{error.get('code', 'error')}: {error.get('message', 'no message')}"
    if error.get("param"):
        said += f" (param: {error['param']})"
    return f"fine-tune job {job.id} failed: {said}"


def check_files(spec: JobSpec, home: Path) -> None:
    """Run the local checks on every file; one ``ConfigError`` listing the first problems of each."""
    target = parse_target(f"azure:{spec.model}", home)
    problems: list[str] = []
    for path in (spec.training, spec.validation):
        if path is None:
            continue
        if spec.method == "dpo":  # preference pairs: the chat checks do not apply; Azure checks the shape
            if not path.is_file():
                raise ConfigError(f"{path}: no such file")
            continue
        report = validate_file(path, target)
        problems += [problem.format(path) for problem in report.errors[:10]]
        if len(report.errors) > 10:
            problems.append(f"{path}: ... and {len(report.errors) - 10} more errors (tunedesk data validate {path})")
    if problems:
        raise ConfigError("the files do not pass the checks, nothing was uploaded:\n" + "\n".join(problems))


def upload(client: Any, path: Path, poll: Poll, progress: Callable[[str], None]) -> str:
    """Upload a fine-tune file and wait until Azure has processed it; its file id."""
    with path.open("rb") as handle:
        created = client.files.create(file=(path.name, handle), purpose="fine-tune")
    progress(f"uploaded {path.name} as {created.id}; waiting for Azure to process it")
    current = created
    while current.status not in ("processed", "error", "deleted"):
        poll.sleep_or_give_up(f"file {created.id} to be processed")
        current = client.files.retrieve(created.id)
    if current.status != "processed":
        details = getattr(current, "status_details", None) or "no details"
        raise AzureError(f"Azure could not process {path} (file {created.id}, status {current.status}): {details}")
    return str(created.id)


def submit(
    client: Any,
    spec: JobSpec,
    store: JobStore,
    endpoint: str,
    *,
    home: Path,
    validate: bool = True,
    poll: Poll | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> Any:
    """Check, upload, create the job and record it; the created job."""
    poll = poll or Poll(every_s=2.0, timeout_s=1800)
    if validate:
        progress("checking the files")
        check_files(spec, home)
    files: dict[str, tuple[Path, str, str]] = {}
    for role, path in (("training", spec.training), ("validation", spec.validation)):
        if path is not None:
            files[role] = (path, sha256_file(path), upload(client, path, poll, progress))
    arguments: dict[str, Any] = {"model": spec.model, "training_file": files["training"][2]}
    if "validation" in files:
        arguments["validation_file"] = files["validation"][2]
    if spec.suffix:
        arguments["suffix"] = spec.suffix
    if spec.seed is not None:
        arguments["seed"] = spec.seed
    if spec.method == "dpo":
        arguments["method"] = {"type": "dpo", "dpo": {"hyperparameters": spec.hyperparameters()}}
    elif spec.hyperparameters():
        arguments["hyperparameters"] = spec.hyperparameters()
    job = client.fine_tuning.jobs.create(**arguments)
    store.add(job, endpoint, spec, files)
    progress(f"created job {job.id} ({job.status})")
    return job


def new_events(client: Any, job_id: str, seen: set[str]) -> list[Any]:
    """Events not in ``seen``, oldest first (the API pages newest first)."""
    fresh = []
    for event in client.fine_tuning.jobs.list_events(job_id, limit=100):
        if event.id in seen:
            break
        fresh.append(event)
    seen.update(event.id for event in fresh)
    return list(reversed(fresh))


def follow(
    client: Any,
    job_id: str,
    store: JobStore,
    *,
    poll: Poll,
    on_event: Callable[[Any], None] | None = None,
    on_status: Callable[[Any], None] | None = None,
) -> Any:
    """Poll a job until it ends, reporting each new event and status change; the final job."""
    seen: set[str] = set()
    last_status = None
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        store.observe(job)
        if on_event is not None:
            for event in new_events(client, job_id, seen):
                on_event(event)
        if job.status != last_status and on_status is not None:
            on_status(job)
        last_status = job.status
        if job.status in TERMINAL:
            return job
        poll.sleep_or_give_up(f"job {job_id}")


def format_event(event: Any) -> str:
    when = datetime.fromtimestamp(event.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when}  {event.level:<5}  {event.message}"


@dataclass
class Results:
    csv_path: Path
    plots: list[Path]
    steps: int
    final: dict[str, float]


def read_results_csv(data: bytes) -> list[dict[str, float]]:
    """The rows of Azure's results.csv as numbers (empty cells dropped)."""
    rows = []
    for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
        parsed = {}
        for key, value in row.items():
            if key is None or value in (None, ""):
                continue
            try:
                parsed[key.strip()] = float(value)
            except ValueError:
                continue
        if "step" in parsed:
            rows.append(parsed)
    return rows


def write_results(client: Any, job: Any, out: Path) -> Results:
    """Download a finished job's results.csv into ``out`` and plot loss and token accuracy per step."""
    if job.status != "succeeded" or not job.result_files:
        raise ConfigError(f"job {job.id} is {job.status}; results exist once it has succeeded")
    data = client.files.content(job.result_files[0]).read()
    rows = read_results_csv(data)
    if not rows:
        raise AzureError(f"the results file {job.result_files[0]} of job {job.id} has no rows")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    with atomic_writer(csv_path, binary=True) as handle:
        handle.write(data)
    plots = [
        plot(rows, out / "loss.png", f"{job.id}: loss", ("train_loss", "valid_loss", "full_valid_loss")),
        plot(
            rows,
            out / "accuracy.png",
            f"{job.id}: mean token accuracy",
            ("train_mean_token_accuracy", "validation_mean_token_accuracy", "full_valid_mean_token_accuracy"),
        ),
    ]
    final = {key: value for key, value in rows[-1].items() if key != "step"}
    with atomic_writer(out / "summary.json") as handle:
        json.dump({"job": job.id, "model": job.fine_tuned_model, "steps": len(rows), "final": final}, handle, indent=2)
    return Results(csv_path, [p for p in plots if p is not None], len(rows), final)


def plot(rows: list[dict[str, float]], path: Path, title: str, columns: Iterable[str]) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = False
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    for column in columns:
        points = [(row["step"], row[column]) for row in rows if column in row]
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, label=column, marker="." if len(points) < 50 else None)
            drawn = True
    if not drawn:
        plt.close(figure)
        return None
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_writer(path, binary=True) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
    return path


def job_summary(job: Any, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``status`` shows: Azure's view of the job, plus what we recorded at submit."""
    summary: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(getattr(job, "finished_at", None)),
        "trained_tokens": getattr(job, "trained_tokens", None),
        "hyperparameters": job.hyperparameters.model_dump() if getattr(job, "hyperparameters", None) else None,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "result_files": job.result_files,
        "error": job_error(job),
    }
    if record is not None:
        summary["local"] = {
            key: str(record[key]) if isinstance(record[key], datetime | Path) else record[key]
            for key in ("submitted_at", "training_path", "training_sha256", "validation_path", "config", "deployment")
        }
    return summary


def _iso(timestamp: int | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None
