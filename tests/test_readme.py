"""The README stays true: every setting and every CLI command is documented there."""

from pathlib import Path

import typer.main

from tunedesk.cli import app
from tunedesk.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in Settings.model_fields:
        assert f"`TUNEDESK_{field.upper()}`" in README, field


def test_every_command_has_an_example() -> None:
    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            for sub in command.commands:
                assert f"`tunedesk {name} {sub}" in README, f"{name} {sub}"
        else:
            assert f"`tunedesk {name} " in README, name


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    assert "make chat" in README and "make test" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci
