"""The Azure flow end to end: connection, fine-tune jobs, results, deployment and the azure chat backend.

Everything runs against the emulator over real HTTP with the real openai SDK, azure-identity's real
``DefaultAzureCredential`` (narrowed to the Azure CLI by ``AZURE_TOKEN_CREDENTIALS``, with a stand-in
``az`` that prints a token) and the real CLI. Nothing is patched.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ui_browser import ask as ask_in_page
from test_ui_browser import signed_in_page, start_ui
from typer.testing import CliRunner

from chatbot.backends import GenerationParams, load_backend
from tunedesk.azure import AzureError, client, connection
from tunedesk.azure_emulator import DEFAULT_OUTPUT_FILTER_WORD, DEFAULT_PROMPT_FILTER_WORD, EmulatorConfig, run_emulator
from tunedesk.cli import app
from tunedesk.errors import ConfigError, ContentFilteredError, GenerationError
from tunedesk.settings import load_settings

# Real time, but fast: a 24-example job trains in well under a second.
FAST = EmulatorConfig(
    file_processing_s=0.1, job_queue_s=0.2, seconds_per_step=0.01, deployment_provisioning_s=0.3, realtime=True
)
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator:
    with run_emulator(config=FAST) as running:
        yield running


@pytest.fixture
def azure_env(server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Settings for the emulator, key auth on the data plane and Entra ID (via a stand-in `az`) for deployments."""
    server.emulator.reset()
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    token = {"accessToken": server.bearer_token, "expires_on": int(time.time()) + 3600, "tokenType": "Bearer"}
    az.write_text(f"#!/bin/sh\necho '{json.dumps(token)}'\n")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    env = {
        "TUNEDESK_AZURE_ENDPOINT": server.endpoint,
        "TUNEDESK_AZURE_API_KEY": server.api_key,
        "TUNEDESK_AZURE_SUBSCRIPTION_ID": "sub-1",
        "TUNEDESK_AZURE_RESOURCE_GROUP": "rg-1",
        "TUNEDESK_AZURE_ACCOUNT": "acct-1",
        "TUNEDESK_AZURE_MANAGEMENT_ENDPOINT": server.endpoint,
        "TUNEDESK_AZURE_MAX_RETRIES": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def chat_file(path: Path, n: int = 24) -> Path:
    lines = [
        {
            "messages": [
                {"role": "system", "content": "You are the store's support assistant."},
                {"role": "user", "content": f"Where is my order number {1000 + i}?"},
                {"role": "assistant", "content": f"Order {1000 + i} left our warehouse and arrives within three days."},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout


def cli_fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return " ".join(result.stderr.split())


def ask(text: str, **settings: str):
    backend = load_backend("azure", load_settings(backend="azure", **settings))
    params = GenerationParams(max_new_tokens=64)

    async def run() -> str:
        return await backend.complete([{"role": "user", "content": text}], params)

    return asyncio.run(run())


# ---- connection ------------------------------------------------------------------------------------------
def test_missing_endpoint_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="TUNEDESK_AZURE_ENDPOINT.*AZURE_OPENAI_ENDPOINT"):
        connection(load_settings())
    monkeypatch.setenv("TUNEDESK_AZURE_ENDPOINT", "contoso.openai.azure.com")
    with pytest.raises(ConfigError, match="http"):
        connection(load_settings())
    monkeypatch.setenv("TUNEDESK_AZURE_ENDPOINT", "https://contoso.openai.azure.com/")
    monkeypatch.setenv("TUNEDESK_AZURE_AUTH", "key")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="TUNEDESK_AZURE_API_KEY"):
        connection(load_settings())


def test_the_sdk_variables_work_and_the_key_never_shows(server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint + "/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", server.api_key)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-06-01")
    settings = load_settings()
    conn = connection(settings)
    assert (conn.endpoint, conn.api_version, conn.auth) == (server.endpoint, "2024-06-01", "key")
    assert conn.resource_name == "127"
    assert client(conn).files.list().data == []
    monkeypatch.setenv("TUNEDESK_AZURE_API_KEY", server.api_key)
    for text in (repr(conn), str(conn), repr(load_settings()), str(load_settings().model_dump())):
        assert server.api_key not in text


def test_entra_id_through_default_azure_credential(azure_env, server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNEDESK_AZURE_API_KEY")
    conn = connection(load_settings())
    assert conn.auth == "entra" and conn.api_key is None
    assert client(conn).files.list().data == []
    assert ask("entra works?", azure_deployment="gpt-4o-mini") == "You said: entra works?"


def test_v1_api_path(azure_env) -> None:
    conn = connection(load_settings(azure_api_version="v1"))
    assert conn.v1
    assert client(conn).files.list().data == []
    assert ask("v1?", azure_deployment="gpt-4o-mini", azure_api_version="v1") == "You said: v1?"


def test_wrong_key_is_a_clear_error_without_the_key(azure_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEDESK_AZURE_API_KEY", "not-the-key-123")
    message = cli_fails("finetune", "azure", "list")
    assert "refused the credentials (401)" in message and "TUNEDESK_AZURE_API_KEY" in message
    assert "not-the-key-123" not in message


# ---- fine-tune jobs ------------------------------------------------------------------------------------------
def test_submit_follow_results_deploy_and_chat(azure_env, server, tmp_path: Path) -> None:
    train = chat_file(tmp_path / "train.jsonl")
    val = chat_file(tmp_path / "val.jsonl", 12)
    out = cli(
        "finetune", "azure", "submit", str(train), "--validation", str(val), "--suffix", "support",
        "--seed", "7", "--epochs", "2", "--wait", "--poll-s", "0.05",
    )  # fmt: skip
    job_id = out.strip().splitlines()[-1]
    assert job_id.startswith("ftjob-")

    status = json.loads(cli("finetune", "azure", "status", "last", "--json"))
    assert status["id"] == job_id and status["status"] == "succeeded"
    assert status["fine_tuned_model"].endswith("-support")
    assert status["hyperparameters"]["n_epochs"] == 2
    assert status["local"]["training_path"] == str(train)
    assert status["local"]["config"]["seed"] == 7

    events = cli("finetune", "azure", "events", job_id).splitlines()
    assert events[0].endswith("Job enqueued. Waiting for jobs ahead to complete.")  # oldest first
    assert events[-1].endswith("Job succeeded.")
    assert sum("training loss=" in line for line in events) == 2 * 24 // status["hyperparameters"]["batch_size"]

    checkpoints = json.loads(cli("finetune", "azure", "checkpoints", job_id, "--json"))
    assert len(checkpoints) == 2  # one per epoch
    final = max(checkpoints, key=lambda checkpoint: checkpoint["step_number"])
    assert final["fine_tuned_model_checkpoint"] == status["fine_tuned_model"]  # Azure names the last like the model

    written = cli("finetune", "azure", "results", "last", "--out", str(tmp_path / "results")).split()
    assert [Path(p).name for p in written] == ["results.csv", "loss.png", "accuracy.png"]
    rows = list(csv.DictReader((tmp_path / "results" / "results.csv").open()))
    assert len(rows) == status["hyperparameters"]["n_epochs"] * 24 // status["hyperparameters"]["batch_size"]
    for png in written[1:]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["steps"] == len(rows) and "train_loss" in summary["final"]

    assert (
        cli("finetune", "azure", "deploy", "last", "--name", "support-ft", "--poll-s", "0.05").strip() == "support-ft"
    )
    listed = json.loads(cli("finetune", "azure", "list", "--local", "--json"))
    assert listed[0]["job"] == job_id and listed[0]["deployment"] == "support-ft"
    assert listed[0]["training_file"] == str(train)
    assert ask("Where is my order?", azure_deployment="support-ft") == "You said: Where is my order?"

    assert "deleted" in cli("finetune", "azure", "undeploy", "support-ft")
    with pytest.raises(AzureError, match="deployment 'support-ft' does not exist"):
        ask("still there?", azure_deployment="support-ft")


def test_invalid_training_file_fails_the_job_with_azures_error(azure_env, tmp_path: Path) -> None:
    small = chat_file(tmp_path / "small.jsonl", 5)  # Azure needs at least 10 examples
    message = cli_fails("finetune", "azure", "submit", str(small), "--no-validate", "--wait", "--poll-s", "0.05")
    assert "failed: invalidTrainingFile" in message
    assert "must have at least 10" in message and "(param: training_file)" in message
    assert json.loads(cli("finetune", "azure", "status", "last", "--json"))["error"]["code"] == "invalidTrainingFile"


def test_local_checks_run_before_anything_is_uploaded(azure_env, server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(chat_file(tmp_path / "ok.jsonl").read_text() + '{"messages": [{"role": "user"}]}\n')
    message = cli_fails("finetune", "azure", "submit", str(bad))
    assert f"{bad}:25: messages[0].content" in message or f"{bad}:25:" in message
    assert "nothing was uploaded" in message
    assert client(connection(load_settings())).files.list().data == []


def test_cancel_and_unknown_statuses(azure_env, server, tmp_path: Path) -> None:
    # 200 examples x 50 epochs at batch 1 keep the job training for 100 s of the emulator's real-time clock, so
    # it is still cancellable however slow a loaded machine makes the commands (auto batch ends it in 0.5 s)
    train = str(chat_file(tmp_path / "t.jsonl", 200))
    job_id = cli("finetune", "azure", "submit", train, "--epochs", "50", "--batch-size", "1").strip()
    server.emulator.set_job_status(job_id, "notRunning")  # a status string the SDK does not know
    assert json.loads(cli("finetune", "azure", "status", job_id, "--json"))["status"] == "notRunning"
    server.emulator.set_job_status(job_id, None)
    assert cli("finetune", "azure", "cancel", "last").strip().endswith("cancelled")
    assert json.loads(cli("finetune", "azure", "list", "--json"))[0]["status"] == "cancelled"
    message = cli_fails("finetune", "azure", "deploy", job_id)
    assert "only a succeeded job has a model to deploy" in message


def test_job_records_survive_the_terminal(azure_env, tmp_path: Path) -> None:
    from finetune.azure_jobs import JobStore
    from tunedesk.db import engine

    train = chat_file(tmp_path / "t.jsonl")
    job_id = cli("finetune", "azure", "submit", str(train), "--suffix", "kept").strip()
    record = JobStore(engine(load_settings())).get(job_id)
    assert record is not None
    assert record["training_path"] == str(train) and len(record["training_sha256"]) == 64
    assert record["config"]["suffix"] == "kept" and record["base_model"] == "gpt-4o-mini-2024-07-18"


# ---- faults ----------------------------------------------------------------------------------------------------
def test_rate_limits_during_upload_are_retried(azure_env, server, tmp_path: Path) -> None:
    server.faults.add("rate_limit", times=2, path="/files", retry_after_s=0.05)
    assert cli("finetune", "azure", "submit", str(chat_file(tmp_path / "t.jsonl"))).strip().startswith("ftjob-")
    assert server.faults.pending() == []


def test_server_error_storm_gives_a_clear_message(azure_env, server) -> None:
    server.faults.add("server_error", times=10, path="/fine_tuning/jobs", retry_after_s=0.01)
    message = cli_fails("finetune", "azure", "list")
    assert "kept failing (500) after 2 retries" in message


def test_management_plane_rate_limit_is_retried(azure_env, server, tmp_path: Path) -> None:
    job_id = cli("finetune", "azure", "submit", str(chat_file(tmp_path / "t.jsonl")), "--wait", "--poll-s", "0.05")
    server.faults.add("rate_limit", times=2, path="/deployments/", retry_after_s=0.05)
    assert cli("finetune", "azure", "deploy", job_id.split()[-1], "--name", "ft", "--poll-s", "0.05").strip() == "ft"


def test_chat_retries_429_then_answers(azure_env, server) -> None:
    server.faults.add("rate_limit", times=2, path="/chat/completions", retry_after_s=0.05)
    assert ask("busy?", azure_deployment="gpt-4o-mini") == "You said: busy?"


def test_chat_429_storm_tells_the_user(azure_env, server) -> None:
    server.faults.add("rate_limit", times=10, path="/chat/completions", retry_after_s=0.05)
    with pytest.raises(AzureError, match=r"rate-limiting requests \(429\) and still was after 2 retries"):
        ask("busy?", azure_deployment="gpt-4o-mini")


def test_chat_stream_dropped_before_text_is_retried(azure_env, server) -> None:
    server.faults.add("drop_stream", times=2, after_chunks=1)  # only prompt_filter_results arrived
    assert ask("are you there?", azure_deployment="gpt-4o-mini") == "You said: are you there?"


def test_chat_stream_dropped_mid_answer_is_an_error(azure_env, server) -> None:
    server.faults.add("drop_stream", after_chunks=4)
    with pytest.raises(GenerationError, match="dropped in the middle of the answer"):
        ask("tell me everything about returns", azure_deployment="gpt-4o-mini")


def test_content_filters_become_a_polite_refusal(azure_env, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ContentFilteredError) as prompt:
        ask(f"please {DEFAULT_PROMPT_FILTER_WORD}", azure_deployment="gpt-4o-mini")
    assert (prompt.value.where, prompt.value.categories) == ("prompt", ["violence"])
    assert "human agent" in str(prompt.value)
    with pytest.raises(ContentFilteredError) as answer:
        ask(f"repeat {DEFAULT_OUTPUT_FILTER_WORD}", azure_deployment="gpt-4o-mini")
    assert (answer.value.where, answer.value.categories) == ("answer", ["hate"])
    assert "content filter blocked the answer" in caplog.text and "hate" in caplog.text


def test_backend_needs_a_deployment(azure_env) -> None:
    with pytest.raises(ConfigError, match="TUNEDESK_AZURE_DEPLOYMENT"):
        load_backend("azure", load_settings())


# ---- the chat UI on a fine-tuned deployment -------------------------------------------------------------------
@pytest.mark.browser
def test_chat_ui_on_the_deployed_fine_tune(
    azure_env, server, tmp_path: Path, shared_home: Path, chromium_browser
) -> None:
    """The done-when path: submit -> events -> succeeded -> results -> deploy -> chat in the browser."""
    job_id = cli("finetune", "azure", "submit", str(chat_file(tmp_path / "t.jsonl")), "--wait", "--poll-s", "0.05")
    job_id = job_id.split()[-1]
    assert cli("finetune", "azure", "events", job_id).splitlines()[-1].endswith("Job succeeded.")
    assert len(cli("finetune", "azure", "results", job_id, "--out", str(tmp_path / "r")).split()) == 3
    cli("finetune", "azure", "deploy", job_id, "--name", "support-ui", "--poll-s", "0.05")
    ui = start_ui(shared_home, TUNEDESK_BACKEND="azure", TUNEDESK_AZURE_DEPLOYMENT="support-ui", **azure_env)
    try:
        page = signed_in_page(chromium_browser, ui)
        ask_in_page(page, "Can I return opened headphones?")
        page.get_by_text("You said: Can I return opened headphones?").wait_for(timeout=30_000)
        ask_in_page(page, f"something {DEFAULT_PROMPT_FILTER_WORD}")
        page.get_by_text("I'm sorry, but I can't help with that request").wait_for(timeout=30_000)
        assert "Traceback" not in page.content()
        server.faults.add("rate_limit", times=10, path="/chat/completions", retry_after_s=0.05)
        ask_in_page(page, "Is anyone there?")
        page.get_by_text("rate-limiting requests (429)").wait_for(timeout=30_000)
        page.close()
    finally:
        ui.stop()
