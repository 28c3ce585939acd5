"""Sentiment: normalisation, fine-tune -> save -> load -> predict, ONNX parity, predict CLI, TF-IDF, eval.

The model is a 2-layer, 32-wide BERT initialised at random, with a WordPiece vocabulary written from the
sample posts, so nothing is downloaded and the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data.sentiment import read_posts
from data.support_chat import DataError
from finetune.sentiment import (
    SentimentConfig,
    TrainResult,
    app,
    csv_safe,
    export_onnx,
    grouped_batches,
    prepare,
    train,
)
from tunedesk.errors import ConfigError, ModelNotFoundError
from tunedesk.tasks.sentiment import (
    LABELS,
    Normalization,
    TfidfBaseline,
    load_classifier,
    normalize,
    split_hashtag,
)

POSTS = Path(__file__).resolve().parents[1] / "data/samples/sentiment/posts.csv"
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@SwiftCrate where is my parcel", "@user where is my parcel"),
        ("thanks @bob_99!", "thanks @user!"),
        ("mail me at ann@example.com", "mail me at ann@example.com"),  # an address is not a mention
        ("see https://t.co/AbC123 now", "see http now"),
        ("www.zapcart.com/help is down", "http is down"),
        ("#WorstServiceEver again", "#worst service ever again"),
        ("so #happyCustomer today", "so #happy customer today"),
        ("#NYCDelays are bad", "#nyc delays are bad"),
        ("#FAIL", "#FAIL"),  # all capitals: shouting, kept as written
        ("late again 😒", "late again unamused face"),
        ("nice 👍🏽", "nice thumbs up medium skin tone"),
        ("soooo slow", "soo slow"),
        ("greaaaat job", "greaat job"),
        ("look  at   this", "look at this"),
        ("book keeper", "book keeper"),  # two letters stay two
    ],
)
def test_normalize_handles_social_media_text(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_lowercase_is_a_setting_and_follows_the_model_when_unset() -> None:
    text = "SwiftCrate LOST my bag #WorstServiceEver"
    assert normalize(text) == "SwiftCrate LOST my bag #worst service ever"
    assert normalize(text, Normalization(lowercase=True)) == "swiftcrate lost my bag #worst service ever"
    assert Normalization().resolved(lowercase=True).lowercase is True
    assert Normalization(lowercase=False).resolved(lowercase=True).lowercase is False
    off = Normalization(mentions=False, urls=False, hashtags=False, emojis=False, elongations=False)
    assert normalize("@a soooo 😒 #BigDeal http://x.y", off) == "@a soooo 😒 #BigDeal http://x.y"


def test_split_hashtag_and_csv_safety() -> None:
    assert split_hashtag("LoveThat") == "love that"
    assert split_hashtag("iPhone15Pro") == "i phone 15 pro"
    assert split_hashtag("café") == "café"
    assert [csv_safe(v) for v in ("=SUM(A1)", "+1", "-2", "@user hi", "fine")] == [
        "'=SUM(A1)",
        "'+1",
        "'-2",
        "'@user hi",
        "fine",
    ]


def test_grouped_batches_cover_every_index_once_and_group_lengths() -> None:
    lengths = [(i * 37) % 101 for i in range(500)]
    batches = grouped_batches(lengths, batch_size=8, seed=3, window=4)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(500))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 30  # random batches of 8 from 0..100 would spread about 78
    assert batches == grouped_batches(lengths, batch_size=8, seed=3, window=4)
    assert batches != grouped_batches(lengths, batch_size=8, seed=4, window=4)


# ------------------------------------------------------------------------------------- tiny model


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT and a WordPiece tokenizer whose vocabulary is the sample posts' words."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    words: set[str] = set()
    for post in read_posts(POSTS):
        words.update(re.findall(r"\w+|[^\w\s]", normalize(post.text, Normalization(lowercase=True))))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)})
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def trained(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    work = tmp_path_factory.mktemp("sentiment")
    config = SentimentConfig(
        model=str(tiny_encoder),
        prepare_from=POSTS,
        train=work / "split/train.jsonl",
        validation=work / "split/validation.jsonl",
        test=work / "split/test.jsonl",
        output=work / "run",
        epochs=5,
        learning_rate=1e-3,
        threads=1,
    )
    return train(config, show_progress=False)


def test_prepare_splits_stratified_and_keeps_ids(tmp_path: Path) -> None:
    paths = prepare(POSTS, tmp_path, validation=0.1, test=0.2, seed=0)
    splits = {name: list(read_posts(path)) for name, path in paths.items()}
    assert [len(s) for s in splits.values()] == [1134, 162, 324]
    ids = [post.id for split in splits.values() for post in split]
    assert sorted(ids) == sorted(post.id for post in read_posts(POSTS))
    for split in splits.values():  # the sample is balanced, so is every split
        counts = [sum(1 for p in split if p.label == label) for label in LABELS]
        assert max(counts) - min(counts) <= 1
    again = prepare(POSTS, tmp_path / "again", seed=0)
    assert again["test"].read_text() == paths["test"].read_text()


def test_fine_tune_learns_and_writes_a_run(trained: TrainResult) -> None:
    history = trained.fitted.history
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.05
    assert trained.fitted.best is not None and trained.fitted.best["val_macro_f1"] > 0.6  # chance is 0.33
    manifest = json.loads((trained.output / "tunedesk-manifest.json").read_text())
    assert manifest["kind"] == "sentiment" and manifest["labels"] == list(LABELS)
    assert manifest["normalization"]["lowercase"] is True  # an uncased tokenizer
    assert manifest["test"]["test_macro_f1"] > 0.6
    assert len(manifest["data"]["train"]["sha256"]) == 64
    assert manifest["best"] == max(history, key=lambda r: (r["val_macro_f1"], -r["val_loss"]))
    assert len((trained.output / "metrics.jsonl").read_text().splitlines()) == len(history)


def test_saved_run_loads_and_predicts_like_the_trained_model(trained: TrainResult) -> None:
    texts = ["@SwiftCrate lost my bag AGAIN 😡", "does Parcelo deliver on sundays?", "sooo happy #HappyCustomer"]
    before = trained.fitted.classifier().predict(texts)
    loaded = load_classifier(trained.output)
    after = loaded.predict(texts, batch_size=2)
    assert [label for label, _ in after] == [label for label, _ in before]
    for (_, p), (_, q) in zip(before, after, strict=True):
        assert sum(q.values()) == pytest.approx(1.0, abs=1e-5)
        assert all(abs(p[k] - q[k]) < 1e-5 for k in LABELS)
    # predictions come back in input order whatever the batching
    one_by_one = [loaded.predict([text])[0][0] for text in texts]
    assert one_by_one == [label for label, _ in after]


def test_onnx_export_matches_pytorch(trained: TrainResult) -> None:
    manifest = export_onnx(trained.output, atol=1e-4)
    assert manifest["max_abs_diff"] <= 1e-4
    texts = [post.text for post in read_posts(trained.output.parent / "split/test.jsonl")][:40]
    torch_logits = load_classifier(trained.output).logits(texts, batch_size=16)
    onnx = load_classifier(trained.output, backend="onnx")
    assert onnx.backend == "onnx"
    assert abs(onnx.logits(texts, batch_size=7) - torch_logits).max() < 1e-4
    with pytest.raises(ModelNotFoundError, match="ONNX export"):
        load_classifier(trained.output / "onnx", backend="torch")


def test_predict_cli_writes_csv_safely_and_jsonl(trained: TrainResult, tmp_path: Path) -> None:
    source = tmp_path / "posts.csv"
    source.write_text('text\n=HYPERLINK("http://x")\n@Brand you lost my bag 😡\nlove it\n')
    runner = CliRunner()
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["predict", str(source), "--model", str(trained.output), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [row["text"] for row in rows] == ['\'=HYPERLINK("http://x")', "'@Brand you lost my bag 😡", "love it"]
    assert [row["id"] for row in rows] == ["posts-2", "posts-3", "posts-4"]
    for row in rows:
        assert row["label"] in LABELS
        assert sum(float(row[f"p_{label}"]) for label in LABELS) == pytest.approx(1.0, abs=1e-4)

    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text('{"id": "a", "text": "=1+1"}\n{"id": "b", "text": "meh"}\n')
    out_jsonl = tmp_path / "labels.jsonl"
    args = ["predict", str(jsonl), "-m", str(trained.output), "--backend", "onnx", "-o", str(out_jsonl)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b"] and records[0]["text"] == "=1+1"  # JSON is not a spreadsheet
    assert set(records[1]["probabilities"]) == set(LABELS)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    result = runner.invoke(app, ["predict", str(bad), "-m", str(trained.output), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1
    assert f"{bad}:2: txt: unknown field" in result.output
    assert not (tmp_path / "x.csv").exists()
    blank = tmp_path / "blank.csv"
    blank.write_text("id,text\n1,ok\n2,\n")
    with pytest.raises(DataError, match=r"blank\.csv:3: text: empty"):
        from finetune.sentiment import read_texts

        read_texts(blank)


# ------------------------------------------------------------------------------------------ TF-IDF


def test_tfidf_baseline_learns_a_separable_toy_set() -> None:
    train_texts = [
        *(f"I love this {thing} so much 😍" for thing in ("phone", "app", "bank", "shop", "cafe", "airline")),
        *(f"the {thing} was terrible, I hate it #WorstServiceEver" for thing in ("phone", "app", "bank", "shop")),
        *(f"awful {thing}, never again" for thing in ("cafe", "airline")),
        *(
            f"what time does the {thing} open on sunday?"
            for thing in ("phone", "app", "bank", "shop", "cafe", "airline")
        ),
    ]
    labels = ["positive"] * 6 + ["negative"] * 6 + ["neutral"] * 6
    baseline = TfidfBaseline().fit(train_texts, labels)
    predicted = baseline.predict(["love this store 😍", "terrible store, hate it", "what time does the store open?"])
    assert [label for label, _ in predicted] == ["positive", "negative", "neutral"]
    assert all(abs(sum(p.values()) - 1) < 1e-9 for _, p in predicted)
    # the baseline reads normalised text: a mention and a link change nothing
    same = baseline.predict(["@zapCart love this store 😍 https://t.co/x"])[0][1]
    assert same == pytest.approx(baseline.predict(["@user love this store 😍 http"])[0][1])


# ---------------------------------------------------------------------------------------- config


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: all-minilm-l6-v2\nepoch: 3\nnormalization: {emoji: true}\n")
    with pytest.raises(ConfigError) as error:
        SentimentConfig.from_yaml(path)
    assert str(error.value).startswith(f"{path}: ")
    assert "epoch: Extra inputs" in str(error.value) and "normalization.emoji: Extra inputs" in str(error.value)
    with pytest.raises(ConfigError, match="no such config file"):
        SentimentConfig.from_yaml(tmp_path / "missing.yaml")


def test_shipped_config_and_suite_load() -> None:
    import yaml

    from eval.tasks import TaskSuite

    config_file = ROOT / "finetune/configs/sentiment-minilm.yaml"
    assert config_file.read_text().startswith("# tunedesk sentiment train --config finetune/configs/sentiment-minilm")
    config = SentimentConfig.from_yaml(config_file, epochs=2)
    assert config.epochs == 2 and config.model == "all-minilm-l6-v2"
    suite_file = ROOT / "eval/suites/sentiment.yaml"
    assert suite_file.read_text().startswith("# tunedesk eval run eval/suites/sentiment.yaml")
    suite = TaskSuite.model_validate(yaml.safe_load(suite_file.read_text()))
    from eval.tasks.sentiment import MODEL_KINDS

    assert {model.kind for model in suite.models} <= set(MODEL_KINDS) and suite.primary_metric == "macro_f1"


def test_missing_model_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such model directory"):
        load_classifier(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------- eval


def test_eval_scores_every_model_with_cv(trained: TrainResult, tmp_path: Path) -> None:
    from eval.tasks import TaskSuite
    from eval.tasks.sentiment import evaluate

    split = trained.output.parent / "split"
    cv_posts = tmp_path / "cv.jsonl"
    cv_posts.write_text(
        "".join(post.model_dump_json() + "\n" for post in list(read_posts(split / "train.jsonl"))[:150])
    )
    cv_config = tmp_path / "cv.yaml"
    cv_config.write_text(f"model: {trained.manifest['base']}\nepochs: 1\nlearning_rate: 1.0e-3\nthreads: 1\n")
    suite = TaskSuite.model_validate(
        {
            "task": "sentiment",
            "name": "sentiment-test",
            "dataset": {"path": str(split / "test.jsonl"), "train": str(split / "train.jsonl"), "limit": 120},
            "models": [
                {"name": "tiny", "kind": "classifier", "model": str(trained.output)},
                {"name": "tiny-onnx", "kind": "onnx", "model": str(trained.output)},
                {"name": "tfidf", "kind": "tfidf"},
                {"name": "absent", "kind": "classifier", "model": str(tmp_path / "no-run"), "optional": True},
            ],
            "options": {"cv_folds": 2, "cv_config": str(cv_config), "cv_data": str(cv_posts)},
            "primary_metric": "macro_f1",
        }
    )
    calls: list[str] = []

    def progress(label: str, total: int):  # type: ignore[no-untyped-def]
        calls.append(label)
        return lambda n: None

    run = evaluate(suite, progress)
    assert [r.name for r in run.results] == ["tiny", "tiny-onnx", "tfidf"]
    assert "absent" in run.skipped and "no such model directory" in run.skipped["absent"]
    assert len(run.examples) == 120
    truth = [example.reference for example in run.examples]
    for result in run.results:
        correct = [float(p == t) for p, t in zip(result.predictions, truth, strict=True)]
        assert result.scores["correct"].per_example == correct
        assert result.scores["accuracy"].value == pytest.approx(sum(correct) / len(correct))
        assert 0.0 <= result.scores["macro_f1"].value <= 1.0
        assert sum(map(sum, result.details["confusion_matrix"])) == 120
        assert result.details["texts_per_s"] > 0
    tiny, onnx, tfidf = run.results
    assert onnx.predictions == tiny.predictions
    assert tfidf.scores["macro_f1"].value > 0.8  # the templated sample is easy for n-grams
    assert tfidf.details["cv"]["folds"] == 2 and len(tiny.details["cv"]["per_fold"]) == 2
    assert "cv_macro_f1" in tiny.scores and "skipped" in onnx.details["cv"]
    assert any("confusion matrices" in section and "data:image/png;base64" in section for section in run.sections)
    assert any("cross-validation" in section for section in run.sections)
    assert "tiny: 2-fold CV" in calls
    summary = tiny.summary()
    assert summary["metrics"]["macro_f1"]["value"] == tiny.scores["macro_f1"].value


def test_eval_rejects_unknown_settings_and_options(trained: TrainResult) -> None:
    from eval.tasks import TaskSuite
    from eval.tasks.sentiment import evaluate

    split = trained.output.parent / "split"
    base = {
        "task": "sentiment",
        "name": "s",
        "dataset": {"path": str(split / "test.jsonl"), "train": str(split / "train.jsonl")},
        "models": [{"name": "tfidf", "kind": "tfidf", "settings": {"C": 3}}],
        "primary_metric": "macro_f1",
    }
    with pytest.raises(ConfigError, match=r"models\.tfidf\.settings: unknown C"):
        evaluate(TaskSuite.model_validate(base))
    with pytest.raises(ConfigError, match=r"options\.cv_fold"):
        evaluate(TaskSuite.model_validate({**base, "options": {"cv_fold": 5}}))
