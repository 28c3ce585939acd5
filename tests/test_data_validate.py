"""``tunedesk data validate``: the cookbook's checks, Azure's rules, file:line:field in every message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from data.validate import estimate_billing, parse_target, validate_file
from tunedesk.cli import app
from tunedesk.errors import ConfigError

runner = CliRunner()
AZURE = "azure:gpt-4o-mini-2024-07-18"


def example(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": f"Where is my order number {i}?"},
            {"role": "assistant", "content": "Let me check that for you, it ships tomorrow."},
        ],
        **extra,
    }


def write(path: Path, lines: list[Any]) -> Path:
    with path.open("wb") as handle:
        for line in lines:
            handle.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            handle.write(b"\n")
    return path


def azure(home: Path):
    return parse_target(AZURE, home)


def test_a_good_file_passes_with_stats_and_billing(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path / "train.jsonl", [example(i) for i in range(12)]), azure(tmp_path))
    assert report.ok and report.examples == 12 and report.problems == []
    assert report.epochs == 9  # 12 examples x 3 epochs < 100 example-passes: raised to ceil(100 / 12)
    assert report.billing_tokens == 9 * sum(report.tokens)
    assert report.summary()["messages_per_example"] == {"min": 3, "mean": 3.0, "p95": 3, "max": 3}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ([1, 2], "train.jsonl:3: expected a JSON object, got list"),
        ({"msgs": []}, "train.jsonl:3: messages: a non-empty 'messages' list is required"),
        ({"messages": [{"role": "user"}]}, "train.jsonl:3: messages[0].content: missing 'content'"),
        ({"messages": [{"role": "bot", "content": "hi"}]}, "train.jsonl:3: messages[0].role: unrecognised role 'bot'"),
        (
            {"messages": [{"role": "user", "content": "  "}]},
            "train.jsonl:3: messages[0].content: content must be non-empty",
        ),
        (
            {"messages": [{"role": "user", "content": "hi", "mood": 1}]},
            "train.jsonl:3: messages[0].mood: unrecognised key",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, "train.jsonl:3: messages: no assistant message"),
        ({**example(), "label": "x"}, "train.jsonl:3: label: unrecognised key 'label'"),
        (
            example()
            | {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a b c"}]},
            "train.jsonl:3: messages[0].weight: weight is only allowed on assistant messages",
        ),
        (
            example()
            | {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a b c", "weight": 2}]},
            "train.jsonl:3: messages[1].weight: weight must be 0 or 1, not 2",
        ),
        (b'{"messages": [', "train.jsonl:3: invalid JSON"),
        (b'{"messages": "caf\xe9"}', "train.jsonl:3: not UTF-8: byte 0xe9 at column 18"),
        (b"", "train.jsonl:3: blank line"),
    ],
)
def test_each_problem_names_file_line_and_field(tmp_path: Path, line: Any, expected: str) -> None:
    path = write(tmp_path / "train.jsonl", [example(1), example(2), line, *[example(i) for i in range(3, 13)]])
    report = validate_file(path, azure(tmp_path))
    assert not report.ok
    messages = [p.format(path) for p in report.errors]
    assert any(
        m.startswith(str(tmp_path / expected.split(":")[0])) and expected.split(":", 1)[1] in m for m in messages
    ), messages
    assert all(p.line == 3 for p in report.errors), messages  # the other lines are fine


def test_a_50_mb_line_is_reported_without_stopping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    with path.open("wb") as handle:
        handle.write(json.dumps(example(0)).encode() + b"\n")
        handle.write(b'{"messages": "' + b"x" * (50 * 1024 * 1024) + b'"}\n')
        for i in range(1, 12):
            handle.write(json.dumps(example(i)).encode() + b"\n")
    report = validate_file(path, azure(tmp_path))
    assert [(p.line, p.code) for p in report.errors] == [(2, "line_too_long")]
    assert report.examples == 12


def test_azure_rules_and_warnings(tmp_path: Path) -> None:
    no_system = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    path = write(tmp_path / "small.jsonl", [example(0), example(0), no_system])
    report = validate_file(path, azure(tmp_path))
    codes = {(p.line, p.code, p.severity) for p in report.problems}
    assert (0, "too_few_examples", "error") in codes
    assert (2, "duplicate", "warning") in codes
    assert (3, "missing_system", "warning") in codes and (3, "short_answer", "warning") in codes


def test_local_target_counts_with_the_models_tokenizer(
    tmp_path: Path, tiny_transformers: Path, shared_home: Path
) -> None:
    from transformers import AutoTokenizer

    long_answer = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 3000}]}
    path = write(tmp_path / "train.jsonl", [example(0), long_answer])
    report = validate_file(path, parse_target("local:tiny-random-llama", shared_home))
    tokenizer = AutoTokenizer.from_pretrained(tiny_transformers)
    expected = tokenizer.apply_chat_template(example(0)["messages"], tokenize=True)
    expected = expected["input_ids"] if hasattr(expected, "keys") else expected
    assert report.tokens[0] == len(expected)
    assert [(p.line, p.code) for p in report.errors] == [(2, "too_many_tokens")]  # 2,048-token context
    assert "exact" in report.token_count


def test_unknown_targets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown Azure fine-tuning model 'gpt-9'"):
        parse_target("azure:gpt-9", tmp_path)
    with pytest.raises(ConfigError, match="--target must look like"):
        parse_target("openai", tmp_path)


def test_billing_follows_the_cookbook() -> None:
    assert estimate_billing([100] * 50, 65_536) == (3, 15_000)
    assert estimate_billing([100] * 10_000, 65_536) == (2, 2_000_000)  # 25,000 // 10,000
    assert estimate_billing([70_000], 65_536) == (25, 25 * 65_536)  # counted up to the limit


def test_cli_exit_status_and_messages(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", [example(i) for i in range(10)])
    result = runner.invoke(app, ["data", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "approximate" in result.stdout

    bad = write(
        tmp_path / "bad.jsonl", [example(i) for i in range(10)] + [{"messages": [{"role": "bot", "content": "x"}]}]
    )
    result = runner.invoke(app, ["data", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:11: messages[0].role: unrecognised role 'bot'" in result.stderr

    report = json.loads(runner.invoke(app, ["data", "validate", str(bad), "--json"]).stdout)
    assert report["ok"] is False and report["problem_counts"]["unrecognized_role"] == 1

    missing = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "no such file" in missing.stderr
