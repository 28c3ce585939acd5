"""Typo correction and augmentation: precise corrections, noisy/paraphrased/synthetic training data only."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from test_data_prepare import lines, raw_csv
from typer.testing import CliRunner

from data.augment import AugmentConfig, add_noise, check_paraphrase, clean_model_text, parse_generated
from data.prepare import PrepareConfig, prepare
from data.spelling import SpellingCorrector
from data.support_chat import DataError
from tunedesk.cli import app


@pytest.fixture(scope="module")
def speller() -> SpellingCorrector:
    return SpellingCorrector()


@pytest.mark.parametrize(
    ("typed", "fixed"),
    [
        ("i havent recieved my ordr yet", "i havent received my order yet"),
        ("the lamp arrived brokn", "the lamp arrived broken"),  # not the more frequent "brown"
        ("i was chargd twice on my acount", "i was charged twice on my account"),
        ("WHERE IS MY PACKGE", "WHERE IS MY PACKAGE"),
    ],
)
def test_spelling_fixes_customer_typos(speller: SpellingCorrector, typed: str, fixed: str) -> None:
    assert speller.correct(typed) == fixed


@pytest.mark.parametrize(
    "text",
    [
        "pls help thx lol, dont wanna wait tmrw",  # chat-speak stays
        "Jonh Smiht ordered the Lamppp",  # capitalised names and brands stay
        "mail jonh.smiht@exmaple.com or see https://shop.example/trakc about [ORDER_ID]",
        "#hashtagg @usernme paid $39.99 on 12/03/2024",
    ],
)
def test_spelling_leaves_names_slang_and_identifiers_alone(speller: SpellingCorrector, text: str) -> None:
    assert speller.correct(text) == text


def test_noise_adds_typos_but_never_touches_placeholders_or_numbers() -> None:
    text = "Hello, I want to return the lamp from [ORDER_ID], it cost $39.99 and you charged 2 times, please help"
    rng = random.Random(0)
    noisy = [add_noise(text, rng, rate=0.3) for _ in range(50)]
    assert sum(n != text for n in noisy) >= 45
    for n in noisy:
        assert "[ORDER_ID]" in n and "$39.99" in n and " 2 " in n
    assert any(re.search(r"\b(u|pls|wanna)\b", n) for n in noisy)  # slang appears


def test_paraphrase_checks() -> None:
    original = "My order [ORDER_ID] for $25 never came, where is it?"
    assert check_paraphrase(original, "Order [ORDER_ID] ($25) still hasn't arrived. Where is it?") is None
    assert check_paraphrase(original, original.upper()) == "unchanged"
    assert check_paraphrase(original, "You said: " + original) == "copied"
    assert (
        check_paraphrase(original, "My order for $25 never came, where is it now?") == "changed_placeholders_or_numbers"
    )
    assert check_paraphrase(original, "[ORDER_ID] $25?") == "length"
    assert clean_model_text('Sure! Here is the rewritten message:\n"Where is my parcel?"') == "Where is my parcel?"


def test_generated_conversations_parse_or_fail_clearly() -> None:
    text = "**Customer:** hi, my card got declined\nit says error 51\n**Agent:** Sorry! Please try again.\nCustomer: ok"
    conversation = parse_generated(text, "synthetic-payment-1", "payment_failure")
    assert [t.role for t in conversation.turns] == ["user", "assistant"]  # the trailing customer turn is cut
    assert conversation.turns[0].content == "hi, my card got declined\nit says error 51"
    assert conversation.augmented == "synthetic" and conversation.intent == "payment_failure"
    with pytest.raises(DataError, match="synthetic-x"):
        parse_generated("Here is a conversation about refunds.", "synthetic-x", "refund")
    with pytest.raises(DataError, match="two Customer turns"):
        parse_generated("Customer: a\nCustomer: b\nAgent: c", "synthetic-y", "refund")


def paraphraser(messages: list[dict[str, str]]) -> str:
    """A deterministic stand-in for a model that paraphrases well, in the Generate shape."""
    text = messages[-1]["content"]
    return "Hi there. " + text.replace("Question", "Query").replace("Mail me", "Write to me")


def test_augmentation_reaches_the_training_split_only(tmp_path: Path) -> None:
    config = PrepareConfig(augment=AugmentConfig(noise_copies=1, paraphrase_copies=1))
    report = prepare([raw_csv(tmp_path / "raw.csv")], tmp_path / "out", config, generate=paraphraser)
    out = tmp_path / "out"
    meta = {name: lines(out / f"{name}.meta.jsonl") for name in ("train", "val", "test")}
    originals = [m for m in meta["train"] if m["augmented"] is None]
    made = Counter(m["augmented"] for m in meta["train"] if m["augmented"])
    assert made == {"noise": len(originals), "paraphrase": len(originals)}
    assert report["steps"]["augmented_noise"] == report["steps"]["augmented_paraphrase"] == len(originals)
    assert all(m["augmented"] is None for m in meta["val"] + meta["test"])
    train = lines(out / "train.jsonl")
    paraphrased = [e for e, m in zip(train, meta["train"], strict=True) if m["augmented"] == "paraphrase"]
    assert all(e["messages"][0]["content"].startswith("Hi there. Query") for e in paraphrased)
    assert not any("@" in e["messages"][0]["content"] for e in paraphrased)  # placeholders kept, no PII
    assert sum("[EMAIL]" in e["messages"][0]["content"] for e in paraphrased) >= len(paraphrased) - 1


def test_paraphrases_that_lose_a_placeholder_are_rejected_and_counted(tmp_path: Path) -> None:
    def careless(messages: list[dict[str, str]]) -> str:
        return "Hello! " + re.sub(r"\[EMAIL\]", "my mail", messages[-1]["content"])

    config = PrepareConfig(augment=AugmentConfig(paraphrase_copies=1))
    report = prepare([raw_csv(tmp_path / "raw.csv")], tmp_path / "out", config, generate=careless)
    assert report["steps"]["paraphrase_rejected_changed_placeholders_or_numbers"] > 0
    assert "augmented_paraphrase" not in report["steps"]


def test_synthetic_conversations_follow_the_intent_list(tmp_path: Path) -> None:
    (tmp_path / "intents.yaml").write_text(
        "refund:\n  description: The customer wants money back.\n  examples: [where is my refund]\n"
        "cancel: The customer wants to cancel an order.\n"
    )
    (tmp_path / "policy.md").write_text("Refunds take 5-7 business days. Orders can be cancelled before dispatch.")
    asked: list[str] = []

    def writer(messages: list[dict[str, str]]) -> str:
        asked.append(messages[-1]["content"])
        assert "5-7 business days" in messages[0]["content"]  # the policy reaches the model
        intent = messages[-1]["content"].split(".")[0].removeprefix("Intent: ")
        n = len(asked)
        return (
            f"Customer: i need help with {intent} number {n} asap, mail me at a{n}@b.com\nAgent: Of course, case {n}."
        )

    config = PrepareConfig(
        augment=AugmentConfig(synthetic_per_intent=3, intents=tmp_path / "intents.yaml", policy=tmp_path / "policy.md")
    )
    report = prepare([raw_csv(tmp_path / "raw.csv")], tmp_path / "out", config, generate=writer)
    assert len(asked) == 6 and "where is my refund" in asked[0]
    assert report["steps"]["augmented_synthetic"] == 6
    train = lines(tmp_path / "out" / "train.jsonl")
    meta = lines(tmp_path / "out" / "train.meta.jsonl")
    synthetic = [e for e, m in zip(train, meta, strict=True) if m["augmented"] == "synthetic"]
    assert len(synthetic) == 6
    assert all("[EMAIL]" in e["messages"][0]["content"] for e in synthetic)  # model output is redacted too


def test_augmentation_without_a_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="need a backend"):
        prepare(
            [raw_csv(tmp_path / "raw.csv")], tmp_path / "out", PrepareConfig(augment=AugmentConfig(paraphrase_copies=1))
        )
    assert not (tmp_path / "out").exists()


def test_cli_paraphrases_through_a_registered_backend(tmp_path: Path) -> None:
    """The echo backend repeats the message back: every paraphrase is refused as a copy, and counted."""
    result = CliRunner().invoke(
        app,
        ["data", "prepare", str(raw_csv(tmp_path / "raw.csv", conversations=30)), "--out", str(tmp_path / "out"),
         "--correct-typos", "--noise-copies", "1", "--paraphrase-copies", "1", "--augment-backend", "echo"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    originals = report["splits"]["train"]["conversations"] // 2
    assert report["steps"]["paraphrase_rejected_copied"] == originals
    assert report["steps"]["augmented_noise"] == originals
    assert report["config"]["correct_typos"] is True
