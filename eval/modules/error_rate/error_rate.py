"""tunedesk's error rate as a local evaluate module: ``evaluate.load("eval/modules/error_rate")``, offline.

Decisions:
- Each answer is flagged by ``eval.checks.error_flags`` and the flags are summarised by
  ``eval.checks.summarise_flags``: the share of answers with any flag and the share of each kind, exactly the
  suite's ``errors`` summary. Lower is better.
- ``contexts`` is what the bot was given (the conversation and the policy text): an order number, link or price
  in the answer that is in neither the context nor the reference counts as invented.
- ``max_new_tokens_hit`` (one bool per answer, optional) says which answers stopped at the token limit, as the
  harness knows from the backend; without it, checks' heuristic decides (over 200 characters with no sentence end).
- ``off_topic`` needs the question and sentence embeddings and is decided by the harness (``eval.harness.score``),
  not by ``error_flags``: its share here is always 0.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.checks import error_flags, summarise_flags  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
Error rate as tunedesk checks support answers: the share of answers with at least one error, and the share of each
kind: empty, truncated, repetitive (a loop), refusal where the reference answered, an order number / link / price in
neither the context nor the reference (invented), PII echoed back, unsafe wording. Lower is better.
"""

_CITATION = """\
@software{tunedesk,
    title = {tunedesk: fine-tune, evaluate and serve a customer-support chatbot},
    note = {Error checks: eval/checks.py},
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the bot's answers.
    references (list of str): the reference answer for each prediction (a refusal there makes one here no error).
    contexts (list of str): what the bot was given for each answer: the conversation and the policy text.
    max_new_tokens_hit (list of bool, optional): whether each answer stopped at the token limit (truncated).
Returns:
    error_rate (float): share of answers with any flag.
    by_kind ({kind: float}): share of answers with each kind of error.
    flags (list of list of str): each answer's flags.
Examples:
    >>> error_rate = evaluate.load("eval/modules/error_rate")
    >>> error_rate.compute(predictions=["Your order #48213 ships today.", "Which order is it?"],
    ...                    references=["Which order is it?", "Which order is it?"],
    ...                    contexts=["Where is my parcel?", "Where is my parcel?"])["error_rate"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ErrorRate(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Value("string"),
                    "contexts": datasets.Value("string"),
                }
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        contexts: list[str],
        max_new_tokens_hit: list[bool] | None = None,
    ) -> dict[str, Any]:
        hits: list[bool | None] = (
            list(max_new_tokens_hit) if max_new_tokens_hit is not None else [None] * len(predictions)
        )
        if len(hits) != len(predictions):
            from tunedesk.errors import ConfigError  # here: a top-level import would add a second install hint

            raise ConfigError(f"{len(predictions)} predictions but {len(hits)} max_new_tokens_hit values")
        flags = [
            error_flags(answer, context=context, reference=reference, max_new_tokens_hit=hit)
            for answer, reference, context, hit in zip(predictions, references, contexts, hits, strict=True)
        ]
        return {**summarise_flags(flags), "flags": flags}
