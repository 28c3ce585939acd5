"""The Azure OpenAI emulator, driven by the real openai SDK (and httpx, azure-identity) over real HTTP.

Nothing here patches the SDK: every assertion is about what the emulator answered on the wire and how
the unmodified client took it. The real DefaultAzureCredential chain is exercised by the tests of
tunedesk.azure; here azure-identity's AzureCliCredential runs for real against a stand-in ``az``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tunedesk.azure_emulator import (
    DEFAULT_OUTPUT_FILTER_WORD,
    DEFAULT_PROMPT_FILTER_WORD,
    RESULTS_CSV_COLUMNS,
    EmulatorConfig,
    RunningEmulator,
    echo_responder,
    run_emulator,
)

API_VERSION = "2024-10-21"
MGMT_VERSION = "2024-10-01"
CONFIG = EmulatorConfig(file_processing_s=5, job_queue_s=30, seconds_per_step=10, deployment_provisioning_s=60)
ARM_SCOPE = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/accounts/acct-1"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningEmulator]:
    with run_emulator(config=CONFIG) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_state(server: RunningEmulator) -> None:
    server.emulator.reset()


def azure(server: RunningEmulator, **options) -> openai.AzureOpenAI:
    options.setdefault("api_key", server.api_key)
    return openai.AzureOpenAI(azure_endpoint=server.endpoint, api_version=API_VERSION, **options)


def chat_jsonl(n: int = 12) -> bytes:
    lines = [
        {
            "messages": [
                {"role": "system", "content": "You are a support agent."},
                {"role": "user", "content": f"Where is order {i}?"},
                {"role": "assistant", "content": f"Order {i} ships tomorrow."},
            ]
        }
        for i in range(n)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def dpo_jsonl(n: int = 12) -> bytes:
    lines = [
        {
            "input": {"messages": [{"role": "user", "content": f"Refund for order {i}?"}]},
            "preferred_output": [{"role": "assistant", "content": "Yes, within 30 days."}],
            "non_preferred_output": [{"role": "assistant", "content": "No."}],
        }
        for i in range(n)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def processed_file(client: openai.AzureOpenAI, server: RunningEmulator, data: bytes, name: str = "train.jsonl"):
    uploaded = client.files.create(file=(name, data), purpose="fine-tune")
    server.advance(CONFIG.file_processing_s)
    return client.files.retrieve(uploaded.id)


def test_file_goes_pending_then_processed_and_round_trips(server: RunningEmulator) -> None:
    client = azure(server)
    data = chat_jsonl()
    uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert (uploaded.status, uploaded.bytes, uploaded.filename) == ("pending", len(data), "train.jsonl")
    assert client.files.retrieve(uploaded.id).status == "pending"

    server.advance(CONFIG.file_processing_s)
    assert client.files.retrieve(uploaded.id).status == "processed"
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.content(uploaded.id).content == data

    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_malformed_jsonl_is_marked_error_with_details(server: RunningEmulator) -> None:
    client = azure(server)
    bad = processed_file(client, server, b'{"messages": []}\n{"prompt": "no chat here"}\n')
    assert bad.status == "error"
    assert "line 2" in bad.status_details
    not_json = processed_file(client, server, b"this is not json\n")
    assert not_json.status == "error" and "line 1 is not valid JSON" in not_json.status_details


def test_job_trains_on_the_clock_and_publishes_events_checkpoints_and_results(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl(12))
    valid = processed_file(client, server, chat_jsonl(4), "valid.jsonl")
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18",
        training_file=train.id,
        validation_file=valid.id,
        suffix="support",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
    )
    assert (job.status, job.fine_tuned_model, job.result_files) == ("pending", None, None)
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (2, 4)

    server.advance(CONFIG.job_queue_s + 2 * CONFIG.seconds_per_step)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    events = client.fine_tuning.jobs.list_events(job.id).data
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in metrics] == [2, 1]  # newest first
    assert metrics[0].message.startswith("Step 2: training loss=")

    server.advance(4 * CONFIG.seconds_per_step)  # 12 examples / batch 4 = 3 steps per epoch, 2 epochs
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.trained_tokens > 0
    assert re.fullmatch(r"gpt-4o-mini-2024-07-18\.ft-[0-9a-f]{32}-support", done.fine_tuned_model)

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [6, 3]
    assert checkpoints[0].fine_tuned_model_checkpoint == done.fine_tuned_model
    assert checkpoints[1].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-3"

    (results_id,) = done.result_files
    assert results_id in {f.id for f in client.files.list()}
    rows = list(csv.DictReader(io.StringIO(client.files.content(results_id).text)))
    assert tuple(rows[0]) == RESULTS_CSV_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert client.files.retrieve(results_id).purpose == "fine-tune-results"
    client.files.delete(results_id)
    assert results_id not in {f.id for f in client.files.list()}  # deleted results stay deleted
    assert rows[2]["full_valid_loss"] and not rows[1]["full_valid_loss"]  # full validation at epoch ends

    page = client.fine_tuning.jobs.list_events(job.id, limit=3)
    assert [e.message for e in page.data[:2]] == ["Job succeeded.", f"Completed results file: {results_id}"]
    assert page.has_more
    older = client.fine_tuning.jobs.list_events(job.id, limit=3, after=page.data[-1].id)
    assert older.data[0].id not in {e.id for e in page.data}
    everything = {e.id for e in client.fine_tuning.jobs.list_events(job.id, limit=2)}  # the SDK pages through
    assert len(everything) == len(events) + 4 + 2 + 2  # four more steps, two checkpoints, results, success


def test_dpo_job_needs_preference_pairs(server: RunningEmulator) -> None:
    client = azure(server)
    pairs = processed_file(client, server, dpo_jsonl())
    assert pairs.status == "processed"
    dpo = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=pairs.id, method={"type": "dpo"})
    sft = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=pairs.id)
    server.advance(CONFIG.job_queue_s + 100 * CONFIG.seconds_per_step)
    assert client.fine_tuning.jobs.retrieve(dpo.id).status == "succeeded"
    failed = client.fine_tuning.jobs.retrieve(sft.id)
    assert failed.status == "failed" and "supervised" in failed.error.message


@pytest.mark.parametrize(
    ("training", "message"),
    [
        (b'{"messages": []}\n{"prompt": "x"}\n', "line 2"),
        (chat_jsonl(3), "at least 10"),
    ],
    ids=["invalid-jsonl", "too-few-examples"],
)
def test_bad_training_file_fails_the_job_with_code_message_param(
    server: RunningEmulator, training: bytes, message: str
) -> None:
    client = azure(server)
    train = processed_file(client, server, training)
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id)
    assert job.status == "pending" and job.error is None
    server.advance(CONFIG.job_queue_s)
    failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.finished_at is not None
    assert (failed.error.code, failed.error.param) == ("invalidTrainingFile", "training_file")
    assert message in failed.error.message
    assert client.fine_tuning.jobs.list_events(job.id).data[0].message == "Job failed."


def test_job_create_rejects_unknown_model_file_and_hyperparameters(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl())
    with pytest.raises(openai.BadRequestError) as unknown_model:
        client.fine_tuning.jobs.create(model="gpt-5-turbo-nope", training_file=train.id)
    assert unknown_model.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file="file-missing")
    with pytest.raises(openai.BadRequestError) as bad_epochs:
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini-2024-07-18", training_file=train.id, hyperparameters={"n_epochs": 0}
        )
    assert bad_epochs.value.body["param"] == "hyperparameters.n_epochs"


def test_cancel_stops_a_running_job(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl())
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id)
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (-1, -1)  # Azure's "auto" while pending
    server.advance(CONFIG.job_queue_s + CONFIG.seconds_per_step)
    running = client.fine_tuning.jobs.retrieve(job.id)
    assert running.status == "running" and (running.hyperparameters.n_epochs, running.hyperparameters.batch_size) == (
        3,
        1,
    )

    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    server.advance(1000 * CONFIG.seconds_per_step)
    after = client.fine_tuning.jobs.retrieve(job.id)
    assert (after.status, after.fine_tuned_model) == ("cancelled", None)
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].message == "Job cancelled."
    assert [e.data["step"] for e in events if e.type == "metrics"] == [1]
    with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
        client.fine_tuning.jobs.cancel(job.id)


def test_job_list_paginates_newest_first(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl())
    ids = []
    for _ in range(5):
        ids.append(client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id).id)
        server.advance(1)
    first = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == ids[::-1][:2] and first.has_more
    second = client.fine_tuning.jobs.list(limit=2, after=first.data[-1].id)
    assert [j.id for j in second.data] == ids[::-1][2:4]
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2)] == ids[::-1]  # the SDK follows has_more


def test_unknown_status_is_reported_until_the_job_ends(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl())
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id)
    server.emulator.set_job_status(job.id, "notRunning")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "notRunning"
    server.advance(CONFIG.job_queue_s + 100 * CONFIG.seconds_per_step)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_chat_completion_non_streaming(server: RunningEmulator) -> None:
    client = azure(server)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my parcel?"}]
    )
    assert raw.headers["x-ms-region"] == CONFIG.region and raw.headers["apim-request-id"]
    completion = raw.parse()
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.choices[0].message.content == "You said: Where is my parcel?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 6 and completion.usage.total_tokens > 6
    assert completion.model_extra["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False


def test_chat_completion_streams_azure_chunks_the_sdk_accepts(server: RunningEmulator) -> None:
    client = azure(server)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Track order 42 please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Track order 42 please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 6


def test_custom_responder_is_used(server: RunningEmulator) -> None:
    server.emulator.responder = lambda messages, deployment: f"{deployment} says hello"
    try:
        reply = azure(server).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    finally:
        server.emulator.responder = echo_responder
    assert reply.choices[0].message.content == "gpt-4o-mini says hello"


def test_prompt_filter_raises_bad_request_with_content_filter_result(server: RunningEmulator) -> None:
    client = azure(server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"tell me {DEFAULT_PROMPT_FILTER_WORD}"}]
        )
    error = caught.value
    assert error.code == "content_filter" and error.param == "prompt"
    result = error.body["innererror"]["content_filter_result"]
    assert result["violence"] == {"filtered": True, "severity": "high"}
    assert result["hate"]["filtered"] is False

    server.faults.filter_prompts_containing("refund scam", category="hate")
    with pytest.raises(openai.BadRequestError) as custom:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "A Refund Scam"}])
    assert custom.value.body["innererror"]["content_filter_result"]["hate"]["filtered"] is True


def test_output_filter_sets_finish_reason_content_filter(server: RunningEmulator) -> None:
    client = azure(server)
    messages = [{"role": "user", "content": f"please repeat {DEFAULT_OUTPUT_FILTER_WORD} and more"}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter" and choice.message.content is None
    assert choice.model_extra["content_filter_results"]["hate"]["filtered"] is True

    chunks = [c for c in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == "You said: please repeat "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"


def test_rate_limit_is_retried_after_retry_after(server: RunningEmulator) -> None:
    server.faults.add("rate_limit", times=2, retry_after_s=0.05)
    started = time.monotonic()
    reply = azure(server, max_retries=2).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "You said: hi"
    assert 0.1 <= time.monotonic() - started < 2  # two waits of retry-after-ms, not the SDK's own backoff
    assert server.faults.pending() == []

    server.faults.add("rate_limit", times=1, retry_after_s=3)
    with pytest.raises(openai.RateLimitError) as caught:
        azure(server, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["retry-after-ms"] == "3000"
    assert caught.value.code == "429"


def test_server_error_storm_exhausts_retries(server: RunningEmulator) -> None:
    server.faults.add("server_error", times=5, path="/chat/completions", retry_after_s=0.01)
    client = azure(server, max_retries=2)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert server.faults.pending()[0].times == 2  # three attempts were made
    assert client.files.list().data == []  # other paths are unaffected
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "You said: hi"  # after the last two 500s
    assert server.faults.pending() == []


def test_dropped_stream_raises_on_the_client(server: RunningEmulator) -> None:
    server.faults.add("drop_stream", after_chunks=3)
    stream = azure(server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "a long answer please"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3


def test_slow_stream_delays_chunks_and_can_time_out(server: RunningEmulator) -> None:
    server.faults.add("slow_stream", delay_s=0.03)
    started = time.monotonic()
    chunks = list(
        azure(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "one two"}], stream=True
        )
    )
    assert time.monotonic() - started >= 0.03 * len(chunks)

    server.faults.add("slow_stream", delay_s=1.0)
    stream = azure(server, max_retries=0, timeout=0.2).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        list(stream)


def test_wrong_credentials_are_refused(server: RunningEmulator) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        azure(server, api_key="not-the-key").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "401" and "invalid subscription key" in caught.value.message
    with pytest.raises(openai.AuthenticationError):
        azure(server, api_key=None, azure_ad_token="forged").files.list()
    with pytest.raises(openai.AuthenticationError):  # the classic paths take the key only as api-key
        azure(server, api_key=None, azure_ad_token=server.api_key).files.list()


def test_missing_deployment_is_not_found(server: RunningEmulator) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        azure(server).chat.completions.create(model="no-such-deployment", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "DeploymentNotFound"


def test_api_version_is_required_and_checked(server: RunningEmulator) -> None:
    url = f"{server.endpoint}/openai/files"
    missing = httpx.get(url, headers={"api-key": server.api_key})
    assert missing.status_code == 404 and missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    with pytest.raises(openai.BadRequestError, match="API version not supported"):
        openai.AzureOpenAI(
            azure_endpoint=server.endpoint, api_key=server.api_key, api_version="1999-01-01"
        ).files.list()


def test_v1_path_works_with_the_plain_openai_client(server: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=f"{server.endpoint}/openai/v1/", api_key=server.api_key)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "v1?"}])
    assert reply.choices[0].message.content == "You said: v1?"
    uploaded = client.files.create(file=("t.jsonl", chat_jsonl()), purpose="fine-tune")
    assert client.files.retrieve(uploaded.id).status == "pending"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])


def arm_url(server: RunningEmulator, name: str) -> str:
    return f"{server.endpoint}{ARM_SCOPE}/deployments/{name}?api-version={MGMT_VERSION}"


def test_management_plane_deploys_a_fine_tuned_model(server: RunningEmulator) -> None:
    client = azure(server)
    train = processed_file(client, server, chat_jsonl())
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id, suffix="desk")
    server.advance(CONFIG.job_queue_s + 100 * CONFIG.seconds_per_step)
    model = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model

    auth = {"Authorization": f"Bearer {server.bearer_token}"}
    body = {
        "sku": {"name": "standard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}},
    }
    assert httpx.put(arm_url(server, "desk"), json=body).status_code == 401
    assert httpx.put(arm_url(server, "desk"), json=body, headers={"api-key": server.api_key}).status_code == 401
    created = httpx.put(arm_url(server, "desk"), json=body, headers=auth)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Creating"
    assert created.json()["id"] == f"{ARM_SCOPE}/deployments/desk"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="desk", messages=[{"role": "user", "content": "hi"}])

    server.advance(CONFIG.deployment_provisioning_s)
    polled = httpx.get(arm_url(server, "desk"), headers=auth).json()
    assert polled["properties"]["provisioningState"] == "Succeeded"
    assert polled["properties"]["model"]["name"] == model
    reply = client.chat.completions.create(model="desk", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == model

    assert httpx.delete(arm_url(server, "desk"), headers=auth).status_code == 200
    assert httpx.get(arm_url(server, "desk"), headers=auth).status_code == 404
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="desk", messages=[{"role": "user", "content": "hi"}])


def test_management_plane_validates_version_and_model(server: RunningEmulator) -> None:
    auth = {"Authorization": f"Bearer {server.bearer_token}"}
    body = {
        "sku": {"name": "standard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": "nope", "version": "1"}},
    }
    unsupported = httpx.put(arm_url(server, "x"), json=body, headers=auth)
    assert unsupported.status_code == 400 and unsupported.json()["error"]["code"] == "DeploymentModelNotSupported"
    no_version = httpx.get(f"{server.endpoint}{ARM_SCOPE}/deployments/x", headers=auth)
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    forged = httpx.get(arm_url(server, "x"), headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_entra_token_provider_callable(server: RunningEmulator) -> None:
    calls = []

    def provider() -> str:
        calls.append(1)
        return server.bearer_token

    client = azure(server, api_key=None, azure_ad_token_provider=provider)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices
    assert client.files.list().data == [] and len(calls) == 2  # asked on every request


def test_azure_identity_bearer_token_provider(server: RunningEmulator, tmp_path: Path, monkeypatch) -> None:
    """azure-identity's real AzureCliCredential + get_bearer_token_provider, with a stand-in ``az`` on PATH."""
    from azure.identity import AzureCliCredential, get_bearer_token_provider

    az = tmp_path / "az"
    token = {"accessToken": server.bearer_token, "expires_on": int(time.time()) + 3600, "tokenType": "Bearer"}
    az.write_text(f"#!/bin/sh\necho '{json.dumps(token)}'\n")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")

    provider = get_bearer_token_provider(AzureCliCredential(), "https://cognitiveservices.azure.com/.default")
    client = azure(server, api_key=None, azure_ad_token_provider=provider)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "entra"}])
    assert reply.choices[0].message.content == "You said: entra"
    headers = {"Authorization": f"Bearer {provider()}"}
    assert (
        httpx.get(f"{server.endpoint}{ARM_SCOPE}/deployments?api-version={MGMT_VERSION}", headers=headers).json()[
            "value"
        ][0]["name"]
        == "gpt-4o-mini"
    )


def test_admin_endpoint_steers_a_running_emulator(server: RunningEmulator) -> None:
    headers = {"api-key": server.api_key}
    before = server.clock.now()
    assert httpx.post(f"{server.endpoint}/_emulator/advance", json={"seconds": 30}, headers=headers).status_code == 200
    assert server.clock.now() - before >= 30
    queued = httpx.post(
        f"{server.endpoint}/_emulator/faults", json={"kind": "rate_limit", "retry_after_s": 2}, headers=headers
    )
    assert queued.status_code == 200 and server.faults.pending()[0].kind == "rate_limit"
    bad = httpx.post(f"{server.endpoint}/_emulator/faults", json={"kind": "meteor"}, headers=headers)
    assert bad.status_code == 400
    assert httpx.post(f"{server.endpoint}/_emulator/reset").status_code == 401


def test_the_cli_serves_the_emulator_for_rehearsals() -> None:
    """`tunedesk emulator azure` is a real server a team can point the SDK at, not only a test fixture."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tunedesk.cli", "emulator", "azure", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.2)
        client = openai.AzureOpenAI(
            azure_endpoint=f"http://127.0.0.1:{port}", api_key="emulator-api-key", api_version="2024-10-21"
        )
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content == "You said: hello"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert f"Azure OpenAI emulator on http://127.0.0.1:{port}" in output
