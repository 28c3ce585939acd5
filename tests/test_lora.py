"""The local LoRA recipe on the tiny random Llama (real SmolLM2 tokenizer and chat template)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune.lora import (
    IGNORE,
    TrainConfig,
    causal_lm_loss,
    load_split,
    make_batches,
    render,
    tokenize_conversation,
    train,
)
from tunedesk.errors import ConfigError, TunedeskError

TINY = "tiny-random-llama"
SYSTEM = "You are a support assistant."
PRODUCTS = ["lamp", "kettle", "chair", "scarf", "mug", "desk", "rug", "clock"]


def conversation(i: int) -> dict[str, Any]:
    product = PRODUCTS[i % len(PRODUCTS)]
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Where is my {product}? Order {1000 + i}."},
            {"role": "assistant", "content": f"Your {product} from order {1000 + i} ships tomorrow."},
            {"role": "user", "content": "Thanks!"},
            {"role": "assistant", "content": "You're welcome. Anything else?"},
        ]
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lora-data")
    train_file = write_jsonl(folder / "train.jsonl", [conversation(i) for i in range(24)])
    val_file = write_jsonl(folder / "val.jsonl", [conversation(i) for i in range(100, 108)])
    return train_file, val_file


@pytest.fixture(scope="module")
def tokenizer(tiny_transformers: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_transformers)


def recipe(data: tuple[Path, Path], out: Path, **overrides: Any) -> TrainConfig:
    fields: dict[str, Any] = {
        "model": TINY,
        "train": data[0],
        "validation": data[1],
        "output": out,
        "rank": 4,
        "alpha": 8,
        "learning_rate": 5e-3,
        "batch_size": 4,
        "max_steps": 12,
        "eval_every": 6,
        "save_every": 4,
        "log_every": 2,
        "dropout": 0.1,
    }
    fields.update(overrides)
    return TrainConfig(**fields)


def test_labels_cover_exactly_the_assistant_turns_and_honour_weight_zero(tokenizer: Any) -> None:
    messages = conversation(3)["messages"]
    example = tokenize_conversation(tokenizer, messages)
    learned = tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE]
    )
    assert learned == (
        "Your scarf from order 1003 ships tomorrow.<|im_end|>\nYou're welcome. Anything else?<|im_end|>\n"
    )
    assert tokenizer.decode(example.input_ids) == render(tokenizer, messages)

    messages[2] = {**messages[2], "weight": 0}
    example = tokenize_conversation(tokenizer, messages)
    learned = tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE]
    )
    assert learned == "You're welcome. Anything else?<|im_end|>\n"


def test_training_prompt_is_the_inference_prompt(tokenizer: Any) -> None:
    """The tokens before an assistant turn are what a backend sends for that question (parity at the source)."""
    messages = conversation(5)["messages"]
    example = tokenize_conversation(tokenizer, messages)
    first_learned = next(i for i, label in enumerate(example.labels) if label != IGNORE)
    prompt = tokenizer.apply_chat_template(messages[:2], add_generation_prompt=True, tokenize=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "input_ids") else prompt)
    assert example.input_ids[:first_learned] == prompt


def test_length_grouped_batches_waste_little_padding_and_packing_none(tokenizer: Any, tmp_path: Path) -> None:
    rows = [conversation(i) for i in range(40)]
    for i, row in enumerate(rows):  # lengths that vary a lot
        row["messages"][2]["content"] += " Details." * (i % 9 * 6)
    examples, _ = load_split(tokenizer, write_jsonl(tmp_path / "t.jsonl", rows), 1024)
    base = TrainConfig(train=tmp_path / "t.jsonl", batch_size=4)
    grouped = make_batches(examples, base, 0, pad_id=0)
    packed = make_batches(examples, base.model_copy(update={"packing": True, "max_seq_length": 512}), 0, pad_id=0)
    total = sum(len(e.input_ids) for e in examples)
    for batches in (grouped, packed):
        assert sum(b.tokens for b in batches) == total
        assert sum(b.learned for b in batches) == sum(e.learned for e in examples)
    grouped_padding = sum(b.input_ids.numel() for b in grouped) / total - 1
    assert grouped_padding < 0.05, grouped_padding
    unsorted = [examples[i : i + 4] for i in range(0, len(examples), 4)]
    naive_padding = sum(max(len(e.input_ids) for e in g) * len(g) for g in unsorted) / total - 1
    assert naive_padding > 4 * grouped_padding
    assert make_batches(examples, base, 1, pad_id=0)[0].input_ids.tolist() != grouped[0].input_ids.tolist()


def test_packed_loss_equals_unpacked_loss_conversations_do_not_see_each_other(
    tokenizer: Any, tiny_transformers: Path, data: tuple[Path, Path]
) -> None:
    import torch

    from finetune.lora import build_model

    examples, _ = load_split(tokenizer, data[0], 1024)
    examples = examples[:6]
    config = TrainConfig(train=data[0], batch_size=6, dropout=0.0)
    torch.manual_seed(0)
    loss = causal_lm_loss(build_model(tiny_transformers, config, torch.float32)).eval()
    padded = make_batches(examples, config, 0, pad_id=0, shuffle=False)
    packed = make_batches(examples, config.model_copy(update={"packing": True}), 0, pad_id=0, shuffle=False)
    assert len(padded) == len(packed) == 1 and packed[0].input_ids.shape[0] == 1  # all six in one row
    with torch.no_grad():
        a = loss(padded[0].input_ids, padded[0].labels, padded[0].attention_mask)
        b = loss(packed[0].input_ids, packed[0].labels, position_ids=packed[0].position_ids)
    assert torch.allclose(a, b, rtol=1e-4), (a, b)


def test_lm_head_on_learned_positions_only_matches_the_full_forward(
    tokenizer: Any, tiny_transformers: Path, data: tuple[Path, Path]
) -> None:
    import torch

    from finetune.lora import build_model

    examples, _ = load_split(tokenizer, data[0], 1024)
    config = TrainConfig(train=data[0], batch_size=4, dropout=0.0)
    loss = causal_lm_loss(build_model(tiny_transformers, config, torch.float32)).eval()
    batch = make_batches(examples, config, 0, pad_id=0)[0]
    assert loss.verify(batch)
    with torch.no_grad():
        fast = loss(batch.input_ids, batch.labels, batch.attention_mask)
        loss.selected = False
        full = loss(batch.input_ids, batch.labels, batch.attention_mask)
    assert torch.allclose(fast, full, rtol=1e-5)


def test_training_lowers_loss_changes_every_lora_weight_and_no_base_weight(
    data: tuple[Path, Path], tmp_path: Path, tiny_transformers: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    result = train(recipe(data, tmp_path / "run", max_steps=16, eval_every=8), progress=False)
    run = tmp_path / "run"
    manifest = json.loads((run / "tunedesk-manifest.json").read_text())
    assert manifest["kind"] == "lora" and manifest["base"] == TINY and manifest["steps"] == 16
    assert manifest["data"]["train"]["examples"] == 24
    assert manifest["best_val_loss"] < manifest["base_val_loss"] - 1.0
    train_losses = [r["loss"] for r in result.history if r["event"] == "train"]
    assert train_losses[-1] < train_losses[0] - 1.0
    assert (run / "loss.png").stat().st_size > 10_000 and (run / "config.yaml").is_file()
    assert not (run / "checkpoints").exists()  # a finished run keeps only its best adapter

    from finetune.lora import _seed_everything, build_model

    trained = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    targets = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
    assert targets == {"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}
    _seed_everything(0)  # the recipe's seed: the adapter starts from these A matrices (and B = 0)
    fresh = build_model(tiny_transformers, recipe(data, run), torch.float32)
    initial = {k.replace(".default", ""): v for k, v in fresh.state_dict().items() if "lora_" in k}
    assert set(initial) == set(trained) and len(trained) == 2 * 7 * 2  # A and B, 7 modules, 2 layers
    assert [k for k, v in trained.items() if torch.equal(v, initial[k])] == []
    ended = result.model.state_dict()
    base = {k: v for k, v in fresh.state_dict().items() if "lora_" not in k}
    assert len(base) > 20 and all(torch.equal(ended[k], v) for k, v in base.items())


def test_resume_continues_exactly_like_an_uninterrupted_run(data: tuple[Path, Path], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    whole = train(recipe(data, tmp_path / "whole"), progress=False)

    def interrupt(record: dict[str, Any]) -> None:
        if record["step"] == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(recipe(data, tmp_path / "split"), progress=False, on_step=interrupt)
    assert (tmp_path / "split" / "checkpoints" / "step-8" / "state.json").is_file()
    assert not (tmp_path / "split" / "tunedesk-manifest.json").exists()
    with pytest.raises(ConfigError, match="not empty"):
        train(recipe(data, tmp_path / "split"), progress=False)
    resumed = train(recipe(data, tmp_path / "split"), progress=False, resume=True)

    assert resumed.steps == whole.steps == 12
    a = load_file(str(tmp_path / "whole" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "split" / "adapter" / "adapter_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k not in ("tokens_per_s",)} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in resumed.history] == strip
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(recipe(data, tmp_path / "whole"), progress=False)


def test_early_stopping_keeps_the_best_adapter(data: tuple[Path, Path], tmp_path: Path) -> None:
    # a learning rate this high diverges after the first evaluation: training stops at the patience
    result = train(
        recipe(data, tmp_path / "run", learning_rate=0.5, max_steps=40, eval_every=2, early_stopping_patience=2),
        progress=False,
    )
    evals = [r for r in result.history if r["event"] == "eval" and r["step"] > 0]
    assert result.stopped_early and result.steps < 40
    assert [r["best"] for r in evals[-2:]] == [False, False]
    assert result.best_val_loss == min(r["val_loss"] for r in evals)


def test_bad_config_and_bad_data_name_the_file_line_and_field(tmp_path: Path, data: tuple[Path, Path]) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text(f"train: {data[0]}\nrank: 0\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_yaml(config)
    assert str(config) in str(caught.value) and "rank" in str(caught.value) and "learning_rat" in str(caught.value)

    bad = tmp_path / "bad.jsonl"
    rows = [json.dumps(conversation(1)), json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "bot"}]})]
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(TunedeskError, match=rf"{bad}:2: messages\.1\.role"):
        train(recipe(data, tmp_path / "run", train=bad), progress=False)
    assert not (tmp_path / "run").exists()


def test_the_shipped_config_loads_and_starts_with_its_command() -> None:
    path = Path(__file__).parent.parent / "finetune" / "configs" / "smollm2-support.yaml"
    first = path.read_text().splitlines()[0]
    assert first == f"# tunedesk finetune lora --config finetune/configs/{path.name}"
    config = TrainConfig.from_yaml(path)
    assert config.model == "smollm2-135m" and config.target_modules == "all-linear"


def test_two_processes_under_accelerate_launch_train_one_adapter(
    data: tuple[Path, Path], tmp_path: Path, shared_home: Path
) -> None:
    """The multi-GPU recipe, on CPU: two gloo processes started the way torchrun (and Azure ML's PyTorch
    distribution, and accelerate launch on GPUs) start them; one run directory, the same steps."""
    config = tmp_path / "recipe.yaml"
    config.write_text(recipe(data, tmp_path / "ddp", max_steps=4, eval_every=2, save_every=2).to_yaml())
    env = {**os.environ, "TUNEDESK_HOME": str(shared_home), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*launcher, "-m", "tunedesk", "finetune", "lora", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "ddp" / "tunedesk-manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["steps"] == 4
    assert (tmp_path / "ddp" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_real_smollm2_learns_the_sample_support_data(tmp_path: Path) -> None:
    """A few dozen steps on the sample store's conversations lower SmolLM2's validation loss."""
    from data.prepare import PrepareConfig, prepare

    root = Path(__file__).parent.parent
    prepare([root / "data" / "samples" / "support" / "raw.csv"], tmp_path / "data", PrepareConfig())
    val = tmp_path / "val16.jsonl"
    val.write_text("".join((tmp_path / "data" / "val.jsonl").read_text().splitlines(keepends=True)[:16]))
    config = TrainConfig(
        model="smollm2-135m",
        train=tmp_path / "data" / "train.jsonl",
        validation=val,
        output=tmp_path / "run",
        batch_size=2,
        max_seq_length=320,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        max_steps=24,
        eval_every=12,
        log_every=4,
        save_every=12,
    )
    result = train(config, progress=False)
    evals = [r["val_loss"] for r in result.history if r["event"] == "eval"]
    assert len(evals) == 3 and evals[2] < evals[1] < evals[0], evals
    assert evals[0] - evals[2] > 0.2, evals  # in nats: perplexity falls by a fifth or more
