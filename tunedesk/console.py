"""What every ``tunedesk`` command shares: the stderr console and one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tunedesk.errors import TunedeskError

err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """A ``TunedeskError`` becomes ``error: <message>`` on stderr and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TunedeskError as exc:
            # One line, never wrapped: "file:line: field" must survive grep and copy-paste.
            # Escaped: a message may quote data such as "[ORDER_ID]", which rich would take for markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def local_time(moment: datetime | None) -> datetime | None:
    """A time given on the command line; without a zone it is the user's local time (stored times are UTC)."""
    return moment.astimezone() if moment is not None and moment.tzinfo is None else moment
