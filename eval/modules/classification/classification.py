"""tunedesk's classification scores as a local evaluate module: ``evaluate.load("eval/modules/classification")``.

Decisions:
- The numbers are ``eval.metrics.classification_scores``' (scikit-learn's): accuracy, per-class and macro/weighted
  precision, recall, F1 and support, and the confusion matrix (rows: true label), in one call, as the sentiment
  task reports them.
- ``labels`` defaults to scikit-learn's own default, the sorted labels seen in references and predictions; pass it
  to fix the order of the confusion matrix or to count a class that never occurs.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from eval.metrics import classification_scores  # From: -e /path/to/tunedesk

_DESCRIPTION = """\
Classification scores as tunedesk reports them for the sentiment task, computed by scikit-learn: accuracy,
precision, recall, F1 and support per class and macro/weighted averaged (zero_division=0), and the confusion matrix.
"""

_CITATION = """\
@article{scikit-learn,
    title = {Scikit-learn: Machine Learning in {P}ython},
    author = {Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and
              Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
              Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
    journal = {Journal of Machine Learning Research},
    volume = {12},
    pages = {2825--2830},
    year = {2011}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the predicted label of each example.
    references (list of str): the true label of each example.
    labels (list of str, optional): the classes, in the order of the per-class scores and the confusion matrix;
        by default the sorted labels that occur in references or predictions.
Returns:
    accuracy (float), per_class ({label: {precision, recall, f1-score, support}}), macro and weighted
    ({precision, recall, f1-score, support}), labels (list of str), confusion_matrix (list of lists; rows are the
    true label, columns the predicted one).
Examples:
    >>> classification = evaluate.load("eval/modules/classification")
    >>> classification.compute(predictions=["positive", "negative"], references=["positive", "neutral"])["accuracy"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#classification-metrics"],
        )

    def _compute(
        self, predictions: list[str], references: list[str], labels: list[str] | None = None
    ) -> dict[str, Any]:
        from sklearn.utils.multiclass import unique_labels

        classes = (
            list(labels) if labels is not None else [str(label) for label in unique_labels(references, predictions)]
        )
        return classification_scores(references, predictions, classes)
