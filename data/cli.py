"""``tunedesk data ...``: prepare and check fine-tuning data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tunedesk.errors import TunedeskError
from tunedesk.settings import load_settings

app = typer.Typer(help="Prepare and check fine-tuning data (chat-format JSONL).", no_args_is_help=True)
err = Console(stderr=True)


@app.command()
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

    try:
        report = validate_file(file, parse_target(target, load_settings().home))
    except TunedeskError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
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
