"""LoRA runs as models: merged copies, ONNX exports, and adapters switched per request on one ONNX
base. All on the tiny random Llama (2 layers, real SmolLM2 tokenizer), with random non-zero adapters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatbot.backends import GenerationParams
from chatbot.conversation import Message
from tunedesk.errors import ConfigError, ModelNotFoundError, ModelPreparationError
from tunedesk.models import MANIFEST, resolve

TINY = "tiny-random-llama"
ALL_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QUESTION: list[Message] = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "How do I return a product?"},
]
GREEDY = GenerationParams(max_new_tokens=16, repetition_penalty=1.0)
# Measured max |diff| of the tiny model's last-position logits (|logits| up to ~7), fp32 throughout:
# merged vs base + adapter in PyTorch <= 1.0e-5 (6 seeds); ONNX vs PyTorch ~7e-6; adapter on the ONNX
# base vs merged ONNX ~9e-6. The bounds leave room for other CPUs' kernels; a wrong scaling or a
# missing module moves logits by > 0.5.
MERGE_ATOL = 3e-5
ONNX_ATOL = 1e-4


def make_run(
    run: Path, base_dir: Path, seed: int, r: int = 8, targets: list[str] | None = None, name: str | None = None
) -> Path:
    """A LoRA run directory as finetune/lora.py writes it: manifest + adapter (with the tokenizer)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets or ALL_LINEARS, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(run / "adapter"))
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(run / "adapter")
    manifest = {"format": 1, "kind": "lora", "name": name or run.name, "base": TINY, "adapter": "adapter"}
    (run / MANIFEST).write_text(json.dumps(manifest))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_transformers: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "alpha": make_run(root / "alpha", tiny_transformers, seed=1),
        "beta": make_run(root / "beta", tiny_transformers, seed=2, r=4),  # another rank, same modules
    }


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], shared_home: Path) -> dict[str, Any]:
    """Both runs' adapters, exported for one fp32 ONNX base."""
    from finetune.export import export_adapter

    return {name: export_adapter(run, precision="fp32", home=shared_home) for name, run in runs.items()}


def token_ids(tokenizer_dir: Path) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    messages: Any = QUESTION
    encoded: Any = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(encoded["input_ids"] if hasattr(encoded, "input_ids") else encoded)


def torch_last_logits(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1].float().numpy()


def onnx_run(
    onnx_dir: Path, ids: list[int], adapter: Path | None = None, steps: int = 12
) -> tuple[np.ndarray, list[int]]:
    """Last-position logits of the prompt, and the greedy continuation, from ORT GenAI."""
    import onnxruntime_genai as og

    model = og.Model(str(onnx_dir))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + steps, do_sample=False)
    generator = og.Generator(model, params)
    if adapter is not None:
        adapters = og.Adapters(model)
        adapters.load(str(adapter), "a")
        generator.set_active_adapter(adapters, "a")
    generator.append_tokens(ids)
    logits = np.array(generator.get_logits())[0, -1]
    tokens = []
    for _ in range(steps):
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return logits, tokens


def torch_greedy(model: Any, ids: list[int], steps: int = 12) -> list[int]:
    import torch

    prompt = torch.tensor([ids])
    out = model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=steps,
        do_sample=False,
        min_new_tokens=steps,
    )
    return [int(t) for t in out[0, len(ids) :]]


async def collect(backend: Any, messages: list[Message], params: GenerationParams = GREEDY) -> str:
    return "".join([piece async for piece in backend.stream(messages, params)])


def test_a_run_directory_resolves_as_a_lora_model(runs: dict[str, Path]) -> None:
    source = resolve(str(runs["alpha"]))
    assert source.kind == "lora-dir"
    assert (source.base, source.adapter, source.name) == (TINY, runs["alpha"] / "adapter", "alpha")
    assert source.revision is not None and len(source.revision) == 64
    assert source.revision != resolve(str(runs["beta"])).revision
    assert source.slug.startswith("alpha-")


def test_merged_model_gives_the_logits_of_base_plus_adapter(
    runs: dict[str, Path], tiny_transformers: Path, shared_home: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunedesk.prepare import ensure_transformers

    merged_dir = ensure_transformers(str(runs["alpha"]), shared_home)
    assert merged_dir.name.startswith("transformers-merged-")
    ids = token_ids(merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_transformers).eval()
    base_logits = torch_last_logits(base, ids)
    reference = PeftModel.from_pretrained(base, str(runs["alpha"] / "adapter")).eval()
    expected = torch_last_logits(reference, ids)
    np.testing.assert_allclose(torch_last_logits(merged, ids), expected, atol=MERGE_ATOL, rtol=0)
    assert np.abs(expected - base_logits).max() > 0.5  # the adapter matters, so equality means something


def test_merge_writes_a_plain_checkpoint_and_refuses_a_used_folder(
    runs: dict[str, Path], tmp_path: Path, shared_home: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from finetune.export import merge
    from tunedesk.prepare import ensure_transformers

    out = merge(runs["alpha"], tmp_path / "merged", home=shared_home)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["kind"] == "transformers" and manifest["base"] == TINY and manifest["name"] == "alpha"
    cached = AutoModelForCausalLM.from_pretrained(ensure_transformers(str(runs["alpha"]), shared_home))
    written = AutoModelForCausalLM.from_pretrained(out)
    for (name, a), (_, b) in zip(cached.state_dict().items(), written.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ConfigError, match="not empty"):
        merge(runs["alpha"], out, home=shared_home)

    # a bare peft adapter directory names its base in adapter_config.json
    bare = merge(runs["beta"] / "adapter", tmp_path / "bare", home=shared_home)
    assert json.loads((bare / MANIFEST).read_text())["name"] == "adapter"


def test_the_merged_copy_is_rebuilt_when_the_adapter_changes(
    runs: dict[str, Path], tiny_transformers: Path, tmp_path: Path, shared_home: Path
) -> None:
    from safetensors.torch import load_file

    from tunedesk.prepare import ensure_onnx, ensure_transformers

    run = tmp_path / "retrained"
    shutil.copytree(runs["alpha"], run)
    first = ensure_transformers(str(run), shared_home)
    first_onnx = ensure_onnx(str(run), shared_home, "fp32")
    created = json.loads((first / MANIFEST).read_text())["created"]
    assert ensure_transformers(str(run), shared_home) == first  # unchanged adapter: nothing rebuilt
    assert json.loads((first / MANIFEST).read_text())["created"] == created

    shutil.rmtree(run / "adapter")
    make_run(run, tiny_transformers, seed=3, name="retrained")  # trained again into the same directory
    second = ensure_transformers(str(run), shared_home)
    assert second != first and second.parent == first.parent
    assert not first.exists() and not first_onnx.exists()  # the superseded merge and its ONNX are gone
    assert json.loads((second / MANIFEST).read_text())["revision"] == resolve(str(run)).revision
    old = load_file(str(runs["alpha"] / "adapter" / "adapter_model.safetensors"))
    new = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert any(not (old[k] == new[k]).all() for k in old)  # the adapter really changed


def test_onnx_export_of_a_run_matches_pytorch(runs: dict[str, Path], tmp_path: Path, shared_home: Path) -> None:
    from transformers import AutoModelForCausalLM

    from finetune.export import export_onnx
    from tunedesk.prepare import ensure_transformers

    onnx_dir = export_onnx(runs["alpha"], precision="fp32", home=shared_home)
    merged_dir = ensure_transformers(str(runs["alpha"]), shared_home)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    ids = token_ids(merged_dir)
    logits, tokens = onnx_run(onnx_dir, ids)
    expected = torch_last_logits(merged, ids)
    assert np.abs(logits - expected).max() < ONNX_ATOL
    assert tokens == torch_greedy(merged, ids)

    copy = export_onnx(runs["alpha"], out=tmp_path / "exported", precision="fp32", home=shared_home)
    assert (copy / "genai_config.json").is_file() and (copy / MANIFEST).read_text() == (onnx_dir / MANIFEST).read_text()


async def test_backends_load_a_run_by_path_and_agree(runs: dict[str, Path], shared_home: Path) -> None:
    """``--model runs/x`` on both backends: local is base + unmerged adapter, onnx the merged export."""
    from chatbot.backends.local import LocalBackend
    from chatbot.backends.onnx import OnnxBackend

    local = LocalBackend(str(runs["alpha"]), device="cpu", home=shared_home)
    assert local.adapter == runs["alpha"] / "adapter" and local.path.name == "transformers"  # not the merged copy
    onnx = OnnxBackend(str(runs["alpha"]), precision="fp32", home=shared_home)
    assert onnx.encode(QUESTION) == local.encode(QUESTION)
    answer = await collect(local, QUESTION)
    assert answer == await collect(onnx, QUESTION)
    plain = LocalBackend(TINY, device="cpu", home=shared_home)
    assert answer != await collect(plain, QUESTION)

    assert await collect(local, QUESTION, GREEDY.model_copy(update={"adapter": "alpha"})) == answer
    with pytest.raises(ConfigError, match="unknown adapter 'beta'; this local backend has only 'alpha'"):
        await collect(local, QUESTION, GREEDY.model_copy(update={"adapter": "beta"}))
    with pytest.raises(ConfigError, match="its own adapter"):
        LocalBackend(str(runs["alpha"]), adapter=runs["beta"] / "adapter", device="cpu", home=shared_home)


def test_an_adapter_on_the_onnx_base_equals_the_merged_onnx_model(
    runs: dict[str, Path], exported: dict[str, Any], tiny_onnx_fp32: Path, shared_home: Path
) -> None:
    from finetune.export import export_onnx

    alpha = exported["alpha"]
    assert alpha.adapter_file == runs["alpha"] / "onnx" / "alpha.onnx_adapter"
    assert alpha.base_dir == exported["beta"].base_dir  # same modules adapted: one base, whatever the rank
    ids = token_ids(runs["alpha"] / "adapter")
    merged_logits, merged_tokens = onnx_run(export_onnx(runs["alpha"], precision="fp32", home=shared_home), ids)
    logits, tokens = onnx_run(alpha.base_dir, ids, adapter=alpha.adapter_file)
    assert np.abs(logits - merged_logits).max() < ONNX_ATOL
    assert tokens == merged_tokens

    # with no adapter active, the rank-0 defaults make it the plain base model, exactly
    base_logits, base_tokens = onnx_run(alpha.base_dir, ids)
    plain_logits, plain_tokens = onnx_run(tiny_onnx_fp32, ids)
    np.testing.assert_array_equal(base_logits, plain_logits)
    assert base_tokens == plain_tokens != tokens


async def test_the_onnx_backend_switches_adapters_per_request_without_mixing_caches(
    runs: dict[str, Path], exported: dict[str, Any], shared_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.backends import load_backend
    from chatbot.backends.onnx import OnnxBackend
    from tunedesk.settings import load_settings

    monkeypatch.setenv("TUNEDESK_ADAPTERS", f"{runs['alpha']},{runs['beta'] / 'onnx' / 'beta.onnx_adapter'}")
    backend: Any = load_backend("onnx", load_settings(model=TINY, precision="fp32"))
    cold = OnnxBackend(
        TINY, precision="fp32", home=shared_home, adapters=[runs["alpha"], runs["beta"]], prefix_cache_size=0
    )
    assert backend.path == exported["alpha"].base_dir
    assert sorted(backend.describe()["adapters"]) == ["alpha", "beta"]

    def params(adapter: str | None) -> GenerationParams:
        return GREEDY.model_copy(update={"adapter": adapter})

    answers: dict[str | None, str] = {}
    for adapter in ("alpha", "beta", None, "alpha"):  # the same prompt each time: a tempting cache hit
        answer = await collect(backend, QUESTION, params(adapter))
        reused = backend.last_stats.reused_tokens
        assert answer == await collect(cold, QUESTION, params(adapter)), adapter
        if adapter in answers:
            assert answer == answers[adapter] and reused > 0  # same adapter: the cache is used
        else:
            assert reused == 0, adapter  # KV computed under another adapter is never reused
        answers[adapter] = answer
    assert len({answers["alpha"], answers["beta"], answers[None]}) == 3

    merged = OnnxBackend(str(runs["alpha"]), precision="fp32", home=shared_home)
    assert answers["alpha"] == await collect(merged, QUESTION)

    with pytest.raises(ConfigError, match="unknown adapter 'gamma'; this onnx backend has: alpha, beta"):
        await collect(backend, QUESTION, params("gamma"))


def test_int4_base_keeps_the_lora_matmuls_float(runs: dict[str, Path], tmp_path: Path, shared_home: Path) -> None:
    import onnx

    from finetune.export import export_adapter

    exported = export_adapter(runs["alpha"], out=tmp_path, precision="int4", home=shared_home)
    assert exported.adapter_file == tmp_path / "alpha.onnx_adapter"
    graph = onnx.load(str(exported.base_dir / "model.onnx"), load_external_data=False).graph
    lora_ops = [node.op_type for node in graph.node if "/lora_A/" in node.name or "/lora_B/" in node.name]
    assert lora_ops == ["MatMul"] * 2 * 2 * 7  # A and B, 2 layers, 7 Linears: none quantized
    assert sum(node.op_type == "MatMulNBits" for node in graph.node) >= 2 * 7  # the base itself is int4
    ids = token_ids(runs["alpha"] / "adapter")
    with_adapter, _ = onnx_run(exported.base_dir, ids, adapter=exported.adapter_file, steps=1)
    without, _ = onnx_run(exported.base_dir, ids, steps=1)
    assert np.abs(with_adapter - without).max() > 0.5


def test_adapter_problems_are_named(
    runs: dict[str, Path],
    exported: dict[str, Any],
    tiny_onnx_fp32: Path,
    tiny_transformers: Path,
    tmp_path: Path,
    shared_home: Path,
) -> None:
    from chatbot.backends.onnx import OnnxBackend
    from finetune.export import export_adapter, export_onnx

    # a run whose adapter was never saved (training still running, or interrupted)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text(json.dumps({"format": 1, "kind": "lora", "name": "broken", "base": TINY}))
    with pytest.raises(ModelNotFoundError, match=r"broken/adapter has no adapter_config.json"):
        resolve(str(broken))

    # a base ONNX model without adapter inputs
    with pytest.raises(ConfigError, match="has no LoRA adapter inputs"):
        OnnxBackend(str(tiny_onnx_fp32), precision="fp32", home=shared_home, adapters=[runs["alpha"]])
    # adapters that were trained on another model
    with pytest.raises(ConfigError, match="trained on 'tiny-random-llama'.*set TUNEDESK_MODEL"):
        OnnxBackend("smollm2-135m", precision="fp32", home=shared_home, adapters=[runs["alpha"]])
    # a run whose adapter was not exported
    fresh = make_run(tmp_path / "fresh", tiny_transformers, seed=4)
    with pytest.raises(ConfigError, match="export-onnx .*fresh --adapter-only"):
        OnnxBackend(TINY, precision="fp32", home=shared_home, adapters=[fresh])
    # an export older than the adapter
    stale = tmp_path / "stale"
    shutil.copytree(runs["alpha"], stale)
    (stale / "onnx" / "alpha.onnx_adapter.json").write_text(
        (stale / "onnx" / "alpha.onnx_adapter.json").read_text().replace(str(runs["alpha"]), str(stale))
    )
    shutil.rmtree(stale / "adapter")
    make_run(stale, tiny_transformers, seed=5, name="alpha")
    with pytest.raises(ConfigError, match="is stale"):
        OnnxBackend(TINY, precision="fp32", home=shared_home, adapters=[stale])

    # exports that cannot be made
    with pytest.raises(ConfigError, match="not a LoRA run"):
        export_adapter(TINY, precision="fp32", home=shared_home)
    with pytest.raises(ModelPreparationError, match="needs CUDA"):
        export_onnx(runs["alpha"], precision="fp16", home=shared_home)
    embeddings = make_run(tmp_path / "embeddings", tiny_transformers, seed=6, targets=["q_proj", "embed_tokens"])
    with pytest.raises(ModelPreparationError, match=r"cannot serve as adapters: model\.embed_tokens"):
        export_adapter(embeddings, precision="fp32", home=shared_home)


def test_cli_exports_an_adapter(runs: dict[str, Path], exported: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunedesk.cli import app

    result = CliRunner().invoke(
        app,
        ["model", "export-onnx", str(runs["beta"]), "--adapter-only", "--precision", "fp32", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "beta.onnx_adapter")
    assert str(exported["beta"].base_dir) in result.stderr
    sidecar = json.loads((tmp_path / "beta.onnx_adapter.json").read_text())
    assert sidecar["rank"] == 4 and sidecar["base"] == TINY and len(sidecar["modules"]) == 2 * 7

    result = CliRunner().invoke(app, ["model", "export-onnx", str(runs["beta"]), "--precision", "fp16"])
    assert result.exit_code == 1 and "needs CUDA" in result.stderr
