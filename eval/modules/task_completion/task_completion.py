"""tunedesk's task completion as a local evaluate module: ``evaluate.load("eval/modules/task_completion")``.

Decisions:
- Each answer is checked by ``eval.checks.task_completion`` against the rules of its intent, read by
  ``eval.checks.load_cases`` from ``cases`` (a YAML file of intent -> require / forbid / escalate), so a rule means
  here what it means in a suite and a bad file fails with the same message.
- The intent of each answer is an input (``intents``), like the prediction: evaluate keeps the two aligned through
  ``add_batch``. An answer whose intent has no rules is not checked (``None``), and the score is the share of
  checked answers that pass, ``None`` when none was checked: the harness's summary, tested equal to it.
- ``cases`` defaults to the rules shipped for the sample support data, ``eval/cases/support.yaml`` inside the
  installed ``eval`` package (this module runs from evaluate's cache, so it cannot look next to itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import evaluate

from eval import checks  # From: -e /path/to/tunedesk

SHIPPED_CASES = Path(checks.__file__).resolve().parent / "cases" / "support.yaml"

_DESCRIPTION = """\
Task completion as tunedesk checks support answers: per intent, what a correct answer must contain (`require`:
groups of case-insensitive regular expressions, one hit per group), must not claim (`forbid`) and whether it must
offer a human (`escalate`). An answer passes when every rule of its intent holds; the score is the share of checked
answers that pass, and each failure names the rule that failed. Higher is better.
"""

_CITATION = """\
@software{tunedesk,
    title = {tunedesk: fine-tune, evaluate and serve a customer-support chatbot},
    note = {Task-completion rules: eval/checks.py and eval/cases/support.yaml},
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the bot's answers.
    intents (list of str): the intent of each answer's conversation (a key of the rules file, e.g. "refund"; "" for
        none: evaluate refuses None in a string column).
    cases (str or Path, optional): the YAML rules by intent; default: tunedesk's eval/cases/support.yaml.
Returns:
    task_completion (float or None): share of checked answers that pass every rule of their intent; None when no
        intent has rules.
    task_completion_checked (int): how many answers had rules.
    passed (list of bool or None): each answer's verdict; None where its intent has no rules.
    failed_rules (list of list of str): the rules each answer failed, e.g. "forbid: lifetime warranty".
Examples:
    >>> task_completion = evaluate.load("eval/modules/task_completion")
    >>> result = task_completion.compute(predictions=["Every product has a lifetime warranty."], intents=["warranty"])
    >>> result["task_completion"], result["failed_rules"]
    (0.0, [['forbid: lifetime warranty']])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TaskCompletion(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "intents": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], intents: list[str], cases: str | Path | None = None) -> dict[str, Any]:
        rules = checks.load_cases(Path(cases) if cases is not None else SHIPPED_CASES)
        passed: list[bool | None] = []
        failed_rules: list[list[str]] = []
        for answer, intent in zip(predictions, intents, strict=True):
            case = rules.get(intent)
            verdict = checks.task_completion(answer, case) if case is not None else None
            passed.append(verdict.passed if verdict else None)
            failed_rules.append(verdict.failed_rules if verdict else [])
        checked = [verdict for verdict in passed if verdict is not None]
        return {
            "task_completion": sum(checked) / len(checked) if checked else None,
            "task_completion_checked": len(checked),
            "passed": passed,
            "failed_rules": failed_rules,
        }
