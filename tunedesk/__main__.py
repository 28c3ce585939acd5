"""``python -m tunedesk``: the CLI, for launchers that take a module (``accelerate launch -m tunedesk ...``)."""

from tunedesk.cli import app

app(prog_name="tunedesk")
