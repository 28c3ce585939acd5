"""Metrics: the numbers are the reference libraries' own on the same inputs."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from eval.metrics import TEXT_METRICS, classification_scores, cross_validated_f1, score_text
from tunedesk.embeddings import minilm_path
from tunedesk.errors import ConfigError

PREDICTIONS = [
    "You can return it within 30 days of delivery.",
    "Your refund takes 5 to 7 business days.",
    "hello",
    "We ship to Canada; it takes about a week.",
]
REFERENCES = [
    "Returns are accepted within 30 days of delivery.",
    "Refunds take 5-7 business days to reach your card.",
    "Hi! How can I help you today?",
    "Yes, we ship to Canada. Delivery takes 5 to 8 business days.",
]


def test_bleu_and_chrf_match_sacrebleu_at_corpus_and_sentence_level() -> None:
    scores = score_text(["bleu", "chrf"], PREDICTIONS, REFERENCES)
    assert scores["bleu"].value == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)
    assert scores["chrf"].value == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score)
    for i, (p, r) in enumerate(zip(PREDICTIONS, REFERENCES, strict=True)):
        assert scores["bleu"].per_example[i] == pytest.approx(sacrebleu.sentence_bleu(p, [r]).score)
        assert scores["chrf"].per_example[i] == pytest.approx(sacrebleu.sentence_chrf(p, [r]).score)
    assert scores["bleu"].aggregation == "corpus" and scores["bleu"].direction == "higher"
    assert 0 < scores["bleu"].value < 100


def test_rouge_matches_rouge_score_with_stemming() -> None:
    scores = score_text(["rouge"], PREDICTIONS, REFERENCES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = [scorer.score(r, p) for p, r in zip(PREDICTIONS, REFERENCES, strict=True)]
    for kind in ("rouge1", "rouge2", "rougeL"):
        per_example = [100 * e[kind].fmeasure for e in expected]
        assert scores[kind].per_example == pytest.approx(per_example)
        assert scores[kind].value == pytest.approx(np.mean(per_example))
    assert scores["rouge2"].value < scores["rouge1"].value


def test_semantic_similarity_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    scores = score_text(["semantic_similarity"], PREDICTIONS, REFERENCES)
    model = SentenceTransformer(minilm_path(), device="cpu")
    left = model.encode(PREDICTIONS, normalize_embeddings=True)
    right = model.encode(REFERENCES, normalize_embeddings=True)
    assert scores["semantic_similarity"].per_example == pytest.approx((left * right).sum(1).tolist(), abs=1e-5)
    similar, unrelated = scores["semantic_similarity"].per_example[0], scores["semantic_similarity"].per_example[2]
    assert similar > 0.6 > unrelated  # the refund paraphrase is close, "hello" is not


def test_bad_requests_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        score_text(["meteor"], PREDICTIONS, REFERENCES)
    with pytest.raises(ConfigError, match="4 predictions but 3 references"):
        score_text(["bleu"], PREDICTIONS, REFERENCES[:3])
    assert set(TEXT_METRICS) >= {"bleu", "chrf", "rouge", "semantic_similarity"}


def test_classification_scores_match_scikit_learn() -> None:
    rng = random.Random(0)
    labels = ["negative", "neutral", "positive"]
    truth = [rng.choice(labels) for _ in range(200)]
    predicted = [t if rng.random() < 0.7 else rng.choice(labels) for t in truth]
    scores = classification_scores(truth, predicted, labels)
    assert scores["macro"]["f1-score"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert scores["weighted"]["f1-score"] == pytest.approx(f1_score(truth, predicted, average="weighted"))
    assert scores["per_class"]["neutral"]["f1-score"] == pytest.approx(
        f1_score(truth, predicted, labels=["neutral"], average=None)[0]
    )
    assert sum(map(sum, scores["confusion_matrix"])) == 200
    assert scores["accuracy"] == pytest.approx(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))


def test_cross_validated_f1_matches_cross_val_score() -> None:
    rng = random.Random(1)
    words = {
        "positive": ["love", "great", "thanks"],
        "negative": ["broken", "late", "awful"],
        "neutral": ["store", "order"],
    }
    labels = [rng.choice(list(words)) for _ in range(150)]
    texts = [" ".join(rng.choice(words[label] + ["the", "my", "app"]) for _ in range(5)) for label in labels]

    def make() -> object:
        return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))

    def fit_predict(train_x: list[str], train_y: list[str], test_x: list[str]) -> list[str]:
        return list(make().fit(train_x, train_y).predict(test_x))  # type: ignore[attr-defined]

    ours = cross_validated_f1(fit_predict, texts, labels, folds=5, seed=0)
    reference = cross_val_score(
        make(), texts, labels, scoring="f1_macro", cv=StratifiedKFold(5, shuffle=True, random_state=0)
    )
    assert ours["per_fold"] == pytest.approx(list(reference))
    assert ours["macro_f1_mean"] == pytest.approx(reference.mean())
    assert ours["macro_f1_std"] == pytest.approx(reference.std())


def test_forked_workers_score_exactly_like_one_process(monkeypatch) -> None:
    """The split across worker processes changes the speed, never a number."""
    import sacrebleu

    import eval.metrics as metrics

    predictions = [f"Your order {i} ships in {i % 5 + 1} days, sorry for the wait." for i in range(60)]
    references = [f"Order {i} leaves the warehouse within {i % 3 + 2} business days." for i in range(60)]
    single = metrics.score_text(["bleu", "chrf", "rouge"], predictions, references)
    monkeypatch.setattr(metrics, "PARALLEL_MIN_PAIRS", 10)
    forked = metrics.score_text(["bleu", "chrf", "rouge"], predictions, references)
    for name, score in single.items():
        assert forked[name].value == score.value and forked[name].per_example == score.per_example, name
    assert forked["bleu"].value == sacrebleu.corpus_bleu(predictions, [references]).score
    assert forked["chrf"].per_example[7] == sacrebleu.sentence_chrf(predictions[7], [references[7]]).score


def test_scoring_benchmark_reports_identical_scores() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench" / "eval_scoring.py"
    done = subprocess.run([sys.executable, str(bench), "--pairs", "300"], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["identical"] is True and figures["pairs"] == 300
