"""The errors tunedesk raises on purpose: the CLI prints their message, never a traceback."""

from typing import Any


class TunedeskError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(TunedeskError):
    """A setting, flag or config file is wrong."""


class DataError(TunedeskError):
    """Bad input data; the message names file, line and field."""


class ModelNotFoundError(TunedeskError):
    """A model reference resolves to nothing usable."""


class ModelPreparationError(TunedeskError):
    """Converting a model (GGUF -> transformers -> ONNX) failed."""


class GenerationError(TunedeskError):
    """A backend failed to produce an answer."""


class ContextOverflowError(GenerationError):
    """The system prompt and the latest message alone do not fit the context window."""


class ContentFilteredError(GenerationError):
    """A content filter blocked the question (``where == "prompt"``) or the answer (``"answer"``).

    The message is the polite refusal the customer sees; ``categories`` are for the log.
    """

    REFUSAL = (
        "I'm sorry, but I can't help with that request. If you need more help, I can hand you over to a human agent."
    )

    def __init__(self, where: str, categories: list[str]) -> None:
        super().__init__(self.REFUSAL)
        self.where = where
        self.categories = categories


def validation_problems(exc: Any) -> list[tuple[str, str]]:
    """``(field, message)`` for each error of a pydantic ``ValidationError`` (field "" for the whole model)."""
    return [(printable(".".join(str(part) for part in error["loc"])), error["msg"]) for error in exc.errors()]


def printable(text: str) -> str:
    """``text`` as is, or quoted with escapes when it holds a line break or control character: a name taken
    from the input (a YAML key, a CSV cell) must not break the one-line error it is quoted in."""
    return text if text.isprintable() else repr(text)
