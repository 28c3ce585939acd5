"""tunedesk's records (fine-tune jobs, eval history, chats, ratings) in one SQL database.

Decisions:
- ``TUNEDESK_DATABASE_URL`` (or ``DATABASE_URL``) takes any SQLAlchemy URL (``postgresql+psycopg://...``);
  unset, the records live in ``$TUNEDESK_HOME/tunedesk.db``, so history survives the terminal and needs no
  server.
- The schema is tunedesk's and versioned with Alembic (``tunedesk/migrations``). Opening the engine brings
  the database to the newest revision, once per process, so no command ever runs on an old schema and
  users never run alembic themselves. Stores declare their tables (SQLAlchemy Core) only to query them.
- SQLite runs in WAL mode with a busy timeout and foreign keys on, so a CLI command and a running chat UI
  can both write. A commit returns only once it is in the WAL on disk: an acknowledged rating survives a
  killed process.
- The chat UI's data layer (Chainlit's, async) reaches the same database through ``async_url``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tunedesk.errors import ConfigError
from tunedesk.settings import Settings


def database_url(settings: Settings) -> str:
    return settings.database_url or os.environ.get("DATABASE_URL") or f"sqlite:///{settings.home / 'tunedesk.db'}"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(f"TUNEDESK_DATABASE_URL is not a database URL: {url.split('@')[-1]!r}") from None


def sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys and a full sync on every new connection of a SQLite ``engine``."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url`` as tunedesk configures them (SQLite: directory made, pragmas), not migrated."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    sqlite_pragmas(engine)
    return engine


@functools.cache
def _engine(url: str) -> Engine:
    engine = connect(url)
    migrate(engine)
    return engine


def engine(settings: Settings) -> Engine:
    """The engine for the configured database (one per URL per process), migrated to the newest schema."""
    return _engine(database_url(settings))


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring ``engine``'s database up to ``revision`` with tunedesk's Alembic migrations."""
    _alembic(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take ``engine``'s database back to ``revision`` (dropping what later revisions added)."""
    _alembic(engine, "downgrade", revision)


def _alembic(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", "tunedesk:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        try:
            getattr(command, direction)(config, revision)
        except CommandError as exc:
            raise ConfigError(f"database migration {direction} to {revision!r}: {exc}") from None


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def async_url(settings: Settings) -> str:
    """The same database for an asyncio driver: aiosqlite for SQLite, psycopg (3) or asyncpg for Postgres."""
    parsed = _parse(database_url(settings))
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and driver not in ("asyncpg", "psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
