"""The errors tunedesk raises on purpose: the CLI prints their message, never a traceback."""


class TunedeskError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(TunedeskError):
    """A setting, flag or config file is wrong."""


class ModelNotFoundError(TunedeskError):
    """A model reference resolves to nothing usable."""


class ModelPreparationError(TunedeskError):
    """Converting a model (GGUF -> transformers -> ONNX) failed."""


class GenerationError(TunedeskError):
    """A backend failed to produce an answer."""


class ContextOverflowError(GenerationError):
    """The system prompt and the latest message alone do not fit the context window."""
