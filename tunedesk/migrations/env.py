"""Alembic environment: run on the connection ``tunedesk.db.migrate`` passes in ``config.attributes``.

``alembic -c tunedesk/migrations/alembic.ini revision -m "..."`` (with ``TUNEDESK_DATABASE_URL`` or the
default SQLite file) writes a new revision for a developer; users never run alembic themselves.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
else:  # the alembic command line, for developers
    from tunedesk.db import database_url
    from tunedesk.settings import load_settings

    with create_engine(database_url(load_settings())).connect() as conn:
        context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
