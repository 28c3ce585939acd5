"""``tunedesk data ...``: prepare and check fine-tuning data."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tunedesk.console import err, friendly_errors, local_time
from tunedesk.errors import ConfigError
from tunedesk.settings import load_settings

if TYPE_CHECKING:
    from data.augment import Generate

app = typer.Typer(help="Prepare and check fine-tuning data (chat-format JSONL).", no_args_is_help=True)


@app.command()
@friendly_errors
def validate(
    file: Annotated[Path, typer.Argument(help='Chat-format JSONL: one {"messages": [...]} per line.')],
    target: Annotated[
        str, typer.Option(help="azure:<base model> or local:<model>; sets the token limit and tokenizer.")
    ] = "azure:gpt-4o-mini-2024-07-18",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    max_problems: Annotated[int, typer.Option(help="Problems to list (all are counted).")] = 50,
) -> None:
    """Check a fine-tuning file the way Azure OpenAI and the OpenAI cookbook do; exit 1 on any error.

    Example: tunedesk data validate build/support/train.jsonl --target azure:gpt-4o-mini-2024-07-18"""
    from data.validate import parse_target, validate_file

    report = validate_file(file, parse_target(target, load_settings().home))
    if as_json:
        typer.echo(json.dumps(report.summary(), indent=2))
        raise typer.Exit(0 if report.ok else 1)
    for problem in report.problems[:max_problems]:
        colour = "red" if problem.severity == "error" else "yellow"
        err.print(f"[{colour}]{problem.severity}[/] {problem.format(file)}", highlight=False, soft_wrap=True)
    if len(report.problems) > max_problems:
        err.print(f"... and {len(report.problems) - max_problems} more (--max-problems, --json)")
    summary = report.summary()
    table = Table("check", "result", title=f"{file} for {report.target}")
    table.add_row("examples", str(report.examples))
    table.add_row("errors / warnings", f"{summary['errors']} / {summary['warnings']}")
    for key in ("messages_per_example", "tokens_per_example", "assistant_tokens_per_example"):
        spread = summary[key]
        table.add_row(
            key.replace("_", " "), "-" if spread is None else ", ".join(f"{k} {v}" for k, v in spread.items())
        )
    table.add_row("token count", report.token_count)
    table.add_row("default epochs", str(report.epochs))
    table.add_row("billing tokens (estimate)", f"{report.billing_tokens:,}")
    Console().print(table)
    Console().print("[bold green]PASS[/]" if report.ok else "[bold red]FAIL[/]")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
@friendly_errors
def prepare(
    inputs: Annotated[
        list[Path], typer.Argument(help="Raw logs: chat JSONL, per-turn CSV, transcripts or instruction CSV.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for train/val/test.jsonl, their .meta.jsonl and report.json.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv, transcript or instructions (default: guess).")
    ] = None,
    speaker: Annotated[
        list[str] | None, typer.Option(help="Extra speaker mapping NAME=ROLE, e.g. Kunde=user; repeatable.")
    ] = None,
    system_prompt: Annotated[
        str | None,
        typer.Option(
            help="System message for examples that have none (default: the chat's, TUNEDESK_SYSTEM_PROMPT, so a "
            "fine-tuned model is trained with the prompt it is served with; '' for none)."
        ),
    ] = None,
    val: Annotated[float, typer.Option(help="Fraction of conversations for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Fraction of conversations for test.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    redact: Annotated[bool, typer.Option(help="Replace PII with typed placeholders.")] = True,
    correct_typos: Annotated[bool, typer.Option(help="Correct likely typos in customer turns (SymSpell).")] = False,
    noise_copies: Annotated[
        int, typer.Option(min=0, help="Augment: noisy copies (typos, slang) of each training conversation.")
    ] = 0,
    paraphrase_copies: Annotated[
        int, typer.Option(min=0, help="Augment: copies with customer turns paraphrased by --augment-backend.")
    ] = 0,
    synthetic_per_intent: Annotated[
        int, typer.Option(min=0, help="Augment: conversations per intent written by --augment-backend.")
    ] = 0,
    intents: Annotated[
        Path | None, typer.Option(help="Intent list (YAML) for synthetic conversations.", exists=True, dir_okay=False)
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Store policy the synthetic agent follows.", exists=True, dir_okay=False)
    ] = None,
    augment_backend: Annotated[
        str | None, typer.Option(help="Backend that paraphrases and writes synthetic data (default: TUNEDESK_BACKEND).")
    ] = None,
    augment_model: Annotated[str | None, typer.Option(help="Model of --augment-backend.")] = None,
    augment_temperature: Annotated[float, typer.Option(help="Sampling temperature of augmentation.")] = 0.8,
) -> None:
    """Clean, redact, deduplicate and split raw support conversations into fine-tuning files.

    Example: tunedesk data prepare data/samples/support/raw.csv --out build/support"""
    from data.augment import AugmentConfig
    from data.prepare import PrepareConfig
    from data.prepare import prepare as run_prepare
    from data.support_chat import FORMATS

    speakers: dict[str, str] = {}
    for pair in speaker or []:
        name, sep, role = pair.partition("=")
        if not sep or not name.strip() or not role.strip():
            raise ConfigError(f"--speaker expects NAME=ROLE, got {pair!r}")
        speakers[name.strip()] = role.strip()
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ConfigError("--val and --test must be fractions that leave some training data")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    config = PrepareConfig(
        fmt=fmt,  # type: ignore[arg-type]  # checked against FORMATS just above
        speakers=speakers,
        system_prompt=(load_settings().system_prompt if system_prompt is None else system_prompt) or None,
        redact=redact,
        correct_typos=correct_typos,
        val=val,
        test=test,
        seed=seed,
        augment=AugmentConfig(
            noise_copies=noise_copies,
            paraphrase_copies=paraphrase_copies,
            synthetic_per_intent=synthetic_per_intent,
            intents=intents,
            policy=policy,
            seed=seed,
        ),
    )
    generate = None
    if config.augment.needs_backend:
        generate = _backend_generate(augment_backend, augment_model, augment_temperature, seed)
    # Paraphrasing shows its own progress bar; rich allows one live display at a time.
    with err.status("preparing") if generate is None else contextlib.nullcontext():
        report = run_prepare(inputs, out, config, generate, _progress)
    table = Table("step", "count", title=f"{', '.join(map(str, inputs))} -> {out}")
    for step, count in report["steps"].items():
        table.add_row(step.replace("_", " "), str(count))
    for kind, count in report["pii_redacted"].items():
        table.add_row(f"PII redacted: {kind}", str(count))
    for name, part in report["splits"].items():
        table.add_row(f"{name}.jsonl", f"{part['conversations']} conversations, {len(part['intents'])} intents")
    table.add_row("stratified by intent", "yes" if report["stratified_by_intent"] else "no (too few per intent)")
    table.add_row("leakage check", report["leakage_check"])
    Console().print(table)


AUGMENT_CONTEXT = 4096


def _backend_generate(backend: str | None, model: str | None, temperature: float, seed: int) -> Generate:
    """A ``messages -> text`` function over a chat backend: the data stage's only use of chatbot."""
    from chatbot.backends import load_backend, params_from

    settings = load_settings(backend=backend, model=model, temperature=temperature, seed=seed, max_new_tokens=512)
    # The synthetic prompt carries the whole store policy: give it room beyond the chat's default window.
    settings = settings.model_copy(update={"context_window": max(settings.context_window, AUGMENT_CONTEXT)})
    with err.status(f"loading {settings.backend} backend ({settings.model})"):
        chat_backend = load_backend(settings.backend, settings)
    params = params_from(settings)
    return lambda messages: asyncio.run(chat_backend.complete(messages, params))  # type: ignore[arg-type]


def _progress(items: Iterable[Any], description: str) -> Iterable[Any]:
    from rich.progress import track

    return track(list(items), description=description, console=err, transient=True)


@app.command()
@friendly_errors
def stats(
    inputs: Annotated[list[Path], typer.Argument(help="A 'data prepare' output directory, or chat JSONL files.")],
    out: Annotated[
        Path | None, typer.Option(help="Directory for stats.json, the PNG plots and stats.html (default: INPUT/stats).")
    ] = None,
    target: Annotated[
        str, typer.Option(help="Tokenizer to count with: azure:<base model> (approximate) or local:<model> (exact).")
    ] = "azure:gpt-4o-mini-2024-07-18",
) -> None:
    """Counts per step, intents, turn and token histograms of a prepared dataset, as PNG plots and one HTML page.

    Example: tunedesk data stats build/support"""
    from data.stats import collect, write
    from data.validate import parse_target

    if out is None:
        first = inputs[0]
        out = first / "stats" if first.is_dir() else first.parent / f"{first.stem}-stats"
    chosen = parse_target(target, load_settings().home)
    with err.status("counting"):
        splits, report = collect(inputs, chosen)
        summary = write(out, splits, report, chosen)
    table = Table("split", "conversations", "turns p50", "tokens p50 / max", "intents", "augmented", title=str(out))
    for name, part in summary["splits"].items():
        tokens = part["tokens"]
        table.add_row(
            name,
            str(part["conversations"]),
            str(part["turns"]["p50"]) if part["turns"] else "-",
            f"{tokens['p50']} / {tokens['max']}" if tokens else "-",
            str(len(part["intents"])),
            str(sum(part["augmented"].values())),
        )
    Console().print(table)
    Console().print(f"report: {out / 'stats.html'}")


@app.command()
@friendly_errors
def fetch(
    name: Annotated[str, typer.Argument(help="bitext, tweet_eval, billsum or flickr8k.")],
    out: Annotated[Path, typer.Option(help="JSONL file to write (flickr8k saves its images beside it).")],
    source: Annotated[
        str | None, typer.Option(help="Hub id or a local save_to_disk copy (default: the public hub id).")
    ] = None,
    split: Annotated[str, typer.Option(help="Split to fetch.")] = "train",
    limit: Annotated[int | None, typer.Option(min=1, help="Fetch at most this many rows.")] = None,
) -> None:
    """Download a public dataset (needs internet, or --source with a local copy) as tunedesk JSONL.

    Example: tunedesk data fetch bitext --out data/raw/bitext.jsonl"""
    from data.hub import HUB_SETS
    from data.hub import fetch as run_fetch

    if name not in HUB_SETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(HUB_SETS)}")
    with err.status(f"fetching {name} ({source or HUB_SETS[name].hub_id}, {split})"):
        written = run_fetch(name, out, source, split, limit)
    Console().print(f"{written:,} examples -> {out}")


@app.command("export-feedback")
@friendly_errors
def export_feedback(
    out: Annotated[Path, typer.Option(help="Directory for sft.jsonl, dpo.jsonl, their .meta.jsonl, summary.json.")],
    ratings_file: Annotated[
        Path | None,
        typer.Option("--ratings", help="A GET /api/ratings JSONL export instead of the database.", exists=True),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only ratings given at or after this ISO time.")] = None,
    approved_min: Annotated[
        int | None,
        typer.Option(min=1, max=5, help="Also train on answers every rater scored at least this on all three scales."),
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option(help="System message of every example (default: TUNEDESK_SYSTEM_PROMPT; '' for none).")
    ] = None,
) -> None:
    """Agents' corrections and ratings -> SFT JSONL and DPO pairs for the next fine-tune, PII-scrubbed and deduplicated.

    Example: tunedesk data export-feedback --out build/feedback --approved-min 5"""
    from datetime import datetime

    from data.feedback import build, write

    settings = load_settings()
    try:
        start = local_time(datetime.fromisoformat(since)) if since else None
    except ValueError:
        raise ConfigError(f"--since {since!r}: not an ISO time such as 2026-11-01 or 2026-11-01T09:30") from None
    threads: dict[str, list[dict[str, Any]]] = {}
    failed: frozenset[str] = frozenset()
    if ratings_file is not None:
        rows = _ratings_from_file(ratings_file, start)
    else:
        rows, threads, failed = _ratings_from_database(settings, start)
    prompt = settings.system_prompt if system_prompt is None else system_prompt
    summary = write(build(rows, threads, prompt or None, approved_min, failed), out)
    err.print(
        f"{summary['sft_examples']} SFT examples and {summary['dpo_pairs']} DPO pairs -> {out} "
        f"(from {len(rows)} ratings; PII replaced: {sum(summary['pii_redacted'].values())})"
    )


def _ratings_from_database(
    settings: Any, since: Any
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], frozenset[str]]:
    from sqlalchemy import select

    from chatbot import store
    from tunedesk.db import engine

    records = engine(settings)
    rows = store.ratings(records, store.RatingFilter(since=since))
    thread_ids = sorted({r["thread_id"] for r in rows if r["thread_id"]})
    threads: dict[str, list[dict[str, Any]]] = {}
    failed: set[str] = set()
    table = store.answers_table
    with records.connect() as conn:
        for start in range(0, len(thread_ids), 500):
            chunk = thread_ids[start : start + 500]
            query = select(table).where(table.c.thread_id.in_(chunk)).order_by(table.c.created_at)
            for answer in conn.execute(query).mappings():
                threads.setdefault(answer["thread_id"], []).append(dict(answer))
                if answer["error"]:
                    failed.add(answer["message_id"])
    return rows, threads, frozenset(failed)


def _ratings_from_file(path: Path, since: Any) -> list[dict[str, Any]]:
    """Ratings from a GET /api/ratings JSONL export, read like every other input file (``read_records``)."""
    from datetime import datetime

    from chatbot.store import EXPORT_COLUMNS
    from data.records import read_records
    from data.support_chat import DataError

    required = ("id", "kind", "message_id", "rater", "created_at")
    rows = []
    numbers = ("thumbs", "naturalness", "correctness", "helpfulness")
    for number, row in read_records(path, EXPORT_COLUMNS, fmt="jsonl"):
        missing = [name for name in required if not row.get(name)]
        if missing:
            raise DataError(f"{path}:{number}: field {missing[0]} is missing (a GET /api/ratings export has it)")
        for name, value in row.items():
            expected = (int,) if name in numbers else (str,)
            if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                kind = "a whole number" if name in numbers else "text"
                raise DataError(f"{path}:{number}: {name}: expected {kind} or null, got {type(value).__name__}")
        try:
            created = datetime.fromisoformat(str(row["created_at"]))
        except ValueError:
            raise DataError(f"{path}:{number}: field created_at is not an ISO time: {row['created_at']!r}") from None
        if since is None or created >= since:
            rows.append(row)
    return rows
