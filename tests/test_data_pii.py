"""PII: planted emails, phones, cards, IBANs, order ids and addresses in 200 conversations are all
redacted; prices, dates, quantities and other ordinary numbers are not."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from data.clean import clean_conversation, clean_text
from data.pii import Redactor, iban_ok, luhn_ok
from data.support_chat import Conversation, Turn


def luhn_number(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def iban(rng: random.Random, country: str = "DE", length: int = 22) -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(length - 4))
    for check in range(2, 99):
        candidate = f"{country}{check:02d}{bban}"
        if iban_ok(candidate):
            return candidate
    raise AssertionError("no check digits")


def spaced(text: str) -> str:
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def planted(rng: random.Random) -> list[tuple[str, str]]:
    card = luhn_number(rng, rng.choice(["4", "51", "37"]), rng.choice([16, 16, 15]))
    account = iban(rng, rng.choice(["DE", "GB", "FR"]), rng.choice([22, 22, 27]))
    n = rng.randrange(1000, 9999)
    return [
        ("EMAIL", rng.choice([f"jane.doe{n}@example.com", f"m_smith+shop{n}@mail.co.uk", f"CARLOS{n}@Example.ORG"])),
        (
            "PHONE",
            rng.choice(
                [
                    f"+1 415 555 {n}",
                    f"(415) 555-{n}",
                    f"+44 20 7946 {n}",
                    f"020 7946 {n}",
                    f"415.555.{n}",
                    f"+49 30 123{n}",
                ]
            ),
        ),
        ("CARD", rng.choice([card, spaced(card), "-".join(card[i : i + 4] for i in range(0, len(card), 4))])),
        ("IBAN", rng.choice([account, spaced(account)])),
        (
            "ORDER_ID",
            rng.choice([f"#{n}123", f"ORD-2024-{n}7", f"TKT-{n}", f"RMA{n}55", f"order number {n}456", f"ticket {n}"]),
        ),
        (
            "ADDRESS",
            rng.choice(
                [
                    f"{n % 900 + 1} Baker Street",
                    f"{n % 90 + 1} Evergreen Terrace",
                    "350 Fifth Avenue",
                    f"{n % 50 + 1} Old Mill Road",
                ]
            ),
        ),
    ]


ORDINARY = [
    "$1,299.99",
    "€45.50",
    "£7.99",
    "2024-05-01",
    "05/01/2024",
    "March 3, 2024",
    "3 items",
    "2 x 500 ml",
    "14:30",
    "in 2023",
    "15%",
    "10 kg",
    "iPhone 15",
    "size 42",
    "30 days",
    "5 to 7 business days",
    "1.5 hours",
    "order total 149.00",
    "7 day",
    "24/7",
    "version 2.3.1",
    "12 months",
    "99.9%",
    "first 100 customers",
]


def test_planted_pii_in_200_conversations_is_all_redacted_and_ordinary_numbers_survive() -> None:
    rng = random.Random(0)
    redactor = Redactor()
    planted_kinds: Counter[str] = Counter()
    for i in range(200):
        pii = planted(rng)
        rng.shuffle(pii)
        ordinary = rng.sample(ORDINARY, 4)
        customer = (
            f"Hi, I paid {ordinary[0]} on {ordinary[1]} with card {pii[0][1]}. You can reach me at {pii[1][1]} "
            f"or write to {pii[2][1]}. It was {ordinary[2]}."
        )
        agent = f"Thanks! I see {pii[3][1]} and {pii[4][1]}; refund to {pii[5][1]} within {ordinary[3]}."
        conversation = Conversation(
            id=str(i), turns=[Turn(role="user", content=customer), Turn(role="assistant", content=agent)]
        )
        redacted = " ".join(redactor.redact(t.content) for t in conversation.turns)
        for kind, value in pii:
            planted_kinds[kind] += 1
            assert value not in redacted, (kind, value, redacted)
            assert f"[{kind}]" in redacted, (kind, value, redacted)
        for value in ordinary:
            assert value in redacted, (value, redacted)
    assert redactor.counts == planted_kinds  # nothing else was redacted


def test_checksums_keep_lookalike_numbers() -> None:
    redactor = Redactor()
    assert redactor.redact("tracking 4111 1111 1111 1112") == "tracking 4111 1111 1111 1112"  # fails Luhn
    assert redactor.redact("ref DE00 1234 5678 9012 3456 78") == "ref DE00 1234 5678 9012 3456 78"  # fails mod 97
    assert redactor.redact("card 4111 1111 1111 1111") == "card [CARD]"


def test_order_id_patterns_are_configurable() -> None:
    redactor = Redactor(order_id_patterns=[r"\bSHOP\d{6}\b"])
    assert redactor.redact("order SHOP123456 and ORD-2024-1") == "order [ORDER_ID] and ORD-2024-1"


def test_cleaning_normalises_and_strips_boilerplate() -> None:
    raw = "Cafe\u0301 &amp; <b>more</b>\x07  here\r\n\r\n\r\n\r\nok\nSent from my iPhone\n-- \nJohn Smith\nACME Corp"
    assert clean_text(raw) == "Café & more here\n\nok"


def test_consecutive_turns_merge_and_empty_turns_go() -> None:
    counts: Counter[str] = Counter()
    conversation = Conversation(
        id="c",
        turns=[
            Turn(role="user", content="hi"),
            Turn(role="user", content="<p></p>"),
            Turn(role="user", content="anyone?"),
            Turn(role="assistant", content="Yes!"),
        ],
    )
    cleaned = clean_conversation(conversation, counts)
    assert [(t.role, t.content) for t in cleaned.turns] == [("user", "hi\nanyone?"), ("assistant", "Yes!")]
    assert counts == Counter(turns_cleaned=1, empty_turns_dropped=1, turns_merged=1)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("hi, my name is Sarah Lee and my order is late", "hi, my name is [NAME] and my order is late"),
        ("Mr. Okafor called twice", "Mr. [NAME] called twice"),
        ("Mrs Smith-Jones wants a refund", "Mrs [NAME] wants a refund"),
        ("Hi Sarah, thanks for waiting.", "Hi [NAME], thanks for waiting."),
        ("Thanks, Priya! Talk soon", "Thanks, [NAME]! Talk soon"),
        ("It broke again.\nKind regards,\nJohn O'Neil", "It broke again.\nKind regards,\n[NAME]"),
    ],
)
def test_person_names_in_telling_contexts_are_redacted(text: str, redacted: str) -> None:
    redactor = Redactor()
    assert redactor.redact(text) == redacted
    assert redactor.counts["NAME"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "Hi There, my name is on the account",
        "Dear Customer, your Lamp ships Monday",
        "Hi team, I paid $30 for 2 Lamps",
        "Best,\nthe Support Team",
    ],
)
def test_ordinary_capitalised_words_are_not_names(text: str) -> None:
    assert Redactor().redact(text) == text
