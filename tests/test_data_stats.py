"""``tunedesk data stats``: counts that match the files, real PNG plots, one self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from test_data_prepare import lines, raw_csv
from typer.testing import CliRunner

from data.augment import AugmentConfig
from data.prepare import PrepareConfig, prepare
from tunedesk.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def test_stats_of_a_prepared_directory(tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    prepare([raw_csv(tmp_path / "raw.csv")], out, PrepareConfig(augment=AugmentConfig(noise_copies=1)))
    result = CliRunner().invoke(app, ["data", "stats", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats" / "stats.json").read_text())
    for name in ("train", "val", "test"):
        meta = lines(out / f"{name}.meta.jsonl")
        split = stats["splits"][name]
        assert split["conversations"] == len(meta) == len(lines(out / f"{name}.jsonl"))
        assert sum(split["intents"].values()) == len(meta)
        assert split["turns"]["min"] >= 2
    assert stats["splits"]["train"]["augmented"] == {"noise": stats["splits"]["train"]["conversations"] // 2}
    assert stats["steps"]["read"] == 123 and stats["pii_redacted"]["EMAIL"] > 0
    for plot in ("turns.png", "tokens.png", "intents.png", "steps.png"):
        assert (out / "stats" / plot).read_bytes().startswith(PNG)
    page = (out / "stats" / "stats.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "Preparation steps" in page


def test_stats_of_plain_files_count_tokens_exactly_with_a_local_tokenizer(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]})
        + "\n"
    )
    result = CliRunner().invoke(
        app, ["data", "stats", str(data), "--target", "local:tiny-random-llama", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert stats["token_count"] == "exact" and stats["splits"]["chats"]["tokens"]["max"] > 5
    assert stats["steps"] is None


def test_a_broken_line_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"messages": []}\n{"messages": [{"role": "user"}]}\n')
    result = CliRunner().invoke(app, ["data", "stats", str(data), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert f"{data}:2: messages" in " ".join(result.output.split())
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".tmp-*"))
