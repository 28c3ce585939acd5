"""Throughput of ``tunedesk data prepare``, stage by stage, on synthetic support conversations.

Run: .venv/bin/python bench/data_prepare.py [--conversations 100000]

Writes N seeded synthetic conversations (3-7 turns, planted PII, 12 intents, 5% exact and 5% near
duplicates) as a per-turn CSV, then times each stage on the same data in one run: read, clean, redact,
deduplicate (exact + MinHash), split + leakage check, and the whole ``prepare`` end to end. Prints a
table of conversations/s and each stage's share of the stage total, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INTENTS = ["returns", "order_status", "refund", "shipping_delay", "cancellation", "payment_failure",
           "account_access", "product_question", "complaint", "warranty", "human_agent", "small_talk"]  # fmt: skip
OPENERS = ["hi", "hello", "hey there", "good morning", "yo", "hi team"]
ASKS = [
    "my order {oid} hasn't arrived",
    "i want to return the jacket from order {oid}",
    "card {card} was charged twice",
    "can't log in with {email}",
    "pls call me on {phone}",
    "ship it to {addr} instead",
    "refund to {iban} please",
]
ANSWERS = ["Thanks for reaching out. I've checked order {oid}: it ships within 2 business days.",
           "I'm sorry about that. Returns are free within 30 days; I've emailed a label to {email}.",
           "I can see the duplicate charge of $49.99. The pre-authorisation drops off within 3 days.",
           "I've reset access for {email}. The link expires in 1 hour."]  # fmt: skip


def synthesise(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fill = {
            "oid": f"#{rng.randrange(10**6, 10**7)}", "email": f"user{i}@example.com",
            "phone": f"+1 415 555 {rng.randrange(1000, 9999)}", "addr": f"{rng.randrange(1, 999)} Baker Street",
            "card": "4111 1111 1111 1111", "iban": "DE89 3704 0044 0532 0130 00",
        }  # fmt: skip
        kind = rng.random()
        copy = i > 0 and kind < 0.10  # 5% exact and 5% near duplicates of the previous conversation
        local = random.Random(i - 1 if copy else i)
        turns = []
        for t in range(local.randrange(3, 8)):
            if t % 2 == 0:
                text = f"{local.choice(OPENERS)} {local.choice(ASKS).format(**fill)} ({local.randrange(100)})"
            else:
                text = local.choice(ANSWERS).format(**fill)
            turns.append(("Customer" if t % 2 == 0 else "Agent", text))
        if copy and kind >= 0.05:  # a near duplicate: one more word in the last turn
            speaker, text = turns[-1]
            turns[-1] = (speaker, text + " thanks")
        intent = INTENTS[local.randrange(len(INTENTS))]
        for t, (speaker, text) in enumerate(turns, start=1):
            rows.append((f"c{i}", t, speaker, text, intent if t == 1 else "", ""))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversation_id", "turn", "speaker", "text", "intent", "resolved"])
        writer.writerows(rows)


def timed(stages: dict[str, float], name: str, func, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = func(*args)
    stages[name] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args(argv)

    from data.clean import clean_conversation
    from data.pii import Redactor
    from data.prepare import PrepareConfig, prepare
    from data.split import Signatures, find_leaks, remove_duplicates, split_conversations
    from data.support_chat import Turn, read_conversations

    n = args.conversations
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.csv"
        synthesise(raw, n)
        stages: dict[str, float] = {}
        counts: Counter[str] = Counter()
        conversations = timed(stages, "read", lambda: list(read_conversations(raw)))
        cleaned = timed(stages, "clean", lambda: [clean_conversation(c, counts) for c in conversations])
        redactor = Redactor()
        redacted = timed(stages, "redact", lambda: [
            c.model_copy(update={"turns": [Turn(role=t.role, content=redactor.redact(t.content)) for t in c.turns]})
            for c in cleaned
        ])  # fmt: skip
        signatures = Signatures()  # as prepare does: the leakage check reuses dedup's signatures
        unique = timed(stages, "deduplicate", remove_duplicates, redacted, 0.8, counts, signatures)
        timed(stages, "split + leakage check",
              lambda: find_leaks(split_conversations(unique, 0.1, 0.1, 0), 0.8, signatures))  # fmt: skip
        timed(stages, "prepare end to end", prepare, [raw], Path(tmp) / "out", PrepareConfig())
    staged = sum(v for k, v in stages.items() if k != "prepare end to end")
    exact, near = counts["exact_duplicates"], counts["near_duplicates"]
    print(f"{n:,} synthetic conversations; {exact:,} exact and {near:,} near duplicates")
    print(f"{'stage':<24}{'seconds':>10}{'conversations/s':>18}{'share':>8}")
    for name, seconds in stages.items():
        share = f"{seconds / staged:.0%}" if name != "prepare end to end" else ""
        print(f"{name:<24}{seconds:>10.2f}{n / seconds:>18,.0f}{share:>8}")
    print(json.dumps({
        "conversations": n,
        "conversations_per_s": {k: round(n / v) for k, v in stages.items()},
        "share_of_stages": {k: round(v / staged, 3) for k, v in stages.items() if k != "prepare end to end"},
        "pii_redacted": dict(redactor.counts),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
