"""LoRA training throughput (useful tokens/s) and peak memory: finetune.lora against a plain loop and TRL.

Run: .venv/bin/python bench/train_lora.py [--model smollm2-135m] [--steps 10] [--trl-steps 4]
     (quick check: --model tiny-random-llama --steps 4)

Same data (``build/support/train.jsonl``; ``tunedesk data prepare data/samples/support/raw.csv --out
build/support`` makes it), same base model, same LoRA (r=16, alpha=32, dropout 0.05, all-linear), batches
of 8 conversations, AdamW. Contenders, each in its own process (peak memory is its own, no contender warms
caches for another) with the same number of torch threads:
  ours         ``finetune.lora.train``: length-grouped batches padded to the longest, LM head only on the
               learned (assistant) positions, fp32 on CPU and bf16 autocast on CUDA
  ours-packed  the same with ``packing: true`` (rows of 1024 tokens); rows per step chosen so that a step
               holds about as many tokens as 8 conversations
  plain        the floor of overhead: ``peft.get_peft_model``, shuffled file order, padded to the longest,
               ``model(input_ids, attention_mask, labels)``, backward, AdamW step, zero_grad. Nothing else
               (``use_cache=False`` so no KV cache is built). It learns every token, as a naive loop does;
               that costs the same compute, it only changes what is learned. Same precision as ours.
  trl          TRL's ``SFTTrainer`` with its defaults (``SFTConfig``: output_dir, max_steps, batch size,
               report_to=[], logging_steps, save_strategy="no", and on a machine without CUDA use_cpu=True,
               see below); the model given as a path, so TRL loads it; ``--trl-set KEY=VALUE`` adds fields
  trl-tuned    the same with the flags that undo the slow defaults below (``TUNED_TRL``, ``TUNED_TRL_CPU``)

Useful tokens are the non-padding tokens of the batches each contender actually trained on (TRL's are
counted by wrapping its data collator). Time per step is the wall clock between the ends of consecutive
optimizer steps, everything the framework does between steps included; the first ``--warmup`` steps are
not timed. Ours also reports its own step timing (``internal_tokens_per_s``) as a cross-check. Peak RSS
is the process's high-water mark (VmHWM; on CUDA also ``torch.cuda.max_memory_allocated``). On CUDA, model
FLOPs utilisation = 4 * N * useful tokens / time / peak FLOPs, N the base model's parameters (the tied
embedding counted once, as the LM head): forward 2N per token, backward 2N, since LoRA freezes the base
weights and only their input gradients are needed; LoRA's own weight gradients, attention scores and
recomputation (gradient checkpointing) are not counted.

Why TRL is slow here. TRL 1.16.0, transformers 5.23, SmolLM2-135M, 8 conversations (~1700 tokens) a step,
2 AVX2 cores without native bf16 (no AVX512-BF16/AMX); one to three timed steps per figure on a shared
machine, so +-20%. Measured with this script (``--contenders trl --trl-set ...``), each toggle on its own:
  - bf16 autocast on a CPU that emulates it: x15, ~93% of the time. On a machine without CUDA, ``SFTConfig()``
    refuses its own ``bf16=True`` default ("Your setup doesn't support bf16/gpu. You need to assign use_cpu
    ..."); following that advice keeps bf16 on: 341 s/step (5.5 tokens/s), against 22.8 s/step with
    ``bf16=False`` (79 tokens/s). A SmolLM2 MLP matmul is 6-7x slower in bf16 than fp32 here, the frozen fp32
    weights are cast again at every call (autocast caches only casts of leaves that require grad), and
    TRL's LM head runs in bf16 too (below: 19 s instead of 6 s).
  - ``gradient_checkpointing=True`` (TRL's default; transformers 5 calls it activation_checkpointing)
    recomputes every layer's forward during the backward: 296 -> 341 s/step with bf16, 18.6 -> 22.8 s/step
    in fp32 (+15-23%).
  - The fused LM head SFTTrainer always installs (``trl.trainer.utils.add_fused_lm_head``: chunked
    log-probabilities plus entropy and top-1 metrics) has only a torch fallback off CUDA/XPU: it scores every
    position, padding included (22% here), recomputes the 49k-wide logits in the backward and makes some
    twenty passes over [positions x 32768] fp32 tiles. Head forward+backward for 2400 positions: 6.3 s
    (0.7 s of it entropy/top-1) against 2.5 s for full logits + cross-entropy; end to end 17-19 s/step
    against 14-15 s/step when a subclass's ``compute_loss`` is ``transformers.Trainer.compute_loss`` (+20%).
    No SFTConfig field turns it off.
  - Not causes: padding (TRL pads to the longest in the batch, not to max_length=1024: 21.7% padding, the
    plain loop 21.9%), padding_free (off), dataloader workers (0; collating takes milliseconds), Liger (off),
    model dtype (fp32, as ours), assistant_only_loss/completion_only_loss (off: TRL, like the plain loop,
    learns every token of a "messages" dataset: a quality matter, not a speed one), logging.
  Fix on a CPU: ``SFTConfig(bf16=False, gradient_checkpointing=False)`` (use_cpu is then not needed):
  18.1 s/step, 97 tokens/s, about 18x the defaults, 0.85x the plain loop (114 tokens/s) because of the LM
  head. On CUDA only gradient checkpointing is worth turning off; there the head runs Triton kernels on the
  positions in the loss only.

Measured on a quiet machine (2026-11-24, 10 steps, 8 timed; TRL 2 steps, 1 timed): ours 185 tokens/s, plain
124, trl-tuned 100, ours-packed 147, trl 5.6 (331 s/step). ours / plain 1.50, ours / trl 33, ours / trl-tuned 1.85.
Peak RSS: ours 9.1 GB, plain 11.2 GB (logits over every position), trl 4.6 GB (bf16 and recomputation).
Packing loses on a CPU: SDPA computes a packed row's whole 1024x1024 block-causal mask, where a
length-grouped batch attends over ~200 tokens (about +27% FLOPs per token for SmolLM2).

Prints a table, then as the last line one JSON object with the figures and the ratios of useful tokens/s
``ours_vs_plain_loop_tokens_per_s`` and ``ours_vs_trl_tokens_per_s`` (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chat_decode import peak_rss_mb  # noqa: E402 (the same high-water mark as the chat benchmark)

CONTENDERS = ("ours", "ours-packed", "plain", "trl", "trl-tuned")
RANK, ALPHA, DROPOUT = 16, 32, 0.05
# SFTConfig flags that undo TRL's slow defaults (see the module docstring); bf16 stays on with a GPU.
TUNED_TRL: dict[str, Any] = {"gradient_checkpointing": False}
TUNED_TRL_CPU: dict[str, Any] = {"bf16": False}


# ---------------------------------------------------------------------------------------------- measuring


class StepClock:
    """Wall clock at the end of each optimizer step, and the useful tokens of that step."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.ends: list[float] = []
        self.tokens: list[int] = []

    def step_done(self, tokens: int) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.tokens.append(tokens)

    def summary(self, warmup: int, started: float | None = None) -> dict[str, Any]:
        """Figures over the steps after ``warmup``; step 1 is timed from ``started`` when known."""
        steps = len(self.ends)
        assert steps > warmup >= 1, f"{steps} steps leave nothing to time after {warmup} warm-up steps"
        seconds = self.ends[-1] - self.ends[warmup - 1]
        tokens = sum(self.tokens[warmup:])
        starts = [started, *self.ends[:-1]]
        return {
            "steps": steps,
            "timed_steps": steps - warmup,
            "useful_tokens": tokens,
            "seconds": round(seconds, 3),
            "s_per_step": round(seconds / (steps - warmup), 3),
            "tokens_per_s": round(tokens / seconds, 1),
            "step_s": [None if s is None else round(e - s, 3) for s, e in zip(starts, self.ends, strict=True)],
            "step_tokens": self.tokens,
        }


def device_figures(base_path: Path, tokens_per_s: float, peak_tflops: float) -> dict[str, Any]:
    """Peak CUDA memory and model FLOPs utilisation (4 * N per useful token); nothing on CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"device": "cpu"}
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base_path))
    n_params = sum(p.numel() for p in model.parameters())  # tied embedding counted once: the LM head
    achieved = 4 * n_params * tokens_per_s
    return {
        "device": torch.cuda.get_device_name(),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        "model_params": n_params,
        "achieved_tflops": round(achieved / 1e12, 2),
        "mfu": round(achieved / (peak_tflops * 1e12), 4),
    }


def lora_config() -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=RANK, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules="all-linear", task_type="CAUSAL_LM"
    )


# ---------------------------------------------------------------------------------------------- contenders


def run_ours(args: argparse.Namespace, base_path: Path, packing: bool) -> dict[str, Any]:
    import torch

    from finetune.lora import TrainConfig, train

    batch_size, conversations = packed_plan(args, base_path) if packing else (args.batch_size, None)
    clock = StepClock(torch.cuda.is_available())
    records: list[dict[str, Any]] = []

    def on_step(record: dict[str, Any]) -> None:
        clock.step_done(record["tokens"] - (records[-1]["tokens"] if records else 0))
        records.append(record)

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig.model_validate(
            {
                "model": args.model,
                "train": args.data,
                "validation": None,
                "output": Path(tmp) / "run",
                "rank": RANK,
                "alpha": ALPHA,
                "dropout": DROPOUT,
                "target_modules": "all-linear",
                "batch_size": batch_size,
                "max_steps": args.steps,
                "packing": packing,
                "seed": args.seed,
                "eval_every": 0,
                "eval_at_start": False,
                "early_stopping_patience": None,
                "save_every": 10**9,
                "log_every": 1,
            }
        )
        result = train(config, progress=False, on_step=on_step)
        fast_head = next((r.get("fast_lm_head") for r in result.history if r.get("event") == "start"), None)
    warmup = min(args.warmup, args.steps - 1)
    figures = clock.summary(warmup)
    # ours' own clock (time inside optimizer steps): a step's seconds = its tokens / its logged tokens_per_s
    own = [tokens / r["tokens_per_s"] for tokens, r in zip(clock.tokens, records, strict=True)]
    figures["step_s"][0] = round(own[0], 3)
    figures["internal_tokens_per_s"] = round(figures["useful_tokens"] / sum(own[warmup:]), 1)
    figures["total_train_seconds"] = round(result.train_seconds, 2)
    figures["fast_lm_head"] = fast_head
    figures["rows_per_step"] = batch_size
    figures["conversations_per_step"] = round(conversations / args.steps, 1) if conversations else args.batch_size
    return figures


def packed_plan(args: argparse.Namespace, base_path: Path) -> tuple[int, int]:
    """Rows of 1024 tokens per step that hold about ``--batch-size`` conversations, and how many conversations
    the run's steps hold (the rows rebuilt exactly as ``train`` builds them)."""
    from transformers import AutoTokenizer

    from finetune.lora import TrainConfig, load_split, make_batches

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    examples, summary = load_split(tokenizer, args.data, 1024)
    rows = max(1, round(args.batch_size * summary.tokens / summary.examples / 1024))
    config = TrainConfig.model_validate({"train": args.data, "batch_size": rows, "packing": True, "seed": args.seed})
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = make_batches(examples, config, 0, pad)[: args.steps]
    positions: list[Any] = [b.position_ids for b in batches]
    return rows, sum(int((p == 0).sum()) for p in positions)  # positions restart at each conversation


def run_plain(args: argparse.Namespace, base_path: Path) -> dict[str, Any]:
    import random

    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.lora import read_conversations

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    conversations = [messages for _, messages in read_conversations(args.data)]
    random.Random(args.seed).shuffle(conversations)
    encoded = [
        tokenizer(tokenizer.apply_chat_template(m, tokenize=False), add_special_tokens=False)["input_ids"]
        for m in conversations
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = []
    for start in range(0, len(encoded), args.batch_size):
        group = encoded[start : start + args.batch_size]
        width = max(len(ids) for ids in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, seq in enumerate(group):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        batches.append((ids, mask, ids.masked_fill(mask == 0, -100)))

    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.bfloat16 if cuda else torch.float32)
    model = get_peft_model(model, lora_config()).to(device)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    clock = StepClock(cuda)
    padded = 0
    started = time.perf_counter()
    for step in range(args.steps):
        ids, mask, labels = (t.to(device) for t in batches[step % len(batches)])
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        clock.step_done(int(mask.sum()))
        padded += ids.numel()
    figures = clock.summary(min(args.warmup, args.steps - 1), started)
    figures["padding_share"] = round(1 - sum(clock.tokens) / padded, 3)
    return figures


def run_trl(args: argparse.Namespace, base_path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    import torch
    import trl
    from datasets import load_dataset  # type: ignore[import-untyped]
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    clock = StepClock(cuda)
    collated: list[tuple[int, int]] = []  # (non-padding tokens, positions computed) per batch, in training order

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.step_done(collated[len(clock.ends)][0])

    def counting(collate: Callable[[list[Any]], dict[str, Any]]) -> Callable[[list[Any]], dict[str, Any]]:
        def wrapped(examples: list[Any]) -> dict[str, Any]:
            batch = collate(examples)
            ids = batch["input_ids"]
            mask = batch.get("attention_mask")
            collated.append((int(mask.sum()) if mask is not None else ids.numel(), ids.numel()))
            return batch

        return wrapped

    steps = args.trl_steps
    dataset = load_dataset("json", data_files=str(args.data), split="train")
    callback = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=args.batch_size,
            report_to=[],
            logging_steps=1,
            save_strategy="no",
            **overrides,
        )
        trainer = SFTTrainer(
            model=str(base_path), args=config, train_dataset=dataset, peft_config=lora_config(), callbacks=[callback]
        )
        trainer.data_collator = counting(trainer.data_collator)
        trainer.train()
    figures = clock.summary(min(args.warmup, steps - 1), callback.started)
    assert sum(clock.tokens) == trainer._total_train_tokens, "token count disagrees with TRL's own"
    figures["padding_share"] = round(1 - sum(t for t, _ in collated[:steps]) / sum(p for _, p in collated[:steps]), 3)
    figures["trl_version"] = trl.__version__
    figures["settings"] = {
        name: getattr(config, name) for name in ("bf16", "gradient_checkpointing", "padding_free", "max_length")
    } | overrides
    return figures


# ---------------------------------------------------------------------------------------------- driver


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One contender, in this process."""
    import torch

    from tunedesk.prepare import ensure_transformers
    from tunedesk.settings import load_settings

    torch.set_num_threads(args.threads)
    base_path = ensure_transformers(args.model, load_settings().home)
    torch.manual_seed(args.seed)
    if name in ("ours", "ours-packed"):
        figures = run_ours(args, base_path, packing=name == "ours-packed")
    elif name == "plain":
        figures = run_plain(args, base_path)
    else:
        cpu = not torch.cuda.is_available()
        overrides = {"use_cpu": True} if cpu else {}  # without it SFTConfig refuses its own bf16 default on a CPU
        if name == "trl-tuned":
            overrides |= TUNED_TRL | (TUNED_TRL_CPU if cpu else {})
        figures = run_trl(args, base_path, overrides | args.trl_set)
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["threads"] = torch.get_num_threads()
    return figures | device_figures(base_path, figures["tokens_per_s"], args.peak_tflops)


def trl_setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--trl-set {text!r}: expected KEY=VALUE, e.g. bf16=false")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="registry name or transformers directory")
    parser.add_argument("--data", type=Path, default=ROOT / "build/support/train.jsonl", help="chat JSONL")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps for ours and the plain loop")
    parser.add_argument("--trl-steps", type=int, default=None, help="steps for TRL (default: --steps, at most 4)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of timing (1 to steps - 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="conversations per step")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in every contender")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"comma-separated, of {CONTENDERS}")
    parser.add_argument(
        "--trl-set",
        type=trl_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an SFTConfig field for the trl contenders (JSON value), e.g. --trl-set bf16=false; repeatable",
    )
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="GPU peak bf16 TFLOPs (H100 SXM dense)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.trl_set = dict(args.trl_set)
    if args.trl_steps is None:
        args.trl_steps = min(args.steps, 4)
    args.warmup = max(1, args.warmup)
    if args.child:
        with contextlib.redirect_stdout(sys.stderr):  # trainers print; the result is the last stdout line
            result = measure(args.child, args)
        print(json.dumps(result))
        return 0

    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown:
        print(f"--contenders: unknown {unknown}; choose from {', '.join(CONTENDERS)}", file=sys.stderr)
        return 2
    if min(args.steps, args.trl_steps) < 2:
        print("--steps and --trl-steps: at least 2 (the first step is never timed)", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(
            f"{args.data}: no such file; make it with: "
            "tunedesk data prepare data/samples/support/raw.csv --out build/support",
            file=sys.stderr,
        )
        return 2
    from tunedesk.prepare import ensure_transformers
    from tunedesk.settings import load_settings

    ensure_transformers(args.model, load_settings().home)  # conversion is not part of any measurement
    forwarded = [
        "--model", args.model, "--data", str(args.data), "--steps", str(args.steps),
        "--trl-steps", str(args.trl_steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
        "--threads", str(args.threads), "--seed", str(args.seed), "--peak-tflops", str(args.peak_tflops),
    ]  # fmt: skip
    for key, value in args.trl_set.items():
        forwarded += ["--trl-set", f"{key}={json.dumps(value)}"]
    env = os.environ | {
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    results: dict[str, Any] = {}
    for name in contenders:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--child", name, *forwarded], capture_output=True, text=True, env=env
        )
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            lines = child.stderr.strip().splitlines()
            results[name] = {"error": lines[-1] if lines else f"exit status {child.returncode}"}
            continue
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        results[name]["process_s"] = round(time.perf_counter() - started, 1)
    print_table(results)
    summary: dict[str, Any] = {
        "model": args.model,
        "data": str(args.data),
        "batch_size": args.batch_size,
        "lora": {"r": RANK, "alpha": ALPHA, "dropout": DROPOUT, "target_modules": "all-linear"},
        "threads": args.threads,
        "cores": os.cpu_count(),
        "warmup_steps": args.warmup,
        "contenders": results,
    }
    ours = results.get("ours", {}).get("tokens_per_s")
    for key, other in (
        ("ours_vs_plain_loop_tokens_per_s", "plain"),
        ("ours_vs_trl_tokens_per_s", "trl"),
        ("ours_vs_trl_tuned_tokens_per_s", "trl-tuned"),
    ):
        theirs = results.get(other, {}).get("tokens_per_s")
        summary[key] = round(ours / theirs, 2) if ours and theirs else None
    print(json.dumps(summary))
    return 0 if all("error" not in r for r in results.values()) else 1


def print_table(results: dict[str, Any]) -> None:
    columns = ["steps", "timed_steps", "useful_tokens", "s_per_step", "tokens_per_s", "peak_rss_mb", "mfu"]
    if not any("mfu" in row for row in results.values()):
        columns.remove("mfu")
    print(f"{'contender':<13}" + "".join(f"{c:>15}" for c in columns))
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<13}  error: {row['error'][:200]}")
            continue
        print(f"{name:<13}" + "".join(f"{row.get(c, '-')!s:>15}" for c in columns))


if __name__ == "__main__":
    sys.exit(main())
