"""The README stays true: every setting and every CLI command is documented there."""

import re
from pathlib import Path

import typer.main

from tunedesk.cli import app
from tunedesk.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in Settings.model_fields:
        assert f"`TUNEDESK_{field.upper()}`" in README, field


def commands(group: typer.core.TyperGroup, prefix: str = "tunedesk") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            found += commands(command, f"{prefix} {name}")
        else:
            found.append(f"{prefix} {name}")
    return found


def test_every_command_has_an_example() -> None:
    listed = commands(typer.main.get_group(app))
    assert "tunedesk finetune azure submit" in listed
    for command in listed:
        assert re.search(f"`{command}[ `]", README), command


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    assert "make chat" in README and "make test" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci
