"""tunedesk's ROUGE-1/2/L as a local evaluate module: ``evaluate.load("eval/modules/rouge")``, offline.

Decisions:
- The numbers are ``eval.metrics.score_text(["rouge"], ...)``'s, as a suite reports them: rouge-score's F-measure
  with Porter stemming, per answer and their mean, on 0-100 (sacrebleu's scale, like BLEU and chrF). Higher is
  better.
- Not the hub's ``rouge``, which reports 0-1, adds ``rougeLsum`` and does not stem unless asked.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.metrics import score_text  # From: -e /path/to/tunedesk
from eval.modules import as_result  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
ROUGE-1, ROUGE-2 and ROUGE-L as tunedesk scores support answers: rouge-score's F-measure with Porter stemming for
each answer against its reference, and the mean over answers, on 0-100. Higher is better.
"""

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    pages = "74--81",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the bot's answers.
    references (list of str): the reference answer for each prediction (one each).
Returns:
    rouge1, rouge2, rougeL (float): mean F-measure over the answers, 0-100.
    rouge1_per_example, rouge2_per_example, rougeL_per_example (list of float): each answer's F-measure, 0-100.
Examples:
    >>> rouge = evaluate.load("eval/modules/rouge")
    >>> rouge.compute(predictions=["Returns are accepted for 30 days."],
    ...               references=["Returns are accepted within 30 days."])["rouge1"]
    83.33333333333334
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://aclanthology.org/W04-1013"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        return as_result(score_text(["rouge"], predictions, references))
