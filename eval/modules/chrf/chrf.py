"""tunedesk's chrF as a local evaluate module: ``evaluate.load("eval/modules/chrf")``, offline.

Decisions:
- The numbers are ``eval.metrics.score_text(["chrf"], ...)``'s, as a suite reports them: sacrebleu's chrF
  (character 6-grams, beta 2, no word n-grams) at corpus level and per answer, on 0-100. Higher is better.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.metrics import score_text  # From: -e /path/to/tunedesk
from eval.modules import as_result  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
chrF as tunedesk scores support answers: sacrebleu's character n-gram F-score (0-100) over all answers, and for
each answer, against one reference answer each. Higher is better.
"""

_CITATION = """\
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    pages = "392--395",
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
    chrf (float): corpus chrF, 0-100.
    chrf_per_example (list of float): sentence chrF of each answer, 0-100.
Examples:
    >>> chrf = evaluate.load("eval/modules/chrf")
    >>> round(chrf.compute(predictions=["Refunds take 2 business days."],
    ...                    references=["A refund is issued within 2 business days."])["chrf"], 1)
    46.9
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Chrf(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/W15-3049"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        return as_result(score_text(["chrf"], predictions, references))
