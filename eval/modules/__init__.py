"""tunedesk's metrics as local ``evaluate`` modules: ``evaluate.load("eval/modules/task_completion")`` works offline.

One folder per metric, ``<name>/<name>.py``, the layout ``evaluate.load`` expects of a local path:
``bleu``, ``chrf``, ``rouge``, ``semantic_similarity`` (``eval.metrics.score_text``), ``classification``
(``eval.metrics.classification_scores``), ``task_completion`` and ``error_rate`` (``eval.checks``).
``eval.hub.load_metric(name)`` loads them by name.

Decisions:
- Each module is a thin ``evaluate.Metric``: ``_info`` documents the inputs, ``_compute`` calls tunedesk's own
  function on them, so a module's numbers are the suite's numbers (tests compare them) and no formula exists twice.
- ``evaluate.load`` copies ``<name>.py`` alone into its modules cache
  (``$HF_MODULES_CACHE/evaluate_modules/metrics/<name>/<hash>/``) and imports it from there. A module therefore
  reads no file next to it and imports no neighbour; it imports tunedesk by package name
  (``from eval.checks import ...``), which resolves because tunedesk is installed (``pip install -e .`` puts the
  project root on ``sys.path`` through its ``.pth`` file; a wheel puts ``eval`` in site-packages). evaluate
  imports every top-level import of the script before loading it, so without tunedesk installed the load stops at
  once with "you need to install the following dependencies['eval'] using 'pip install -e /path/to/tunedesk'":
  the ``# From:`` comment on each tunedesk import is evaluate's install hint, which would otherwise say
  ``pip install eval``, a package that is not tunedesk. One hint per module: other tunedesk imports go inside the
  function that needs them.
- A module imports ``evaluate`` and subclasses ``evaluate.Metric``, never ``from evaluate import Metric``:
  evaluate takes the first ``EvaluationModule`` subclass it finds in the module's namespace as the metric.
- Text metrics return a flat dict, as evaluate's own do: each score's aggregate under its name (``rougeL``) and
  its per-example scores under ``<name>_per_example``. The others return what tunedesk reports: the dict of
  ``summarise_flags`` or ``classification_scores`` as it is, the harness's ``task_completion`` summary, and each
  answer's flags or verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eval.metrics import Score

MODULES_DIR = Path(__file__).resolve().parent


def local_modules() -> dict[str, Path]:
    """Every shipped module by name: ``{"bleu": .../eval/modules/bleu, ...}`` (the path ``evaluate.load`` takes)."""
    return {
        folder.name: folder
        for folder in sorted(MODULES_DIR.iterdir())
        if folder.is_dir() and (folder / f"{folder.name}.py").is_file()
    }


def as_result(scores: dict[str, Score]) -> dict[str, Any]:
    """``score_text``'s scores as an evaluate result: ``{"bleu": 31.2, "bleu_per_example": [...], ...}``."""
    result: dict[str, Any] = {}
    for name, score in scores.items():
        result[name] = score.value
        result[f"{name}_per_example"] = score.per_example
    return result
