"""A lazy registry of chat backends: name -> "module:Class", imported only when asked for.

Decisions:
- Importing this package imports no engine (no torch, no onnxruntime): the CLI and the UI stay fast.
- A backend's constructor signature is its configuration: ``load_backend`` passes it the settings
  fields it names (``model``, ``precision``, ``context_window``, ...) and nothing else.
- Loaded backends are cached per process and configuration: a model loads once, then every chat
  session shares it.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import Any

from chatbot.backends.base import Backend, GenerationParams, GenerationStats, ThreadedBackend
from tunedesk.errors import ConfigError
from tunedesk.settings import Settings

BACKENDS: dict[str, str] = {
    "onnx": "chatbot.backends.onnx:OnnxBackend",
    "local": "chatbot.backends.local:LocalBackend",
    "azure": "chatbot.backends.azure:AzureBackend",
    "echo": "chatbot.backends.echo:EchoBackend",
}

_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Backend] = {}
_cache_lock = threading.Lock()

__all__ = [
    "BACKENDS",
    "Backend",
    "GenerationParams",
    "GenerationStats",
    "ThreadedBackend",
    "backend_class",
    "load_backend",
    "params_from",
]


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}") from None
    module_name, _, attr = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), attr)
    return cls


def options_for(cls: type[Backend], settings: Settings) -> dict[str, Any]:
    """The settings fields that ``cls``'s constructor takes, by name."""
    accepted = inspect.signature(cls).parameters
    return {key: getattr(settings, key) for key in accepted if key in Settings.model_fields}


def load_backend(name: str, settings: Settings) -> Backend:
    """The backend ``name`` configured from ``settings``; loaded once per configuration."""
    cls = backend_class(name)
    options = options_for(cls, settings)
    key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = cls(**options)
        return _cache[key]


def params_from(settings: Settings) -> GenerationParams:
    """Generation parameters as configured."""
    return GenerationParams(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        repetition_penalty=settings.repetition_penalty,
        seed=settings.seed,
    )
