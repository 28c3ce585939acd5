"""Recipe configs read from YAML: one way to load and check them, shared by every ``finetune`` recipe.

Decisions:
- A recipe is a pydantic model (``extra="forbid"`` in each subclass) loaded from a YAML mapping; flags given on
  the command line (``None`` = not given) win over the file.
- Every error names the file, and the key at fault: a missing file, YAML that does not parse, a document
  that is not a mapping, an unknown or invalid key.
- Relative paths in a recipe are relative to the working directory, like the flags that override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ValidationError

from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import load_yaml


def read_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a ``ConfigError`` naming the file otherwise."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return raw


class RecipeConfig(BaseModel):
    """Base of the recipes' configs: ``from_yaml`` and ``to_yaml``."""

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> Self:
        """Read a YAML config; ``overrides`` that are not None win over the file."""
        raw = read_mapping(path)
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.validated(path, raw)

    @classmethod
    def validated(cls, path: Path, raw: dict[str, Any]) -> Self:
        """``raw`` as this config; a ``ConfigError`` naming ``path`` and every key at fault otherwise."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{name or '(config)'}: {message}" for name, message in validation_problems(exc))
            raise ConfigError(f"{path}: {problems}") from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
