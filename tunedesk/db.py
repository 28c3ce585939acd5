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
- The database may go away for a while (SQLite locked by another process's long write, Postgres
  restarting). ``retrying`` runs one transaction again on such a transient error (SQLite ``locked``/``busy``,
  any Postgres ``OperationalError``, a connection SQLAlchemy invalidated), with backoff, for at most
  ``WRITE_BUDGET_S`` seconds in all (SQLite's busy timeout waits inside that budget), then raises
  ``DatabaseUnavailable``. Other errors (a constraint, a missing table) are not retried: they would fail
  again. Postgres connections are pinged before use, so a restarted server costs no failed request.
- SQLite takes one writer at a time, and its busy handler polls with sleeps, so under a burst one writer can
  lose every poll for seconds. ``retrying`` therefore queues a process's own SQLite writes on a lock (they
  wake in turn as each commits) and leaves the busy timeout to writers in other processes.
- A retried transaction may have committed before its connection died (the reply was lost, not the
  write): the work gets the same ids on every attempt, so the retry finds its own row (``IntegrityError``
  on the primary key) instead of writing a second one.
- The chat UI's data layer (Chainlit's, async) reaches the same database through ``async_url``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from tunedesk.errors import ConfigError, TunedeskError
from tunedesk.settings import Settings

log = logging.getLogger("tunedesk.db")
T = TypeVar("T")
WRITE_BUDGET_S = 5.0  # how long one write keeps trying a locked or unreachable database, in all
_sqlite_writers: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _registry_lock:
        return _sqlite_writers.setdefault(engine, threading.Lock())


def database_url(settings: Settings) -> str:
    return settings.database_url or os.environ.get("DATABASE_URL") or f"sqlite:///{settings.home / 'tunedesk.db'}"


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(f"TUNEDESK_DATABASE_URL is not a database URL: {url.split('@')[-1]!r}") from None


def sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys, a full sync and a busy timeout on every new connection of a SQLite ``engine``."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(WRITE_BUDGET_S * 1000)}")  # before WAL: switching takes a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url`` as tunedesk configures them (SQLite: directory made, pragmas), not migrated."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":  # an unreachable host fails within the write budget instead of hanging
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": max(2, int(WRITE_BUDGET_S))})
    if backend != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    sqlite_pragmas(engine)
    return engine


class DatabaseUnavailable(TunedeskError):
    """The database stayed locked or unreachable for the whole write budget; nothing was written."""


def transient(exc: DBAPIError) -> bool:
    """Whether ``exc`` is the database being away (locked, restarting, connection lost), not a bad statement."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        message = str(exc.orig).lower()  # sqlite3 raises OperationalError for "no such table" too
        return "locked" in message or "busy" in message
    return True


def retrying(engine: Engine, work: Callable[[Connection], T], what: str, budget_s: float = WRITE_BUDGET_S) -> T:
    """Run ``work`` in one transaction, again on a transient error, for at most ``budget_s`` seconds in all.

    Raises ``DatabaseUnavailable`` naming ``what`` (e.g. "the rating") when the budget is spent."""
    deadline = time.monotonic() + budget_s
    sqlite = engine.dialect.name == "sqlite"
    if not sqlite:
        return _retrying(engine, work, what, budget_s, deadline)
    writers = _writer_lock(engine)
    if not writers.acquire(timeout=budget_s):
        raise DatabaseUnavailable(
            f"the database is unavailable (busy: this process's writes ahead of it did not finish); {what} was "
            f"not saved in {budget_s:g} s, please try again"
        )
    try:
        return _retrying(engine, work, what, budget_s, deadline)
    finally:
        writers.release()


def _retrying(engine: Engine, work: Callable[[Connection], T], what: str, budget_s: float, deadline: float) -> T:
    sqlite = engine.dialect.name == "sqlite"
    pause, attempt = 0.05, 0
    while True:
        attempt += 1
        try:
            with engine.begin() as connection:
                if sqlite:  # SQLite's own wait for a lock ends with the budget, not a full timeout later
                    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={left_ms}")
                try:
                    return work(connection)
                finally:
                    if sqlite:
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(WRITE_BUDGET_S * 1000)}")
        except DBAPIError as exc:
            if not transient(exc):
                raise
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
            if time.monotonic() + pause > deadline:
                raise DatabaseUnavailable(
                    f"the database is unavailable ({reason}); {what} was not saved after {attempt} "
                    f"attempt{'s' if attempt > 1 else ''} in {budget_s:g} s, please try again"
                ) from exc
            log.warning("writing %s: the database is unavailable (%s); attempt %d, retrying", what, reason, attempt)
            time.sleep(pause)
            pause = min(1.0, pause * 2)


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
