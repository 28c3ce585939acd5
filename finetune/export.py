"""Export a LoRA run for serving: a merged checkpoint, a merged ONNX model, or one ONNX base model
that serves any number of ``.onnx_adapter`` files, switched per request.

Decisions:
- ``merge`` and the merged ONNX export reuse the registry's own code (``tunedesk.prepare.merge_lora``,
  ``ensure_onnx``), so ``--model runs/x`` and an exported copy are the same bytes; an export to
  ``--out`` is a copy of the cached artifact, written whole (temporary sibling, then rename).
- ONNX Runtime GenAI 0.18 has no adapter converter, only the run-time side (``og.Adapters``); we
  follow Olive's conventions (``ExtractAdapters``, ``convert-adapters``) without depending on Olive:
  1. The builder, given ``adapter_path``, loads base + adapter with peft and emits for each adapted
     Linear ``MatMul(x, W) + MatMul(MatMul(x, A), B * scaling)``, with initializers named
     ``model.layers.N.attn.q_proj.lora_A.MatMul.weight`` (``self_attn`` becomes ``attn``). In int4
     builds those LoRA MatMuls are excluded from quantization: they stay float, so any rank fits.
  2. Each LoRA initializer becomes a graph input with a symbolic rank dimension and a rank-0 default
     value: with no adapter active, the model computes the base model exactly.
  3. An adapter file holds peft's ``lora_A.T`` and ``(lora_B * scaling).T`` in float32 under those
     input names, written with ``onnxruntime.AdapterFormat``.
- The base is cached per base model, precision and *set of adapted modules*
  (``models/<base>/onnx-<precision>-cpu-lora-<signature>``): runs that adapt the same modules share
  one base whatever their rank. Only attention (q/k/v/o_proj) and MLP (gate/up/down_proj) Linears
  of Llama-style decoders can be adapted; other targets (lm_head, embeddings) are refused by name.
- Next to each ``<name>.onnx_adapter`` a ``<name>.onnx_adapter.json`` says which base it fits (base
  slug, signature, adapter revision); the onnx backend reads that, never this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunedesk import __version__
from tunedesk.errors import ConfigError, ModelNotFoundError, ModelPreparationError
from tunedesk.files import atomic_writer, replacing_directory, write_text_atomically
from tunedesk.models import (
    MANIFEST,
    ONNX_ADAPTER_SUFFIX,
    artifact_path,
    ensure_artifact,
    onnx_lora_artifact_name,
    resolve,
)
from tunedesk.prepare import (
    LORA_INPUT,
    Progress,
    build_onnx,
    check_precision,
    ensure_onnx,
    ensure_transformers,
    merge_lora,
    onnx_input_names,
)

# peft module name (after "base_model.model.") -> the builder's naming of that Linear in the graph
_ADAPTABLE = re.compile(
    r"^model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"
)


@dataclass(frozen=True)
class AdapterExport:
    """Where an adapter export went: the adapter file and the ONNX base model it runs on."""

    name: str
    adapter_file: Path
    base_dir: Path


def _quiet(message: str) -> None:
    return None


def _home(home: Path | None) -> Path:
    if home is not None:
        return home
    from tunedesk.settings import load_settings

    return load_settings().home


def merge(run_or_adapter: str | Path, out: Path, home: Path | None = None) -> Path:
    """Merge a LoRA run (or a bare peft adapter directory) into its base: a plain transformers
    checkpoint in ``out``, loadable without peft. ``out`` must not exist or be empty."""
    home = _home(home)
    base_ref, adapter, name = _adapter_and_base(Path(run_or_adapter))
    _check_free(out)
    base_dir = ensure_transformers(base_ref, home)
    with replacing_directory(out) as tmp:
        fields = merge_lora(base_dir, adapter, tmp)
        _write_manifest(tmp, name=name, kind="transformers", base=base_ref, **fields)
    return out


def export_onnx(
    ref: str | Path,
    out: Path | None = None,
    precision: str = "int4",
    adapter_only: bool = False,
    home: Path | None = None,
    progress: Progress = _quiet,
) -> Path:
    """Export ``ref`` for ONNX Runtime GenAI and return where it went.

    Merged (default): the ONNX model of ``ref`` (a LoRA run is merged first) in the cache, or copied
    to ``out``. ``adapter_only``: ``ref`` must be a LoRA run; its ``.onnx_adapter`` file (returned) goes
    to ``out`` (default ``<run>/onnx``) and the shared ONNX base with adapter inputs to the cache."""
    if adapter_only:
        return export_adapter(ref, out, precision, home, progress).adapter_file
    home = _home(home)
    built = ensure_onnx(str(ref), home, precision, progress)
    if out is None:
        return built
    _check_free(out)
    with replacing_directory(out) as tmp:
        shutil.copytree(built, tmp, dirs_exist_ok=True)
    return out


def export_adapter(
    run: str | Path,
    out: Path | None = None,
    precision: str = "int4",
    home: Path | None = None,
    progress: Progress = _quiet,
) -> AdapterExport:
    """Convert a LoRA run's adapter to ``<out>/<name>.onnx_adapter`` (+ its ``.json``) and make sure the
    ONNX base model with LoRA inputs it runs on is in the cache."""
    check_precision(precision)
    home = _home(home)
    source = resolve(str(run))
    if source.kind != "lora-dir":
        raise ConfigError(
            f'{run} is not a LoRA run directory (its {MANIFEST} must say "kind": "lora"); '
            "an adapter export needs the run the adapter came from"
        )
    assert source.base is not None and source.adapter is not None and source.path is not None
    adapter_dir = source.adapter
    base = resolve(source.base)
    base_dir = ensure_transformers(source.base, home, progress)
    progress(f"reading the adapter {source.adapter}")
    weights, modules = adapter_weights(base_dir, adapter_dir)
    signature = hashlib.sha256(",".join(sorted(modules)).encode()).hexdigest()[:12]
    base_onnx = ensure_artifact(
        artifact_path(home, base, onnx_lora_artifact_name(precision, signature)),
        lambda tmp: _build_lora_base(base_dir, adapter_dir, modules, tmp, precision, home, progress),
        name=source.base,
        kind="onnx",
    )
    missing = sorted(set(weights) - set(onnx_input_names(base_onnx)))
    if missing:
        raise ModelPreparationError(
            f"{base_onnx} has no inputs for {len(missing)} of this adapter's weights (e.g. {missing[0]}): "
            "the ONNX Runtime GenAI builder named this architecture's layers differently"
        )
    assert source.name is not None
    name = source.name
    target = (out or source.path / "onnx") / f"{name}{ONNX_ADAPTER_SUFFIX}"
    _write_adapter(weights, target)
    sidecar = {
        "format": 1,
        "kind": "onnx-adapter",
        "name": name,
        "adapter_file": target.name,
        "run": str(source.path),
        "revision": source.revision,
        "base": source.base,
        "base_slug": base.slug,
        "signature": signature,
        "modules": sorted(modules),
        "rank": max(int(array.shape[1]) for key, array in weights.items() if ".lora_A." in key),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tunedesk_version": __version__,
    }
    write_text_atomically(target.with_name(target.name + ".json"), json.dumps(sidecar, indent=2) + "\n")
    return AdapterExport(name=name, adapter_file=target, base_dir=base_onnx)


def adapter_weights(base_dir: Path, adapter_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """peft's adapter as ONNX inputs: ``{input name: float32 array}`` and ``{peft module: graph module}``.

    Raises ``ModelPreparationError`` naming the modules the ONNX builder cannot adapt."""
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    base: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    try:
        adapted = PeftModel.from_pretrained(base, str(adapter_dir))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelPreparationError(f"could not apply the adapter {adapter_dir} to {base_dir}: {exc}") from exc
    weights: dict[str, Any] = {}
    modules: dict[str, str] = {}
    unsupported: list[str] = []
    for full_name, found in adapted.named_modules():
        if not isinstance(found, LoraLayer) or not found.active_adapters:
            continue
        module: Any = found
        peft_name = full_name.removeprefix("base_model.model.")
        match = _ADAPTABLE.match(peft_name)
        adapter = module.active_adapters[0]
        if match is None or adapter not in module.lora_A or module.use_dora.get(adapter, False):
            unsupported.append(peft_name)
            continue
        if module.lora_B[adapter].bias is not None:
            unsupported.append(f"{peft_name} (lora_bias)")
            continue
        layer, block, proj = match.groups()
        graph_name = f"model.layers.{layer}.{'attn' if block == 'self_attn' else 'mlp'}.{proj}"
        scaling = float(module.scaling[adapter])
        with torch.no_grad():
            lora_a = module.lora_A[adapter].weight.float().T.contiguous().numpy()
            lora_b = (module.lora_B[adapter].weight.float() * scaling).T.contiguous().numpy()
        weights[f"{graph_name}.lora_A.MatMul.weight"] = lora_a
        weights[f"{graph_name}.lora_B.MatMul.weight"] = lora_b
        modules[peft_name] = graph_name
    if unsupported:
        raise ModelPreparationError(
            f"the adapter {adapter_dir} adapts modules the ONNX export cannot serve as adapters: "
            f"{', '.join(unsupported[:6])}{' ...' if len(unsupported) > 6 else ''}; only plain LoRA on the "
            "attention (q/k/v/o_proj) and MLP (gate/up/down_proj) Linears is supported. Export a merged "
            "model instead (without --adapter-only)"
        )
    if not weights:
        raise ModelPreparationError(f"the adapter {adapter_dir} adapts no module of {base_dir}")
    return weights, modules


def _build_lora_base(
    base_dir: Path,
    adapter_dir: Path,
    modules: dict[str, str],
    out: Path,
    precision: str,
    home: Path,
    progress: Progress,
) -> dict[str, Any]:
    """The builder's model of base + adapter, its LoRA weights turned into optional inputs."""
    import numpy as np
    import onnx_ir as ir

    # the LoRA MatMuls stay float in int4 builds: quantized, their rank could not change per adapter
    keep_float = [f"/{_node_prefix(graph)}/lora_{ab}/MatMul" for graph in modules.values() for ab in "AB"]
    options = [f"adapter_path={adapter_dir}", f"nodes_to_exclude={','.join(keep_float)}"]
    raw = out / ".builder"  # inside ``out``: a killed build leaves nothing ensure_artifact won't sweep
    try:
        fields = build_onnx(base_dir, raw, precision, home, progress, options)
        progress("turning the LoRA weights into model inputs")
        model = ir.load(raw / "model.onnx")
        graph = model.graph
        lora = sorted(name for name in graph.initializers if LORA_INPUT.search(name))
        quantized = [str(node.name) for node in graph if "/lora_" in str(node.name) and node.op_type != "MatMul"]
        if not lora or quantized:
            raise ModelPreparationError(
                f"the ONNX builder made no float LoRA MatMuls from {adapter_dir} "
                f"({'quantized: ' + ', '.join(quantized[:3]) if quantized else 'none found'})"
            )
        for name in lora:
            value = graph.initializers[name]
            assert value.const_value is not None
            shape = [int(d) for d in value.const_value.shape.numpy()]
            rank_axis = 1 if ".lora_A." in name else 0
            default = list(shape)
            default[rank_axis] = 0
            value.const_value = ir.Tensor(np.zeros(default, dtype=np.float32), name=name)
            dims: list[int | str] = list(shape)
            dims[rank_axis] = f"{name.removesuffix('.MatMul.weight')}.rank"
            value.shape = ir.Shape(dims)
            graph.inputs.append(value)
        ir.save(model, out / "model.onnx", external_data="model.onnx.data")
        for item in raw.iterdir():
            if item.name not in ("model.onnx", "model.onnx.data"):
                shutil.move(item, out / item.name)
    finally:
        shutil.rmtree(raw, ignore_errors=True)
    fields["builder_options"] = [option for option in fields["builder_options"] if option not in options]
    return {
        **fields,
        "lora": {"modules": sorted(modules), "inputs": len(lora), "built_from_adapter": str(adapter_dir)},
    }


def _node_prefix(graph_name: str) -> str:
    """model.layers.0.attn.q_proj -> model/layers.0/attn/q_proj: the builder keeps "layers.N" whole."""
    model, layers, index, block, proj = graph_name.split(".")
    return f"{model}/{layers}.{index}/{block}/{proj}"


def _write_adapter(weights: dict[str, Any], target: Path) -> None:
    import onnxruntime as ort

    adapter = ort.AdapterFormat()
    adapter.set_adapter_version(1)
    adapter.set_model_version(1)
    adapter.set_parameters({name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in weights.items()})
    target.parent.mkdir(parents=True, exist_ok=True)
    # AdapterFormat writes to a path, so write it beside the target and move the finished file over
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        adapter.export_adapter(temporary)
        with atomic_writer(target, binary=True) as handle, open(temporary, "rb") as written:
            shutil.copyfileobj(written, handle)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _adapter_and_base(path: Path) -> tuple[str, Path, str]:
    """(base model ref, adapter dir, name) of a LoRA run directory or a bare peft adapter directory."""
    if not path.is_dir():
        raise ModelNotFoundError(f"{path} is not a directory: expected a LoRA run or a peft adapter directory")
    if (path / MANIFEST).is_file():
        source = resolve(str(path))
        if source.kind == "lora-dir":
            assert source.base is not None and source.adapter is not None
            assert source.name is not None
            return source.base, source.adapter, source.name
    config = path / "adapter_config.json"
    if not config.is_file():
        raise ModelNotFoundError(
            f'{path} is neither a LoRA run (no {MANIFEST} with "kind": "lora") nor a peft adapter '
            "(no adapter_config.json)"
        )
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelNotFoundError(f"{config} names no base model (base_model_name_or_path)")
    return str(base), path, path.name


def _check_free(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists and is not empty; choose another --out or remove it")


def _write_manifest(directory: Path, **fields: Any) -> None:
    manifest = {
        "format": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tunedesk_version": __version__,
        **fields,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
