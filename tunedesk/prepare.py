"""Turn a model reference into the directories the backends load: transformers, then ONNX.

Decisions:
- GGUF -> transformers: transformers dequantises the GGUF on load, but a model loaded that way keeps
  a GGUF ``quantization_config`` and refuses ``save_pretrained``. We rebuild the model from its
  config without it, load the state dict (strictly: every key must match), then save.
- Hub ids and local checkpoints take the same path as GGUF (``from_pretrained`` then
  ``save_pretrained`` into the artifact), so the code a user with internet runs is the code tested.
- LoRA run -> transformers: ``PeftModel.from_pretrained`` on the fp32 base, ``merge_and_unload``,
  ``save_pretrained``; the tokenizer is the run's own (saved next to the adapter) when it has one.
  The merged copy is a cache keyed by the adapter's hash: the reference stays base + adapter.
- transformers -> ONNX: ``onnxruntime_genai.models.builder`` called as a function (its ``--help``
  crashes in 0.18); int4 for CPU serving, fp32 for exactness tests. fp16 is refused: the builder
  emits fp16 attention without GroupQueryAttention for the CPU, and that model fails at run time in
  ORT 1.32 ("Shape mismatch attempting to re-use buffer"); fp16 is a CUDA precision. Its chatty
  output goes to ``build.log`` inside the artifact instead of the terminal.
- Heavy imports (torch, transformers, the builder) happen inside functions.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tunedesk.errors import ModelNotFoundError, ModelPreparationError
from tunedesk.models import (
    ADAPTER_WEIGHTS,
    ONNX_PRECISIONS,
    ModelSource,
    adapter_revision,
    artifact_path,
    ensure_artifact,
    onnx_artifact_name,
    prune_superseded,
    resolve,
    sha256_file,
    transformers_artifact_name,
)

Progress = Callable[[str], None]

# The graph inputs that carry LoRA weights in an ONNX base model built for adapters
# (``finetune/export.py``): model.layers.0.attn.q_proj.lora_A.MatMul.weight, ...
LORA_INPUT = re.compile(r"\.lora_[AB]\.MatMul\.weight$")

# prune_lm_head: during prefill compute logits for the last position only. With a 49k vocabulary the
# LM head is a fifth of SmolLM2's compute per token, and nobody reads the prompt positions' logits.
BUILDER_OPTIONS = ["prune_lm_head=true"]


def _quiet(message: str) -> None:
    return None


def ensure_transformers(ref: str, home: Path, progress: Progress = _quiet) -> Path:
    """A directory ``AutoModelForCausalLM.from_pretrained`` loads, preparing it if needed."""
    source = resolve(ref)
    if source.kind == "transformers-dir":
        assert source.path is not None
        return source.path
    if source.kind == "onnx-dir":
        raise ModelNotFoundError(f"{source.path} is an ONNX model; the local backend needs a transformers one")
    final = artifact_path(home, source, transformers_artifact_name(source))
    if final.joinpath("tunedesk-manifest.json").is_file():
        return final
    if source.kind == "lora-dir":
        assert source.base is not None and source.adapter is not None
        base_dir = ensure_transformers(source.base, home, progress)
        adapter = source.adapter

        def build(tmp: Path) -> dict[str, Any]:
            progress(f"merging the LoRA adapter {adapter} into {source.base}")
            return merge_lora(base_dir, adapter, tmp)

    else:

        def build(tmp: Path) -> dict[str, Any]:
            return _build_transformers(source, tmp, progress)

    built = ensure_artifact(final, build, name=source.ref, kind="transformers")
    prune_superseded(home, source)
    return built


def check_precision(precision: str) -> None:
    """Refuse an ONNX precision tunedesk cannot build for the CPU, saying what to use instead."""
    if precision == "fp16":
        raise ModelPreparationError(
            "precision 'fp16' needs CUDA: the ONNX Runtime GenAI builder's fp16 model has no CPU attention "
            f"kernel and fails at run time on the CPU; choose one of {ONNX_PRECISIONS}"
        )
    if precision not in ONNX_PRECISIONS:
        raise ModelPreparationError(f"precision '{precision}' is not supported; choose one of {ONNX_PRECISIONS}")


def ensure_onnx(ref: str, home: Path, precision: str = "int4", progress: Progress = _quiet) -> Path:
    """A directory ``onnxruntime_genai.Model`` loads, preparing it (and its transformers source) if needed."""
    check_precision(precision)
    source = resolve(ref)
    if source.kind == "onnx-dir":
        assert source.path is not None
        return source.path
    final = artifact_path(home, source, onnx_artifact_name(precision, source))
    if final.joinpath("tunedesk-manifest.json").is_file():
        return final
    transformers_dir = ensure_transformers(ref, home, progress)

    def build(tmp: Path) -> dict[str, Any]:
        fields = build_onnx(transformers_dir, tmp, precision, home, progress)
        return {**fields, "revision": source.revision} if source.revision else fields

    built = ensure_artifact(final, build, name=source.ref, kind="onnx")
    prune_superseded(home, source)
    return built


def merge_lora(base_dir: Path, adapter_dir: Path, out: Path) -> dict[str, Any]:
    """Merge a peft LoRA adapter into its base and save the result (fp32 safetensors + tokenizer) in ``out``.

    Returns manifest fields, ``revision`` (the adapter's hash, see ``adapter_revision``) among them. The
    tokenizer is the adapter directory's own when it has one (the trainer saves it there), else the base's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    try:
        adapted = PeftModel.from_pretrained(base, str(adapter_dir))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelPreparationError(f"could not apply the adapter {adapter_dir} to {base_dir}: {exc}") from exc
    merged = adapted.merge_and_unload()
    merged.save_pretrained(out)
    has_tokenizer = (adapter_dir / "tokenizer_config.json").is_file()
    AutoTokenizer.from_pretrained(adapter_dir if has_tokenizer else base_dir).save_pretrained(out)
    weights = next(adapter_dir / name for name in ADAPTER_WEIGHTS if (adapter_dir / name).is_file())
    return {
        "source": {"type": "lora-merge", "base": str(base_dir), "adapter": str(adapter_dir)},
        "revision": adapter_revision(adapter_dir / "adapter_config.json", weights),
        "precision": "fp32",
    }


def _build_transformers(source: ModelSource, out: Path, progress: Progress) -> dict[str, Any]:
    spec = source.spec
    if spec is not None and spec.build:
        progress(f"building {spec.name} from its config")
        module_name, _, attr = spec.build.partition(":")
        builder = getattr(__import__(module_name, fromlist=[attr]), attr)
        return builder(source, out)
    if spec is not None and spec.gguf_file:
        gguf = source.gguf_path()
        progress(f"converting {gguf.name} to a transformers checkpoint")
        save_pretrained_copy(str(gguf.parent), out, gguf_file=gguf.name)
        return {
            "source": {"type": "gguf", "package": spec.pip_name, "file": gguf.name},
            "source_sha256": sha256_file(gguf),
            "precision": "fp32",
        }
    if spec is not None:
        assert spec.hub_id, f"registry entry {spec.name} names no weights"
        name_or_path = spec.hub_id
    else:
        name_or_path = source.ref
    progress(f"loading {name_or_path} from the Hugging Face hub")
    save_pretrained_copy(name_or_path, out)
    return {"source": {"type": "hub", "id": name_or_path}, "precision": "fp32"}


def save_pretrained_copy(name_or_path: str, out: Path, gguf_file: str | None = None) -> None:
    """Load a causal LM (hub id, directory, or GGUF inside a directory) and save it as fp32 safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32, **kwargs)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load {name_or_path}: {exc}") from exc
    config = loaded.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config  # GGUF-loaded models refuse save_pretrained otherwise
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_onnx(
    transformers_dir: Path,
    out: Path,
    precision: str,
    home: Path,
    progress: Progress = _quiet,
    extra_options: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the ONNX Runtime GenAI builder on ``transformers_dir`` into ``out`` (an empty directory);
    ``extra_options`` are builder ``key=value`` options added to tunedesk's. Returns manifest fields."""
    progress(f"building an {precision} ONNX Runtime GenAI model (cpu)")
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    cache_dir = home / "cache" / "onnx-builder"
    model_dir = str(transformers_dir)
    log = io.StringIO()
    quant_logger = logging.getLogger("onnxruntime")
    old_level = quant_logger.level
    quant_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            options = parse_extra_options(
                model_dir, model_dir, str(out), precision, "cpu", str(cache_dir), [*BUILDER_OPTIONS, *extra_options]
            )
            create_model(model_dir, model_dir, str(out), precision, "cpu", str(cache_dir), **options)
    except Exception as exc:
        (out.parent / f"{out.name}.failed.log").write_text(log.getvalue())
        raise ModelPreparationError(
            f"ONNX export of {transformers_dir} failed: {exc} (builder output in {out.parent}/{out.name}.failed.log)"
        ) from exc
    finally:
        quant_logger.setLevel(old_level)
    (out / "build.log").write_text(log.getvalue())
    weights = sorted(transformers_dir.glob("*.safetensors"))
    return {
        "source": {"type": "transformers", "path": str(transformers_dir)},
        "source_sha256": sha256_file(weights[0]) if len(weights) == 1 else None,
        "precision": precision,
        "execution_provider": "cpu",
        "builder_options": [*BUILDER_OPTIONS, *extra_options],
    }


def onnx_input_names(onnx_dir: Path) -> list[str]:
    """The graph inputs of ``onnx_dir``'s decoder model, read without loading its weights."""
    import onnx
    from google.protobuf.message import DecodeError

    config_path = onnx_dir / "genai_config.json"
    try:
        filename = json.loads(config_path.read_text())["model"]["decoder"]["filename"]
        graph = onnx.load(str(onnx_dir / filename), load_external_data=False).graph
    except (OSError, KeyError, ValueError, DecodeError) as exc:
        raise ModelNotFoundError(f"cannot read the ONNX model in {onnx_dir} ({config_path}): {exc}") from exc
    return [value.name for value in graph.input]


def build_tiny_llama(source: ModelSource, out: Path) -> dict[str, Any]:
    """A 2-layer Llama with random weights and the real SmolLM2 tokenizer and chat template.

    Weights are drawn with a large init range so that logits are far apart and greedy decoding is
    stable across runtimes (ONNX vs PyTorch), which is what the parity tests need."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    gguf = source.gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        initializer_range=0.2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model: Any = LlamaForCausalLM(config)
    model = model.to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"source": {"type": "random-init", "seed": 0, "tokenizer": gguf.name}, "precision": "fp32"}
