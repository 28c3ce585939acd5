"""Hub loaders, tested on local copies in the ``datasets`` on-disk format with the public sets' columns."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from data.hub import fetch
from data.prepare import PrepareConfig, prepare
from data.schema import CaptionExample, SentimentExample, SummaryExample
from data.support_chat import DataError
from tunedesk.cli import app


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bitext_becomes_chat_jsonl_with_our_placeholders(tmp_path: Path) -> None:
    intents = ["cancel_order", "track_order", "get_refund"]
    rows = {
        "flags": ["B"] * 30,
        "instruction": [
            f"i want to {intents[i % 3].replace('_', ' ')} {{{{Order Number}}}} case {i}" for i in range(30)
        ],
        "category": ["ORDER"] * 30,
        "intent": [intents[i % 3] for i in range(30)],
        "response": [
            f"I can help with order {{{{Order Number}}}}; we'll write to {{{{Email Address}}}} ({{{{Website URL}}}}) {i}."
            for i in range(30)
        ],
    }
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(tmp_path / "bitext")
    out = tmp_path / "bitext.jsonl"
    assert fetch("bitext", out, source=str(tmp_path / "bitext")) == 30
    first = lines(out)[0]
    assert first["intent"] == "cancel_order"
    assert first["messages"][0] == {"role": "user", "content": "i want to cancel order [ORDER_ID] case 0"}
    assert (
        first["messages"][1]["content"] == "I can help with order [ORDER_ID]; we'll write to [EMAIL] ([WEBSITE_URL]) 0."
    )
    report = prepare([out], tmp_path / "prepared", PrepareConfig())  # our pipeline takes it unchanged
    assert sum(part["conversations"] for part in report["splits"].values()) == 30
    assert report["stratified_by_intent"]


def test_tweet_eval_class_labels_become_words(tmp_path: Path) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])}
    )
    rows = {"text": ["worst app ever", "the store opens at 9", "love it!! 😍"], "label": [0, 1, 2]}
    copy = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows, features=features),
            "test": datasets.Dataset.from_dict(rows, features=features),
        }
    )
    copy.save_to_disk(tmp_path / "tweet_eval")
    out = tmp_path / "tweets.jsonl"
    assert fetch("tweet_eval", out, source=str(tmp_path / "tweet_eval"), split="test") == 3
    examples = [SentimentExample.model_validate(r) for r in lines(out)]
    assert [e.label for e in examples] == ["negative", "neutral", "positive"]
    assert examples[2].text == "love it!! 😍" and examples[0].id == "tweet_eval-test-0"


def test_billsum_documents_and_summaries(tmp_path: Path) -> None:
    rows = {
        "text": ["SECTION 1. SHORT TITLE. This Act may be cited as the Clean Water Act of 2031.", "SECTION 1. ..."],
        "summary": ["Names the Clean Water Act of 2031.", "Does little."],
        "title": ["Clean Water Act of 2031", "A bill"],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(tmp_path / "billsum")  # a single Dataset, not a dict
    out = tmp_path / "bills.jsonl"
    assert fetch("billsum", out, source=str(tmp_path / "billsum"), limit=1) == 1
    (example,) = [SummaryExample.model_validate(r) for r in lines(out)]
    assert example.title == "Clean Water Act of 2031" and example.summary.startswith("Names")


def test_flickr8k_images_are_saved_beside_their_captions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)) for _ in range(2)]
    rows = {"image": images, **{f"caption_{k}": [f"a dog runs {k}", f"a cat sits {k}"] for k in range(5)}}
    features = datasets.Features(
        {"image": datasets.Image(), **{f"caption_{k}": datasets.Value("string") for k in range(5)}}
    )
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(tmp_path / "f8k")
    out = tmp_path / "captions" / "flickr.jsonl"
    assert fetch("flickr8k", out, source=str(tmp_path / "f8k")) == 10
    examples = [CaptionExample.model_validate(r) for r in lines(out)]
    assert {e.caption for e in examples if e.image.endswith("train-00001.jpg")} == {f"a cat sits {k}" for k in range(5)}
    with Image.open(out.parent / examples[0].image) as saved:
        assert saved.size == (32, 24)


def test_a_wrong_copy_or_split_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["x"]})}).save_to_disk(tmp_path / "copy")
    with pytest.raises(DataError, match="not a bitext copy: missing column"):
        fetch("bitext", tmp_path / "a.jsonl", source=str(tmp_path / "copy"))
    with pytest.raises(DataError, match="no split 'test'"):
        fetch("bitext", tmp_path / "a.jsonl", source=str(tmp_path / "copy"), split="test")
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob(".a.jsonl*"))
    result = CliRunner().invoke(app, ["data", "fetch", "imagenet", "--out", str(tmp_path / "b.jsonl")])
    assert result.exit_code != 0 and "known: bitext, tweet_eval, billsum, flickr8k" in " ".join(result.output.split())


def test_the_hub_path_is_tried_for_an_id_and_fails_clearly_offline(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot load 'bitext/Bitext-customer-support"):
        fetch("bitext", tmp_path / "a.jsonl")
