from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunedesk.cli import app

runner = CliRunner()


def test_importing_the_cli_and_backends_registry_does_not_import_torch() -> None:
    code = (
        "import sys, tunedesk.cli, chatbot.backends, chatbot.conversation;"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime_genai') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ask", "chat", "model"):
        assert command in result.output
    result = runner.invoke(app, ["model", "--help"])
    for command in ("list", "prepare", "info"):
        assert command in result.output


def test_ask_streams_the_answer() -> None:
    result = runner.invoke(app, ["ask", "Where is my parcel?", "--backend", "echo"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "You said: Where is my parcel?\n"


def test_ask_on_onnx_answers_with_the_model(tiny_onnx_fp32: Path) -> None:
    env = {"TUNEDESK_PRECISION": "fp32"}
    result = runner.invoke(
        app, ["ask", "Hi", "-b", "onnx", "-m", "tiny-random-llama", "--max-new-tokens", "8"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_errors_are_one_line_without_traceback() -> None:
    result = runner.invoke(app, ["ask", "Hi", "--backend", "nope"])
    assert result.exit_code == 1
    assert "error: unknown backend 'nope'" in result.stderr
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["model", "info", "no-such-model"])
    assert result.exit_code == 1 and "unknown model 'no-such-model'" in result.stderr


def test_model_prepare_is_a_no_op_the_second_time(tiny_onnx_fp32: Path) -> None:
    first = runner.invoke(app, ["model", "prepare", "tiny-random-llama", "--precision", "fp32"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == str(tiny_onnx_fp32)
    created = json.loads((tiny_onnx_fp32 / "tunedesk-manifest.json").read_text())["created"]
    second = runner.invoke(app, ["model", "prepare", "tiny-random-llama", "--precision", "fp32"])
    assert second.stdout == first.stdout
    assert json.loads((tiny_onnx_fp32 / "tunedesk-manifest.json").read_text())["created"] == created


def test_model_list_and_info_show_prepared_artifacts(tiny_onnx_fp32: Path) -> None:
    listed = runner.invoke(app, ["model", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "tiny-random-llama" in line)
    assert "onnx-fp32-cpu" in row and "transformers" in row

    info = json.loads(runner.invoke(app, ["model", "info", "tiny-random-llama"]).stdout)
    assert info["kind"] == "registry"
    assert info["artifacts"]["onnx-fp32-cpu"]["manifest"]["precision"] == "fp32"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "tunedesk"
    result = subprocess.run(
        [str(script), "ask", "hello", "-b", "echo"],
        capture_output=True,
        text=True,
        env={**os.environ, "TUNEDESK_BACKEND": "echo"},
        check=True,
    )
    assert result.stdout == "You said: hello\n"


def test_ratings_outcomes_exports_csv_atomically_and_refuses_a_bad_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot import store
    from tunedesk.db import engine
    from tunedesk.settings import load_settings

    monkeypatch.setenv("TUNEDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'records.db'}")
    records = engine(load_settings())
    store.record_survey(records, "t1", "ann", store.SurveyIn(resolved=True, csat=5, comment="=SUM(A1)"))
    store.record_escalation(records, "t1", "ann", "bot_unsure")
    out = tmp_path / "csat.csv"
    result = runner.invoke(app, ["ratings", "outcomes", "--format", "csv", "--kind", "survey", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("id,created_at,kind,thread_id,user") and len(lines) == 2
    assert ",survey,t1,ann," in lines[1] and ",'=SUM(A1)," in lines[1]
    refused = runner.invoke(app, ["ratings", "outcomes", "--format", "xml", "-o", str(tmp_path / "x.csv")])
    assert refused.exit_code == 1 and "--format 'xml': choose jsonl or csv" in refused.output
    assert not (tmp_path / "x.csv").exists()
