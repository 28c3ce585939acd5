"""``tunedesk data prepare``: raw logs to honest, validated, PII-free splits, written atomically."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data.prepare import PrepareConfig, prepare
from data.split import find_leaks, split_conversations
from data.support_chat import Conversation, DataError, Turn
from data.validate import parse_target, validate_file
from tunedesk.cli import app

INTENTS = ["refund", "order_status", "cancel", "shipping", "account"]


def raw_csv(path: Path, conversations: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversation_id", "turn", "speaker", "text", "intent", "resolved"])
        for i in range(conversations):
            intent = INTENTS[i % len(INTENTS)]
            words = " ".join(
                rng.choice(["please", "today", "urgent", "again", "thanks", "soon", "my", "the"]) for _ in range(8)
            )
            writer.writerow(
                [
                    f"c{i}",
                    1,
                    "Customer",
                    f"Question {i} about {intent}: {words}. Mail me at user{i}@example.com",
                    intent,
                    "yes",
                ]
            )
            writer.writerow([f"c{i}", 2, "Agent", f"Answer {i} for {intent}: we will sort it out {words}.", "", ""])
            if i % 3 == 0:
                writer.writerow([f"c{i}", 3, "Customer", "Thanks!", "", ""])  # trailing customer turn: cut
        writer.writerow(["dup", 1, "Customer", "Question 0 about refund: exact copy", "refund", ""])
        writer.writerow(["dup", 2, "Agent", "Sure.", "", ""])
        writer.writerow(["dup2", 1, "Customer", "Question 0 about refund: exact copy", "refund", ""])
        writer.writerow(["dup2", 2, "Agent", "Sure.", "", ""])
        writer.writerow(["lonely", 1, "Customer", "Hello?", "refund", ""])
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prepare_writes_validated_pii_free_splits_with_a_report(tmp_path: Path) -> None:
    report = prepare([raw_csv(tmp_path / "raw.csv")], tmp_path / "out", PrepareConfig(system_prompt="Be kind."))
    out = tmp_path / "out"
    sizes = {name: len(lines(out / f"{name}.jsonl")) for name in ("train", "val", "test")}
    assert sizes == {"train": 96, "val": 12, "test": 13}  # 121 unique conversations, 80/10/10
    assert report["steps"]["exact_duplicates"] == 1 and report["steps"]["dropped_too_few_turns"] == 1
    assert report["pii_redacted"] == {"EMAIL": 120}
    assert report["stratified_by_intent"] is True
    for name in ("train", "val", "test"):
        examples = lines(out / f"{name}.jsonl")
        meta = lines(out / f"{name}.meta.jsonl")
        assert len(meta) == len(examples)
        assert all(e["messages"][0] == {"role": "system", "content": "Be kind."} for e in examples)
        assert all(e["messages"][-1]["role"] == "assistant" for e in examples)
        assert "@example.com" not in (out / f"{name}.jsonl").read_text()
        assert validate_file(out / f"{name}.jsonl", parse_target("azure:gpt-4o-mini-2024-07-18", tmp_path)).ok
    # every intent is in every split: the split is stratified
    assert all(len(part["intents"]) == len(INTENTS) for part in report["splits"].values())
    assert set(json.loads((out / "report.json").read_text())["inputs"]) == {str(tmp_path / "raw.csv")}


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    raw = raw_csv(tmp_path / "raw.csv")
    prepare([raw], tmp_path / "a", PrepareConfig(seed=1))
    prepare([raw], tmp_path / "b", PrepareConfig(seed=1))
    prepare([raw], tmp_path / "c", PrepareConfig(seed=2))
    ids = {d: [m["id"] for m in lines(tmp_path / d / "test.meta.jsonl")] for d in "abc"}
    assert ids["a"] == ids["b"] and ids["a"] != ids["c"]


def test_near_duplicates_never_cross_splits(tmp_path: Path) -> None:
    base = (  # long enough that one changed word keeps the pair near Jaccard 0.9, well above the 0.8 threshold
        "I ordered a blue jacket last week and it still has not arrived, can you tell me where the parcel is now. "
        "The tracking page has said in transit for five days and nobody answers the phone at the depot either"
    )
    conversations = [
        Conversation(
            id=f"c{i}",
            intent="shipping",
            turns=[Turn(role="user", content=f"{base} {i}"), Turn(role="assistant", content="Checking.")],
        )
        for i in range(10)
    ]
    split = split_conversations(conversations, 0.2, 0.2, seed=0)
    assert find_leaks(split, 0.8), "ten near-identical conversations split three ways must be reported"
    prepared = prepare_conversations(tmp_path, conversations)
    assert prepared["steps"]["near_duplicates"] == 9


def prepare_conversations(tmp_path: Path, conversations: list[Conversation]) -> dict:
    path = tmp_path / "raw.jsonl"
    path.write_text(
        "".join(json.dumps({"id": c.id, "intent": c.intent, **c.to_example()}) + "\n" for c in conversations)
    )
    return prepare([path], tmp_path / "out", PrepareConfig(val=0.0, test=0.0))


def test_bad_input_leaves_no_output_behind(tmp_path: Path) -> None:
    good = raw_csv(tmp_path / "raw.csv")
    prepare([good], tmp_path / "out", PrepareConfig())
    before = (tmp_path / "out" / "train.jsonl").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("conversation_id,turn,speaker,text\nc1,1,Customer,hi\nc1,x,Agent,hello\n")
    with pytest.raises(DataError, match=r"bad.csv:3: turn"):
        prepare([good, bad], tmp_path / "out", PrepareConfig())
    assert (tmp_path / "out" / "train.jsonl").read_text() == before  # the earlier output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "out", "raw.csv"]


def test_cli_prepare_then_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    raw = raw_csv(tmp_path / "raw.csv")
    result = runner.invoke(
        app, ["data", "prepare", str(raw), "--out", str(tmp_path / "build"), "--system-prompt", "Hi"]
    )
    assert result.exit_code == 0, result.output
    assert "leakage check" in result.stdout and "PII redacted: EMAIL" in result.stdout
    checked = runner.invoke(app, ["data", "validate", str(tmp_path / "build" / "train.jsonl")])
    assert checked.exit_code == 0, checked.output

    bad = runner.invoke(app, ["data", "prepare", str(raw), "--out", str(tmp_path / "x"), "--speaker", "Kunde"])
    assert bad.exit_code == 1 and "NAME=ROLE" in bad.stderr
