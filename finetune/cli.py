"""``tunedesk finetune ...``: local LoRA fine-tuning, and Azure OpenAI fine-tune jobs and deployments.

``lora`` and ``merge`` run here (``finetune/lora.py``, ``finetune/export.py``). Every ``azure`` command takes a
job id, or ``last`` for the newest job submitted from this machine. Connection
settings come from ``TUNEDESK_AZURE_*`` (or the SDK's ``AZURE_OPENAI_*``); see README "Azure OpenAI".
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from finetune.azureml import app as azureml_app
from tunedesk.console import err, friendly_errors
from tunedesk.settings import Settings, load_settings

app = typer.Typer(
    help="Fine-tune models: local LoRA (lora, merge), Azure OpenAI jobs and deployments.", no_args_is_help=True
)
azure_app = typer.Typer(help="Azure OpenAI fine-tune jobs: submit, watch, read results, deploy.", no_args_is_help=True)
app.add_typer(azure_app, name="azure")
app.add_typer(azureml_app, name="azureml")

JobArg = Annotated[str, typer.Argument(help="Job id (ftjob-...), or 'last' for the newest job submitted from here.")]
PollOpt = Annotated[float, typer.Option("--poll-s", help="Seconds between polls.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
out = Console()


@dataclass
class Azure:
    settings: Settings
    conn: Any
    client: Any
    store: Any

    def errors(self) -> AbstractContextManager[None]:
        from tunedesk.azure import azure_errors

        return azure_errors(self.conn)


def connect() -> Azure:
    from finetune.azure_jobs import JobStore
    from tunedesk.azure import client, connection
    from tunedesk.db import engine

    settings = load_settings()
    conn = connection(settings)
    return Azure(settings, conn, client(conn), JobStore(engine(settings)))


@app.command()
@friendly_errors
def lora(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="YAML recipe, e.g. finetune/configs/smollm2-support.yaml.")
    ],
    train: Annotated[Path | None, typer.Option(help="Training JSONL (overrides the config's train).")] = None,
    validation: Annotated[Path | None, typer.Option(help="Validation JSONL (overrides the config).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (overrides the config).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base model (overrides the config).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (overrides the config).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (overrides the config).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --output from its latest checkpoint.")] = False,
) -> None:
    """Fine-tune a LoRA adapter on chat JSONL; writes a run directory the chat and eval load with --model.

    Runs on N GPUs unchanged: accelerate launch --num_processes N -m tunedesk finetune lora --config ...

    Example: tunedesk finetune lora --config finetune/configs/smollm2-support.yaml"""
    from finetune.lora import TrainConfig
    from finetune.lora import train as run_training

    recipe = TrainConfig.from_yaml(
        config,
        train=train,
        validation=validation,
        output=output,
        model=model,
        epochs=epochs,
        max_steps=max_steps,
        seed=seed,
    )
    result = run_training(recipe, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # one of several processes: the first one reports
    summary = {
        "run": str(result.output),
        "steps": result.steps,
        "epochs": round(result.epochs_done, 3),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
    }
    err.print(
        f"run written to {result.output}; chat with it: tunedesk ask --backend local --model {result.output} 'hello'"
    )
    typer.echo(json.dumps(summary))


@app.command()
@friendly_errors
def merge(
    run: Annotated[Path, typer.Argument(help="LoRA run directory (or a peft adapter directory).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the merged transformers model.")],
) -> None:
    """Merge a LoRA adapter into its base model: a plain transformers checkpoint, no peft needed to load it.

    Example: tunedesk finetune merge runs/support --out models/support-merged"""
    from finetune.export import merge as merge_adapter

    with err.status(f"merging {run}"):
        path = merge_adapter(run, out)
    typer.echo(str(path))


@azure_app.command()
@friendly_errors
def submit(
    training: Annotated[Path, typer.Argument(help="Training JSONL (chat format, or preference pairs for dpo).")],
    model: Annotated[str, typer.Option(help="Base model to fine-tune.")] = "gpt-4o-mini-2024-07-18",
    validation: Annotated[Path | None, typer.Option(help="Validation JSONL (e.g. build/support/val.jsonl).")] = None,
    suffix: Annotated[
        str | None, typer.Option(help="Up to 64 characters added to the fine-tuned model's name.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the training run, for reproducibility.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: Azure's auto).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: Azure's auto).")] = None,
    learning_rate_multiplier: Annotated[
        float | None, typer.Option(help="Learning-rate multiplier (default: auto).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="supervised, or dpo (preference pairs; preview api-versions).")
    ] = "supervised",
    check: Annotated[bool, typer.Option("--validate/--no-validate", help="Check the files locally first.")] = True,
    wait: Annotated[bool, typer.Option(help="Follow the job's events until it ends.")] = False,
    poll_s: PollOpt = 10.0,
) -> None:
    """Check the files, upload them, create the fine-tune job and record it locally; prints the job id.

    Example: tunedesk finetune azure submit build/support/train.jsonl --suffix support --wait"""
    from finetune.azure_jobs import JobSpec, Poll
    from finetune.azure_jobs import submit as submit_job
    from tunedesk.errors import ConfigError

    if method not in ("supervised", "dpo"):
        raise ConfigError(f"--method must be supervised or dpo, not {method!r}")
    azure = connect()
    spec = JobSpec(
        training=training,
        model=model,
        validation=validation,
        suffix=suffix,
        seed=seed,
        n_epochs=epochs,
        batch_size=batch_size,
        learning_rate_multiplier=learning_rate_multiplier,
        method=method,  # type: ignore[arg-type]
    )
    with azure.errors(), err.status("submitting") as status:
        job = submit_job(
            azure.client,
            spec,
            azure.store,
            azure.conn.endpoint,
            home=azure.settings.home,
            validate=check,
            poll=Poll(every_s=min(poll_s, 2.0), timeout_s=1800),
            progress=lambda message: status.update(message),
        )
    err.print(f"submitted {job.id} ({job.status}); follow it with: tunedesk finetune azure events {job.id} --follow")
    typer.echo(job.id)
    if wait:
        _follow(azure, job.id, poll_s)


def _follow(azure: Azure, job_id: str, poll_s: float) -> None:
    from finetune.azure_jobs import Poll, describe_failure, follow, format_event
    from tunedesk.azure import AzureError

    with azure.errors():
        job = follow(
            azure.client,
            job_id,
            azure.store,
            poll=Poll(every_s=poll_s),
            on_event=lambda event: err.print(format_event(event), highlight=False, soft_wrap=True),
            on_status=lambda job: err.print(f"[bold]{job.id}: {job.status}[/]", highlight=False),
        )
    if job.status == "failed":
        raise AzureError(describe_failure(job))
    if job.status == "succeeded":
        err.print(f"fine-tuned model: {job.fine_tuned_model}; deploy it with: tunedesk finetune azure deploy {job.id}")
    else:
        err.print(f"job {job.id} ended {job.status}")


@azure_app.command()
@friendly_errors
def status(job: JobArg = "last", as_json: JsonOpt = False) -> None:
    """Show a job: status, models, hyperparameters, files, error, and what was recorded at submit.

    Example: tunedesk finetune azure status last"""
    from finetune.azure_jobs import job_summary

    azure = connect()
    job_id = azure.store.resolve(job)
    with azure.errors():
        current = azure.client.fine_tuning.jobs.retrieve(job_id)
    azure.store.observe(current)
    summary = job_summary(current, azure.store.get(job_id))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    table = Table("field", "value", title=job_id, show_header=False)
    for key, value in summary.items():
        if value is not None:
            table.add_row(key, value if isinstance(value, str) else json.dumps(value, default=str))
    out.print(table)


@azure_app.command()
@friendly_errors
def events(
    job: JobArg = "last",
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the job ends.")
    ] = False,
    limit: Annotated[int, typer.Option(help="How many of the latest events to print (without --follow).")] = 50,
    poll_s: PollOpt = 10.0,
) -> None:
    """Print a job's events, oldest first; --follow waits for new ones until the job ends.

    Example: tunedesk finetune azure events last --follow"""
    from finetune.azure_jobs import format_event

    azure = connect()
    job_id = azure.store.resolve(job)
    if follow_:
        _follow(azure, job_id, poll_s)
        return
    with azure.errors():
        listed = list(azure.client.fine_tuning.jobs.list_events(job_id, limit=limit).data)
    for event in reversed(listed):
        typer.echo(format_event(event))


@azure_app.command()
@friendly_errors
def checkpoints(job: JobArg = "last", as_json: JsonOpt = False) -> None:
    """List a job's checkpoints (Azure keeps the last three) with their step and metrics.

    Example: tunedesk finetune azure checkpoints last"""
    azure = connect()
    job_id = azure.store.resolve(job)
    with azure.errors():
        listed = list(azure.client.fine_tuning.jobs.checkpoints.list(job_id).data)
    if as_json:
        typer.echo(json.dumps([c.model_dump() for c in listed], indent=2))
        return
    table = Table("step", "model", "train loss", "valid loss", "full valid accuracy")
    for checkpoint in sorted(listed, key=lambda c: c.step_number):
        metrics = checkpoint.metrics
        table.add_row(
            str(checkpoint.step_number),
            checkpoint.fine_tuned_model_checkpoint,
            _number(metrics.train_loss),
            _number(metrics.valid_loss),
            _number(metrics.full_valid_mean_token_accuracy),
        )
    out.print(table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@azure_app.command()
@friendly_errors
def cancel(job: JobArg) -> None:
    """Cancel a queued or running job.

    Example: tunedesk finetune azure cancel ftjob-0123456789abcdef"""
    azure = connect()
    job_id = azure.store.resolve(job)
    with azure.errors():
        cancelled = azure.client.fine_tuning.jobs.cancel(job_id)
    azure.store.observe(cancelled)
    typer.echo(f"{cancelled.id}: {cancelled.status}")


@azure_app.command("list")
@friendly_errors
def list_jobs(
    limit: Annotated[int, typer.Option(help="How many of the newest jobs to list.")] = 20,
    local: Annotated[bool, typer.Option(help="Only the jobs recorded here, without asking Azure.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List fine-tune jobs, newest first, with the local record (training file) where there is one.

    Example: tunedesk finetune azure list --limit 10"""
    azure = connect()
    rows: list[dict[str, Any]] = []
    if local:
        for record in azure.store.recent(limit):
            rows.append(
                {
                    "job": record["job_id"],
                    "status": record["status"],
                    "base_model": record["base_model"],
                    "fine_tuned_model": record["fine_tuned_model"],
                    "training_file": record["training_path"],
                    "deployment": record["deployment"],
                }
            )
    else:
        with azure.errors():
            jobs = list(azure.client.fine_tuning.jobs.list(limit=limit).data)
        for job in jobs:
            azure.store.observe(job)
            record = azure.store.get(job.id) or {}
            rows.append(
                {
                    "job": job.id,
                    "status": str(job.status),
                    "base_model": job.model,
                    "fine_tuned_model": job.fine_tuned_model,
                    "training_file": record.get("training_path") or job.training_file,
                    "deployment": record.get("deployment"),
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("job", "status", "base model", "fine-tuned model", "training file", "deployment")
    for row in rows:
        table.add_row(*(str(value) if value else "-" for value in row.values()))
    out.print(table)


@azure_app.command()
@friendly_errors
def results(
    job: JobArg = "last",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory (default: runs/finetune/<job id>).")] = None,
) -> None:
    """Download a succeeded job's results.csv and plot loss and token accuracy per step.

    Example: tunedesk finetune azure results last --out runs/finetune/support"""
    from finetune.azure_jobs import write_results

    azure = connect()
    job_id = azure.store.resolve(job)
    with azure.errors():
        current = azure.client.fine_tuning.jobs.retrieve(job_id)
        written = write_results(azure.client, current, out_dir or Path("runs") / "finetune" / job_id)
    final = ", ".join(f"{key} {value:.4f}" for key, value in written.final.items())
    err.print(f"{written.steps} steps; last step: {final}")
    for path in (written.csv_path, *written.plots):
        typer.echo(str(path))


@azure_app.command()
@friendly_errors
def deploy(
    job: JobArg = "last",
    name: Annotated[
        str | None, typer.Option(help="Deployment name (default: the job's suffix, or the job id).")
    ] = None,
    sku: Annotated[str, typer.Option(help="standard, globalstandard or developer.")] = "standard",
    capacity: Annotated[int, typer.Option(help="Capacity in thousands of tokens per minute.")] = 1,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the deployment serves.")] = True,
    poll_s: PollOpt = 10.0,
) -> None:
    """Deploy a succeeded job's fine-tuned model (Resource Manager, Entra ID) and wait until it serves.

    Example: tunedesk finetune azure deploy last --name support-ft --sku developer"""
    from finetune.azure_deploy import Deployments
    from finetune.azure_jobs import Poll
    from tunedesk.errors import ConfigError

    azure = connect()
    job_id = azure.store.resolve(job)
    with azure.errors():
        current = azure.client.fine_tuning.jobs.retrieve(job_id)
    azure.store.observe(current)
    if current.status != "succeeded" or not current.fine_tuned_model:
        raise ConfigError(f"job {job_id} is {current.status}; only a succeeded job has a model to deploy")
    record = azure.store.get(job_id) or {}
    deployment = name or (record.get("config") or {}).get("suffix") or job_id
    deployments = Deployments.from_settings(azure.settings, azure.conn)
    deployments.put(deployment, current.fine_tuned_model, sku=sku, capacity=capacity)  # type: ignore[arg-type]
    azure.store.set_deployment(job_id, deployment)
    err.print(f"deploying {current.fine_tuned_model} as {deployment} ({sku}, capacity {capacity})")
    if wait:
        deployments.wait(
            deployment, Poll(every_s=poll_s, timeout_s=3600), on_state=lambda state: err.print(f"{deployment}: {state}")
        )
        err.print(f"chat with it: TUNEDESK_BACKEND=azure TUNEDESK_AZURE_DEPLOYMENT={deployment} tunedesk chat")
    typer.echo(deployment)


@azure_app.command()
@friendly_errors
def undeploy(name: Annotated[str, typer.Argument(help="Deployment name.")]) -> None:
    """Delete a deployment (a deployed fine-tune is billed by the hour while it exists).

    Example: tunedesk finetune azure undeploy support-ft"""
    from finetune.azure_deploy import Deployments
    from tunedesk.azure import connection

    settings = load_settings()
    deployments = Deployments.from_settings(settings, connection(settings))
    typer.echo(f"{name}: {'deleted' if deployments.delete(name) else 'no such deployment'}")
