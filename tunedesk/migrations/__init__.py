"""Alembic migrations of tunedesk's database; ``tunedesk.db.migrate`` applies them."""
