"""tunedesk's BLEU as a local evaluate module: ``evaluate.load("eval/modules/bleu")``, offline.

Decisions:
- The numbers are ``eval.metrics.score_text(["bleu"], ...)``'s, as a suite reports them: sacrebleu's corpus BLEU
  (default tokenizer, one reference per answer) on 0-100, and sentence BLEU with effective order per example
  (so a short answer is not 0 for lacking 4-grams). Higher is better.
- Not the hub's ``bleu`` (0-1, its own tokenizer); the hub's ``sacrebleu`` gives the same corpus score.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.metrics import score_text  # From: -e /path/to/tunedesk
from eval.modules import as_result  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
BLEU as tunedesk scores support answers: sacrebleu's corpus BLEU (0-100) over all answers, and sentence BLEU with
effective order for each answer, against one reference answer each. Higher is better.
"""

_CITATION = """\
@inproceedings{papineni-etal-2002-bleu,
    title = "{B}leu: a Method for Automatic Evaluation of Machine Translation",
    author = "Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing",
    booktitle = "Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics",
    year = "2002",
    pages = "311--318",
}
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the bot's answers.
    references (list of str): the reference answer for each prediction (one each).
Returns:
    bleu (float): corpus BLEU, 0-100.
    bleu_per_example (list of float): sentence BLEU of each answer (effective order), 0-100.
Examples:
    >>> bleu = evaluate.load("eval/modules/bleu")
    >>> bleu.compute(predictions=["Returns are free within 30 days."],
    ...              references=["Returns are free within 30 days."])["bleu"]
    100.00000000000004
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/P02-1040", "https://aclanthology.org/W18-6319"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        return as_result(score_text(["bleu"], predictions, references))
