"""tunedesk's own records (fine-tune jobs, ...) in one SQL database: SQLite in the home, Postgres by URL.

Decisions:
- ``TUNEDESK_DATABASE_URL`` takes any SQLAlchemy URL (``postgresql+psycopg://...``); unset, the records
  live in ``$TUNEDESK_HOME/tunedesk.db``, so history survives the terminal and needs no server.
- Each store declares its tables on its own ``MetaData`` and creates them when it opens; adding a table
  never touches another store's.
- SQLite runs in WAL mode with a busy timeout, so a CLI command and a running chat UI can both write.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tunedesk.errors import ConfigError
from tunedesk.settings import Settings


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.home / 'tunedesk.db'}"


@functools.cache
def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"TUNEDESK_DATABASE_URL is not a database URL: {url.split('@')[-1]!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def engine(settings: Settings) -> Engine:
    """The engine for the configured database (one per URL per process)."""
    return _engine(database_url(settings))
