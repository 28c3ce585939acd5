"""The support sample (``data/samples/support``): reproducible, balanced, true to its policy, and it survives prepare."""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import pytest

from data.augment import load_intents
from data.pii import luhn_ok
from data.prepare import PrepareConfig, prepare
from data.support_chat import Conversation, read_conversations
from data.validate import parse_target, validate_file

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "support"
RAW = SAMPLE / "raw.csv"
INTENTS = {
    "returns", "order_status", "refund", "shipping_delay", "cancellation", "payment_failure", "account_access",
    "product_question", "complaint", "warranty", "escalation_to_human", "small_talk",
}  # fmt: skip


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("support_sample_generate", SAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, str]]]:
    """raw.csv rows by conversation id, in file order."""
    by_id: dict[str, list[dict[str, str]]] = defaultdict(list)
    with RAW.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_id[row["conversation_id"]].append(row)
    return by_id


@pytest.fixture(scope="module")
def conversations() -> list[Conversation]:
    return list(read_conversations(RAW))


@pytest.fixture(scope="module")
def agent_turns(conversations: list[Conversation]) -> list[str]:
    return [t.content for c in conversations for t in c.turns if t.role == "assistant"]


@pytest.fixture(scope="module")
def policy() -> str:
    return (SAMPLE / "policy.md").read_text(encoding="utf-8")


def test_regenerating_with_the_default_seed_reproduces_raw_csv(generator: ModuleType, tmp_path: Path) -> None:
    generator.main(["--out", str(tmp_path / "raw.csv")])
    assert (tmp_path / "raw.csv").read_bytes() == RAW.read_bytes(), "raw.csv is stale: run generate.py"
    small = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        generator.main(["--seed", seed, "--count", "60", "--out", str(tmp_path / f"{name}.csv")])
        small[name] = (tmp_path / f"{name}.csv").read_bytes()
    assert small["a"] == small["b"] != small["c"]
    assert len(list(read_conversations(tmp_path / "a.csv"))) == 60


def test_shape_intents_and_resolved_flags(rows: dict[str, list[dict[str, str]]]) -> None:
    assert len(rows) >= 700
    assert set(next(iter(rows.values()))[0]) == {"conversation_id", "turn", "speaker", "text", "intent", "resolved"}
    intents: Counter[str] = Counter()
    resolved: dict[str, set[str]] = defaultdict(set)
    for key, turns in rows.items():
        assert sorted(int(r["turn"]) for r in turns) == list(range(1, len(turns) + 1)), key
        assert 2 <= len(turns) <= 8, key
        assert {r["speaker"] for r in turns} <= {"customer", "agent"}, key
        assert len({(r["intent"], r["resolved"]) for r in turns}) == 1, f"{key}: intent or resolved changes"
        intents[turns[0]["intent"]] += 1
        resolved[turns[0]["intent"]].add(turns[0]["resolved"])
    assert set(intents) == INTENTS
    assert min(intents.values()) >= 40, intents
    assert max(intents.values()) - min(intents.values()) <= 10, f"unbalanced: {intents}"
    assert resolved["escalation_to_human"] == {"false"}
    assert resolved["complaint"] == {"true", "false"}


def test_planted_mess_is_there(rows: dict[str, list[dict[str, str]]]) -> None:
    texts = ["\n".join(r["text"] for r in turns) for turns in rows.values()]
    everything = "\n".join(texts)
    cards = [m.replace(" ", "") for m in re.findall(r"(?<![A-Z0-9] )\b\d{4}(?: \d{4}){3}\b", everything)]
    assert sum(luhn_ok(card) for card in cards) >= 3
    for pattern in (r"@\w+\.\w+", r"\+1 \d{3}-555-\d{4}|\(\d{3}\) 555-\d{4}", r"order #\d{7}|ORD-\d{4}-\d{5}",
                    r"\b[A-Z]{2}\d{2} [A-Z0-9]{4} ", r"\d+ [A-Z][a-z]+ (?:Street|Avenue|Road|Lane|Drive)", "&amp;",
                    "Sent from my iPhone", r"\$\d+\.\d\d"):  # fmt: skip
        assert re.search(pattern, everything), pattern
    assert Counter(texts).most_common(1)[0][1] >= 2, "no exact duplicate conversation"
    assert any(turns[-1]["speaker"] == "customer" for turns in rows.values())
    assert any(a["speaker"] == b["speaker"] for turns in rows.values() for a, b in pairwise(turns))


def test_intents_yaml_lists_every_intent_with_examples() -> None:
    intents = load_intents(SAMPLE / "intents.yaml")
    assert set(intents) == INTENTS
    for name, spec in intents.items():
        assert spec["description"].strip() and "\n" not in spec["description"].strip(), name
        assert 2 <= len(spec["examples"]) <= 3 and all(isinstance(e, str) and e for e in spec["examples"]), name


def policy_number(policy: str, pattern: str) -> str:
    found = re.findall(pattern, policy)
    assert len(found) == 1, f"policy.md: expected one match of {pattern!r}, got {found}"
    return str(found[0])


def quoted(turns: list[str], pattern: str) -> list[str]:
    return [m for turn in turns for m in re.findall(pattern, turn)]


def test_agents_quote_the_numbers_in_policy_md(
    agent_turns: list[str], policy: str, generator: ModuleType, rows: dict[str, list[dict[str, str]]]
) -> None:
    facts = {  # pattern in policy.md, pattern in agent turns
        "return window": (r"within \*\*(\d+) days\*\* of delivery", r"(\d+)(?:-day return window| days of delivery)"),
        "label fee": (r"Return label fee: \*\*\$(\d+\.\d\d)\*\*", r"\$(\d+\.\d\d) (?:return )?label fee"),
        "warranty": (r"\*\*(\d+)-year\*\* warranty", r"(\d+)-year warranty"),
        "reset link": (r"valid for \*\*(\d+) minutes\*\*", r"(?:valid for|works for|expires) (\d+) minutes"),
        "express fee": (r"Express shipping: .*\*\*\$(\d+\.\d\d)\*\*", r"\$(\d+\.\d\d) express fee"),
    }
    for name, (in_policy, in_chat) in facts.items():
        expected = policy_number(policy, in_policy)
        said = quoted(agent_turns, in_chat)
        assert len(said) >= 5, f"{name}: agents hardly mention it ({len(said)})"
        assert set(said) == {expected}, f"{name}: policy.md says {expected}, agents say {Counter(said)}"
    # every duration an agent quotes is one policy.md states, unit by unit
    for unit in ("business days?", "days", "minutes"):
        allowed = set(re.findall(rf"\*\*(\d+(?:-\d+)?) {unit}\*\*", policy))
        said = quoted(agent_turns, rf"\b(\d+(?:-\d+)?) {unit}\b")
        assert said and set(said) <= allowed, f"{unit}: {set(said) - allowed} are not in policy.md"
    # every amount is a policy fee or comes from the catalogue (a price, an order total, a total less the fee)
    fee = float(policy_number(policy, r"Return label fee: \*\*\$(\d+\.\d\d)\*\*"))
    amounts = {float(a) for a in re.findall(r"\*\*\$(\d+(?:\.\d\d)?)\*\*", policy)}
    totals = {round(p.price * q, 2) for p in generator.PRODUCTS for q in range(1, 5)}
    amounts |= totals | {round(t - fee, 2) for t in totals}
    prices = [float(a.replace(",", "")) for a in quoted(agent_turns, r"\$(\d[\d,]*(?:\.\d\d)?)")]
    assert prices and set(prices) <= amounts, f"amounts in no price or policy: {set(prices) - amounts}"


def test_agents_never_ask_for_or_repeat_secrets(agent_turns: list[str]) -> None:
    for turn in agent_turns:
        digits = [re.sub(r"\D", "", m) for m in re.findall(r"\b\d(?:[ -]?\d){12,18}\b", turn)]
        assert not any(luhn_ok(d) for d in digits), f"an agent repeated a card number: {turn}"
        for sentence in re.split(r"(?<=[.!?])\s+", turn):
            if re.search(r"card number|security code|cvv|one-time code|your password|bank details", sentence, re.I):
                assert re.search(r"\b(?:never|don't|can't|not)\b", sentence), f"an agent asked for a secret: {sentence}"


def test_prepare_keeps_600_conversations_and_train_validates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = prepare([RAW], out, PrepareConfig())
    kept = sum(part["conversations"] for part in report["splits"].values())
    assert kept >= 600, report["steps"]
    steps = report["steps"]
    assert steps["exact_duplicates"] >= 1 and steps["near_duplicates"] >= 1 and steps["turns_merged"] >= 1
    assert {"EMAIL", "PHONE", "CARD", "IBAN", "ORDER_ID", "ADDRESS"} <= set(report["pii_redacted"])
    assert report["stratified_by_intent"] is True
    assert set(report["splits"]["test"]["intents"]) == INTENTS
    train = out / "train.jsonl"
    text = train.read_text(encoding="utf-8")
    assert "@gmail.com" not in text and "Sent from my iPhone" not in text and "&amp;" not in text
    assert validate_file(train, parse_target("azure:gpt-4o-mini-2024-07-18", tmp_path)).ok


def test_data_card_counts_match_raw_csv(rows: dict[str, list[dict[str, str]]], generator: ModuleType) -> None:
    card = (SAMPLE / "README.md").read_text(encoding="utf-8")
    table = {m[0]: (int(m[1]), int(m[2])) for m in re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \|$", card, re.M)}
    actual = {
        intent: (
            sum(turns[0]["intent"] == intent for turns in rows.values()),
            sum(turns[0]["intent"] == intent and turns[0]["resolved"] == "false" for turns in rows.values()),
        )
        for intent in INTENTS
    }
    assert table == actual
    assert f"--seed {generator.DEFAULT_SEED}" in card and "python data/samples/support/generate.py" in card
