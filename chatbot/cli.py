"""``tunedesk users|ratings|review ...``: who signs in to the chat UI, what they rated, what they should rate."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tunedesk.console import err, friendly_errors, local_time
from tunedesk.errors import ConfigError
from tunedesk.settings import load_settings

users_app = typer.Typer(help="Chat UI users: add, remove, list, API tokens.", no_args_is_help=True)
ratings_app = typer.Typer(help="Ratings agents gave in the chat UI and review queue.", no_args_is_help=True)
review_app = typer.Typer(help="The review queue: batches of answers agents rate blind.", no_args_is_help=True)


@users_app.command("add")
@friendly_errors
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (an e-mail address works well).")],
    role: Annotated[str, typer.Option(help="agent (chat, rate, review) or admin (also export ratings).")] = "agent",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin instead of a prompt.")] = False,
) -> None:
    """Add a user, or reset their password and role; the password is stored as an argon2id hash.

    Example: tunedesk users add alice@example.com --role agent"""
    from tunedesk import users

    if role not in users.ROLES:
        raise ConfigError(f"--role {role!r}: choose one of {', '.join(users.ROLES)}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = load_settings()
    created = users.add(settings, name, password, role)  # type: ignore[arg-type]
    err.print(f"{'added' if created else 'updated'} {name} ({role}) in {users.users_file(settings)}")


@users_app.command("remove")
@friendly_errors
def users_remove(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Remove a user (their ratings stay).

    Example: tunedesk users remove alice@example.com"""
    from tunedesk import users

    users.remove(load_settings(), name)
    err.print(f"removed {name}")


@users_app.command("list")
@friendly_errors
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List users, their role and how many API tokens they hold.

    Example: tunedesk users list"""
    from tunedesk import users

    found = users.all_users(load_settings())
    rows = [
        {"name": name, "role": user.role, "password": bool(user.password), "tokens": len(user.tokens)}
        for name, user in found.items()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "role", "password", "API tokens")
    for row in rows:
        table.add_row(str(row["name"]), str(row["role"]), "yes" if row["password"] else "no", str(row["tokens"]))
    Console().print(table)


@users_app.command("token")
@friendly_errors
def users_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create an API token for the ratings API (printed once on stdout; only its hash is kept).

    Example: tunedesk users token nightly-judge --label "LLM judge\""""
    from tunedesk import users

    token = users.new_token(load_settings(), name, label)
    typer.echo(token)
    err.print(f"API token for {name}: send it as 'Authorization: Bearer <token>'; it is not shown again")


@ratings_app.command("export")
@friendly_errors
def ratings_export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[datetime | None, typer.Option(help="Only ratings given at or after this time.")] = None,
    rater: Annotated[str | None, typer.Option(help="Only this rater's ratings.")] = None,
    backend: Annotated[str | None, typer.Option(help="Only ratings of this backend's answers.")] = None,
    history: Annotated[bool, typer.Option(help="Every submission, superseded ones included.")] = False,
) -> None:
    """Export ratings (what GET /api/ratings serves) from the database, without the server.

    Example: tunedesk ratings export --format csv --since 2026-11-01 -o ratings.csv"""
    from chatbot import store
    from tunedesk.db import engine

    check_format(format)
    where = store.RatingFilter(since=local_time(since), rater=rater, backend=backend, history=history)
    write_export(store.ratings(engine(load_settings()), where), format, store.EXPORT_COLUMNS, out, "ratings")


@ratings_app.command("outcomes")
@friendly_errors
def ratings_outcomes(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[datetime | None, typer.Option(help="Only those recorded at or after this time.")] = None,
    kind: Annotated[str | None, typer.Option(help="survey or escalation (default: both).")] = None,
    history: Annotated[bool, typer.Option(help="Every survey sent, changed ones included.")] = False,
) -> None:
    """Export how conversations ended (what GET /api/outcomes serves): surveys and escalations.

    Example: tunedesk ratings outcomes --format csv --kind survey -o csat.csv"""
    from chatbot import store
    from tunedesk.db import engine

    check_format(format)
    if kind not in (None, "survey", "escalation"):
        raise ConfigError(f"--kind {kind!r}: choose survey or escalation")
    rows = store.outcomes(engine(load_settings()), since=local_time(since), kind=kind, history=history)
    write_export(rows, format, store.OUTCOME_COLUMNS, out, "outcomes")


def check_format(format: str) -> None:
    """Before the database is read: a typo in --format is the user's first error, not the last."""
    if format not in ("jsonl", "csv"):
        raise ConfigError(f"--format {format!r}: choose jsonl or csv")


def write_export(rows: list[dict], format: str, columns: list[str], out: Path | None, what: str) -> None:
    """Rows as CSV or JSONL to stdout, or atomically to ``out``."""
    from chatbot import store
    from tunedesk.files import write_text_atomically

    text = store.export_text(rows, format, columns)
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_atomically(out, text)
        err.print(f"{len(rows)} {what} -> {out}")


@review_app.command("add")
@friendly_errors
def review_add(
    name: Annotated[str, typer.Argument(help="Batch name agents see, e.g. nightly-2026-11-23.")],
    from_eval: Annotated[
        Path | None, typer.Option(help="An eval run directory (its examples.jsonl).", exists=True, file_okay=False)
    ] = None,
    from_chats: Annotated[bool, typer.Option(help="Take recent chat answers instead.")] = False,
    since: Annotated[datetime | None, typer.Option(help="With --from-chats: answers given at or after this.")] = None,
    backend: Annotated[list[str] | None, typer.Option(help="With --from-eval: only these backends.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many answers (a seeded random sample).")] = 50,
    per_item: Annotated[int, typer.Option(min=1, max=50, help="Distinct agents who rate each answer.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle.")] = 0,
) -> None:
    """Make a review batch: answers agents rate one by one in the chat UI's Review profile, blind to the model.

    Example: tunedesk review add nightly-1123 --from-eval runs/eval/20261123T020000-support-nightly --limit 50"""
    from chatbot import review
    from tunedesk.db import engine

    if (from_eval is None) == (not from_chats):
        raise ConfigError("give exactly one of --from-eval DIR or --from-chats")
    records = engine(load_settings())
    if from_eval is not None:
        items, source = review.items_from_eval(from_eval, backend or ()), str(from_eval)
    else:
        items, source = review.items_from_chats(records, local_time(since)), "chats"
    count = review.add_batch(records, name, source, items, per_item, limit, seed)
    agents = "agent" if per_item == 1 else "agents"
    err.print(f"review batch {name}: {count} answers, each to be rated by {per_item} {agents}")


@review_app.command("list")
@friendly_errors
def review_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Review batches, newest first, with how far the agents have got.

    Example: tunedesk review list"""
    from chatbot import review
    from tunedesk.db import engine

    rows = review.batches(engine(load_settings()))
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table("batch", "created", "source", "answers", "fully rated", "ratings")
    for row in rows:
        table.add_row(
            str(row["name"]),
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            str(row["source"]),
            str(row["items"]),
            f"{row['complete']} (x{row['ratings_per_item']})",
            str(row["ratings"]),
        )
    Console().print(table)
