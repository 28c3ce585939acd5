"""The ``tunedesk`` command: a typer root that mounts each stage's commands.

Decisions:
- Importing this module imports neither torch nor onnxruntime: ``tunedesk --help`` is instant and
  each command imports what it needs when it runs.
- Errors the user can fix (``TunedeskError``) print one line on stderr and exit 1; no traceback.
- Flags override ``TUNEDESK_*`` variables, which override the YAML file named by ``TUNEDESK_CONFIG``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from chatbot.cli import ratings_app, review_app, users_app
from data.cli import app as data_app
from eval.cli import app as eval_app
from finetune.captioning import app as captioning_app
from finetune.cli import app as finetune_app
from finetune.sentiment import app as sentiment_app
from finetune.summarization import app as summarization_app
from tunedesk.console import err, friendly_errors
from tunedesk.settings import load_settings

app = typer.Typer(help="Fine-tune, evaluate and serve a customer-support chatbot.", no_args_is_help=True)
model_app = typer.Typer(help="The model registry: list, prepare and inspect models.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(data_app, name="data")
app.add_typer(finetune_app, name="finetune")
app.add_typer(eval_app, name="eval")
app.add_typer(sentiment_app, name="sentiment")
app.add_typer(summarization_app, name="summarization")
app.add_typer(captioning_app, name="captioning")
app.add_typer(users_app, name="users")
app.add_typer(ratings_app, name="ratings")
app.add_typer(review_app, name="review")
db_app = typer.Typer(help="tunedesk's database: schema revision, upgrade, downgrade.", no_args_is_help=True)
app.add_typer(db_app, name="db")
emulator_app = typer.Typer(help="Local emulators of cloud services, to rehearse a flow offline.", no_args_is_help=True)
app.add_typer(emulator_app, name="emulator")


BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help="onnx (default), local, azure or echo.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Registry name, directory or hub id.")]


@model_app.command("list")
@friendly_errors
def model_list() -> None:
    """List the models tunedesk knows by name, and which are prepared.

    Example: tunedesk model list"""
    from tunedesk.models import REGISTRY, prepared_artifacts

    home = load_settings().home
    table = Table("name", "prepared", "license", "summary")
    for spec in REGISTRY.values():
        prepared = ", ".join(prepared_artifacts(home, spec.name)) or "-"
        table.add_row(spec.name, prepared, spec.license, spec.summary)
    Console().print(table)


@model_app.command("prepare")
@friendly_errors
def model_prepare(
    name: Annotated[str, typer.Argument(help="Registry name, transformers directory or hub id.")] = "smollm2-135m",
    precision: Annotated[str, typer.Option(help="ONNX precision: int4 or fp32.")] = "int4",
    onnx: Annotated[bool, typer.Option(help="Also build the ONNX model (the onnx backend needs it).")] = True,
) -> None:
    """Convert a model once into the cache: transformers checkpoint, then ONNX. Re-running is a no-op.

    Example: tunedesk model prepare smollm2-135m --precision int4"""
    from tunedesk.prepare import ensure_onnx, ensure_transformers

    home = load_settings().home
    with err.status(f"preparing {name}") as status:
        progress = lambda message: status.update(f"{name}: {message}")  # noqa: E731
        path = ensure_onnx(name, home, precision, progress) if onnx else ensure_transformers(name, home, progress)
    typer.echo(str(path))


@model_app.command("export-onnx")
@friendly_errors
def model_export_onnx(
    ref: Annotated[str, typer.Argument(help="LoRA run directory, registry name, transformers directory or hub id.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write: the model directory, or with --adapter-only the adapter's folder."),
    ] = None,
    precision: Annotated[str, typer.Option(help="ONNX precision: int4 or fp32 (fp16 needs CUDA).")] = "int4",
    adapter_only: Annotated[
        bool,
        typer.Option(
            "--adapter-only",
            help="Export the run's adapter as an .onnx_adapter for a shared base model (the onnx backend "
            "switches adapters per request; see TUNEDESK_ADAPTERS), instead of a merged model.",
        ),
    ] = False,
) -> None:
    """Export a model (a LoRA run is merged first) for ONNX Runtime GenAI, or a run's adapter alone.

    Without --out the merged model stays in the cache, where --backend onnx --model REF finds it.

    Example: tunedesk model export-onnx runs/support --adapter-only --precision int4"""
    from finetune.export import export_adapter, export_onnx

    home = load_settings().home
    with err.status(f"exporting {ref}") as status:
        progress = lambda message: status.update(f"{ref}: {message}")  # noqa: E731
        if adapter_only:
            exported = export_adapter(ref, out, precision, home, progress)
            typer.echo(f"ONNX base with LoRA inputs: {exported.base_dir}", err=True)
            path = exported.adapter_file
        else:
            path = export_onnx(ref, out, precision, home=home, progress=progress)
    typer.echo(str(path))


@model_app.command("info")
@friendly_errors
def model_info(name: Annotated[str, typer.Argument(help="Registry name, directory or hub id.")]) -> None:
    """Show where a model comes from and its prepared artifacts with their manifests, as JSON.

    Example: tunedesk model info smollm2-135m"""
    from dataclasses import asdict

    from tunedesk.models import models_dir, prepared_artifacts, read_manifest, resolve

    home = load_settings().home
    source = resolve(name)
    info: dict[str, Any] = {
        "ref": name,
        "kind": source.kind,
        "spec": asdict(source.spec) if source.spec else None,
    }
    if source.path is not None:
        info["path"] = str(source.path)
        info["manifest"] = read_manifest(source.path)
    info["artifacts"] = {
        name: {"path": str(models_dir(home) / source.slug / name), "manifest": manifest}
        for name, manifest in prepared_artifacts(home, source.slug).items()
    }
    typer.echo(json.dumps(info, indent=2, default=str))


@app.command()
@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="What the customer asks.")],
    backend: BackendOpt = None,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option(help="System prompt (default: the support prompt).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Longest answer, in tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling mass.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
) -> None:
    """Ask the support bot one question and stream its answer to the terminal.

    Example: tunedesk ask "How do I return a product?" --backend onnx"""
    from chatbot.backends import load_backend, params_from
    from chatbot.conversation import respond

    settings = load_settings(
        backend=backend,
        model=model,
        system_prompt=system,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    with err.status(f"loading {settings.backend} backend ({settings.model})"):
        chat_backend = load_backend(settings.backend, settings)

    async def run() -> None:
        history = [{"role": "user", "content": question}]
        async for piece in respond(chat_backend, history, params_from(settings), settings.system_prompt):  # type: ignore[arg-type]
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")

    asyncio.run(run())


@app.command()
@friendly_errors
def chat(
    backend: BackendOpt = None,
    model: ModelOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes, each with its own model (TUNEDESK_WORKERS).")] = None,
) -> None:
    """Start the chat UI (Chainlit inside tunedesk's FastAPI service) on the configured backend.

    The model is prepared first and the database migrated; on the very first start an ``admin`` user is
    created and its password written to $TUNEDESK_HOME/initial-admin-password.

    Example: tunedesk chat --backend onnx --port 8000 --workers 2"""
    import uvicorn

    from chatbot.backends import backend_class

    settings = load_settings(backend=backend, model=model, host=host, port=port, workers=workers)
    with err.status(f"preparing {settings.model} for the {settings.backend} backend") as status:
        backend_class(settings.backend).prepare(settings, lambda m: status.update(m))
    if settings.grounding:  # a wrong TUNEDESK_POLICY is a one-line error now, not a failed start later
        from chatbot.grounding import SAMPLE_POLICY, policy_files

        policy_files(settings.policy or SAMPLE_POLICY)
    os.environ.update(
        CHAINLIT_APP_ROOT=str(ui_root()),
        TUNEDESK_BACKEND=settings.backend,
        TUNEDESK_MODEL=settings.model,
        TUNEDESK_HOME=str(settings.home),
    )
    if settings.workers > 1:
        if not settings.onnx_threads:  # the processes share the cores, not each one all of them
            os.environ["TUNEDESK_ONNX_THREADS"] = str(max(1, (os.cpu_count() or 1) // settings.workers))
        # migrate and create the first admin once, not in every process at the same time
        from tunedesk import users
        from tunedesk.db import engine

        engine(settings)
        if created := users.ensure_first_admin(settings):
            err.print(f"no users yet: created 'admin'; its password is in {created}")
    shown_host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
    processes = f", {settings.workers} processes" if settings.workers > 1 else ""
    err.print(f"chat UI on http://{shown_host}:{settings.port}{processes}")
    uvicorn.run(
        "chatbot.server:app", host=settings.host, port=settings.port, log_level="info", workers=settings.workers
    )


def _records_engine():  # type: ignore[no-untyped-def]
    """The configured database's engine, without the upgrade that ``tunedesk.db.engine`` applies."""
    from tunedesk.db import connect, database_url

    return connect(database_url(load_settings()))


@db_app.command("current")
@friendly_errors
def db_current() -> None:
    """Print the database's schema revision (empty before the first upgrade).

    Example: tunedesk db current"""
    from tunedesk.db import current_revision

    typer.echo(current_revision(_records_engine()) or "")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to a revision (every command does this to head on its own).

    Example: tunedesk db upgrade"""
    from tunedesk.db import current_revision, migrate

    engine = _records_engine()
    migrate(engine, revision)
    err.print(f"database at revision {current_revision(engine)}")


@db_app.command("downgrade")
@friendly_errors
def db_downgrade(revision: Annotated[str, typer.Argument(help="Revision to go back to, e.g. 0001.")]) -> None:
    """Go back to an older schema revision, dropping the tables later revisions added (back up first).

    Example: tunedesk db downgrade 0001"""
    from tunedesk.db import current_revision, downgrade

    engine = _records_engine()
    downgrade(engine, revision)
    err.print(f"database at revision {current_revision(engine)}")


@emulator_app.command("azure")
@friendly_errors
def emulator_azure(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8089,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    seconds_per_step: Annotated[float, typer.Option(help="Wall-clock seconds per training step.")] = 2.0,
) -> None:
    """Serve a local Azure OpenAI (files, fine-tuning jobs, deployments, chat) for rehearsing offline.

    Example: tunedesk emulator azure --port 8089"""
    from tunedesk.azure_emulator import main

    main(["--host", host, "--port", str(port), "--seconds-per-step", str(seconds_per_step)])


def ui_root() -> Path:
    """Chainlit's app root (chainlit.md, .chainlit/config.toml, public/): the project checkout."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "chainlit.md").is_file() else Path.cwd()


if __name__ == "__main__":
    app()
