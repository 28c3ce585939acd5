"""Load an ``evaluate`` metric offline first: tunedesk's own from ``eval/modules``, the hub's only when it answers.

Decisions:
- tunedesk's names (the folders of ``eval/modules``: ``bleu``, ``rouge``, ``task_completion``...) always load the
  local module by path, so they work with no network and give the numbers a suite reports. The hub's metric of the
  same name (its ``bleu`` and ``rouge`` report 0-1) stays one ``evaluate.load(name)`` away.
- Any other name goes to the hub only after a bounded check: ``HF_HUB_OFFLINE`` or ``HF_EVALUATE_OFFLINE`` set means
  offline without touching the network; otherwise one HEAD request to the hub endpoint (huggingface_hub's session,
  so its proxy settings and ``HF_ENDPOINT``) must answer within ``timeout`` seconds. An unreachable hub is a
  ``ConfigError`` that says so and lists the local modules, instead of evaluate's "doesn't exist on the Hugging Face
  Hub either" after its own retries.
- A hub metric cached by an earlier online run is not looked for offline; ``evaluate.load(name)`` still finds it.
- evaluate (which imports torch) and huggingface_hub are imported inside the functions.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from eval.modules import MODULES_DIR, local_modules
from tunedesk.errors import ConfigError

if TYPE_CHECKING:
    from evaluate import EvaluationModule

OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE")
TRUE_VALUES = ("1", "ON", "YES", "TRUE")  # huggingface_hub's and evaluate's reading of a boolean variable


def hub_unreachable_reason(endpoint: str | None = None, timeout: float = 2.0) -> str | None:
    """Why the Hugging Face hub cannot be reached now, or None when it answers (any HTTP status counts)."""
    from huggingface_hub import constants, get_session, is_offline_mode

    for flag in OFFLINE_FLAGS:  # read now: huggingface_hub read HF_HUB_OFFLINE when first imported
        if os.environ.get(flag, "").upper() in TRUE_VALUES:
            return f"{flag} is set"
    if is_offline_mode():
        return "HF_HUB_OFFLINE was set when huggingface_hub was imported"
    url = endpoint or constants.ENDPOINT
    try:
        get_session().head(url, timeout=timeout)
    except Exception as exc:  # any failure to get an answer (DNS, refused, timeout, proxy) means unreachable
        return f"no answer from {url} within {timeout:g} s ({type(exc).__name__}: {exc})"
    return None


def load_metric(name: str, *, cache_dir: str | None = None, keep_in_memory: bool = False) -> EvaluationModule:
    """``evaluate.load`` of tunedesk's local module ``name``, or of the hub metric ``name`` when the hub answers.

    ``cache_dir`` and ``keep_in_memory`` are evaluate's: where the metric keeps predictions until ``compute``."""
    modules = local_modules()
    reason = None if name in modules else hub_unreachable_reason()
    if reason is not None:  # said before importing evaluate, which takes seconds
        raise ConfigError(
            f"metric {name!r} is not one of tunedesk's and the Hugging Face hub is unreachable ({reason}), so evaluate "
            f"cannot fetch it. tunedesk's metrics load offline: {', '.join(modules)} "
            f"(load_metric(name), or evaluate.load('{MODULES_DIR}/<name>'))."
        )
    import evaluate

    path = str(modules[name]) if name in modules else name
    return evaluate.load(path, cache_dir=cache_dir, keep_in_memory=keep_in_memory)
