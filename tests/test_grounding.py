"""Policy grounding (all-MiniLM-L6-v2 on the sample policy) and the hand-over / goodbye rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatbot import grounding, guardrails
from tunedesk.errors import ConfigError

POLICY = """# Store policy

Intro line.

## Returns

- Returns within **30 days** of delivery.
- Label fee: $6.95.

## Shipping

Standard shipping takes 3-5 business days.

### Express

Express takes 1-2 business days.
"""


def test_markdown_splits_on_headings_and_long_sections_between_blocks() -> None:
    passages = grounding.split_markdown(POLICY, "policy.md")
    assert [(p.section, p.text) for p in passages] == [
        ("Store policy", "Intro line."),
        ("Returns", "- Returns within **30 days** of delivery.\n- Label fee: $6.95."),
        ("Shipping", "Standard shipping takes 3-5 business days."),
        ("Express", "Express takes 1-2 business days."),
    ]
    long = "## Warranty\n\n" + "\n".join(f"- Clause {i}: " + "x" * 80 for i in range(20))
    parts = grounding.split_markdown(long, "w.md", max_chars=400)
    assert len(parts) > 3 and all(p.section == "Warranty" and len(p.text) <= 400 for p in parts)
    assert "\n".join(p.text for p in parts).count("- Clause") == 20  # nothing dropped


@pytest.fixture(scope="module")
def sample_index() -> grounding.PolicyIndex:
    return grounding.load_index(grounding.SAMPLE_POLICY)


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("How long does a refund take?", "Refunds"),
        ("Can I change the delivery address of an order I already placed?", "Shipping"),
        ("what is your return window", "Returns and exchanges"),
        ("I forgot my password", "Account access"),
    ],
)
def test_support_questions_find_their_policy_section(sample_index, question: str, section: str) -> None:
    hits = sample_index.search([question])
    assert hits[0].passage.section == section
    assert hits == sorted(hits, key=lambda h: -h.score) and len(hits) <= 3


@pytest.mark.parametrize("question", ["hi", "What's the weather in Paris?", "Write me a poem about cats"])
def test_small_talk_and_off_topic_questions_get_no_passage(sample_index, question: str) -> None:
    assert sample_index.search([question]) == []


def test_a_short_follow_up_is_searched_with_the_question_before_it(sample_index) -> None:
    assert sample_index.search(["and express?"]) == []
    hits = sample_index.search(["How much is standard shipping?", "and express?"])
    assert hits[0].passage.section == "Shipping"


def test_the_prompt_carries_the_sections_or_says_none_matched(sample_index) -> None:
    hits = sample_index.search(["How long does a refund take?"])
    prompt = grounding.grounded_prompt("You are a support bot.", hits)
    assert prompt.startswith("You are a support bot.") and "## Refunds" in prompt and "2 business days" in prompt
    assert "not sure" in grounding.grounded_prompt("You are a support bot.", [])
    shown = grounding.sources(hits)
    assert shown[0]["section"] == "Refunds" and shown[0]["source"] == "policy.md" and 0 < shown[0]["score"] <= 1


def test_a_policy_folder_is_indexed_and_an_edited_file_rebuilds_the_index(tmp_path: Path) -> None:
    (tmp_path / "returns.md").write_text("## Returns\n\nReturns are accepted within 60 days.\n")
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01")  # not a policy document: ignored
    first = grounding.load_index(tmp_path)
    assert first is grounding.load_index(tmp_path)  # built once
    assert [p.source for p in first.passages] == ["returns.md"]
    (tmp_path / "returns.md").write_text("## Returns\n\nReturns are accepted within 90 days.\n")
    os.utime(tmp_path / "returns.md", ns=(1, 1))  # a new mtime even on a coarse clock
    second = grounding.load_index(tmp_path)
    assert second is not first and "90 days" in second.passages[0].text


def test_bad_policy_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.md: no such policy file or folder \(TUNEDESK_POLICY\)"):
        grounding.load_index(tmp_path / "missing.md")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no policy documents"):
        grounding.load_index(tmp_path / "empty")
    latin = tmp_path / "latin.md"
    latin.write_bytes("## Retours\n\nRetour sous 30 jours, \xe9t\xe9 compris.\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.md: not UTF-8 text \(byte \d+\)"):
        grounding.load_index(latin)
    blank = tmp_path / "blank.md"
    blank.write_text("\n\n")
    with pytest.raises(ConfigError, match="empty"):
        grounding.load_index(blank)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Can I talk to an agent?", True),
        ("human please", True),
        ("Agent!", True),
        ("put me through to a real person", True),
        ("I need to speak to a manager", True),
        ("connect me with a representative", True),
        ("How do I return a product?", False),
        ("The agent who delivered was rude", False),
        ("can a human read my data?", False),
        ("I talked to a person yesterday and they said 30 days", False),
    ],
)
def test_asking_for_a_person(message: str, expected: bool) -> None:
    assert guardrails.wants_human(message) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("I'm not sure about that. I can pass your question to a human colleague.", True),
        ("I will hand this over to our team.", True),
        ("I don't know the answer.", True),
        ("You can return it within 30 days of delivery.", False),
        ("Please pass me your order number.", False),
    ],
)
def test_an_unsure_answer(answer: str, expected: bool) -> None:
    assert guardrails.sounds_unsure(answer) is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("thanks", True),
        ("Thank you so much, bye!", True),
        ("great, thanks, that is all", True),
        ("bye", True),
        ("thanks but my order is late", False),
        ("thank you for nothing, where is my parcel?", False),
    ],
)
def test_a_goodbye_ends_the_conversation(message: str, expected: bool) -> None:
    assert guardrails.says_goodbye(message) is expected
