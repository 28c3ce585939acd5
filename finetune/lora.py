"""Local LoRA fine-tuning (peft) on the chat JSONL that ``tunedesk data prepare`` writes.

Decisions:
- One recipe from a laptop to several GPUs: a plain PyTorch loop under ``accelerate.Accelerator``, so
  ``accelerate launch`` (or Azure ML's PyTorch distribution) runs the same code on N processes. No
  ``Trainer``: the loop is short enough to read, and every step is ours to make fast.
- The conversation is rendered by the model's own chat template, once, as text; the assistant turns
  are located as character spans of that text and mapped to tokens through the tokenizer's offsets.
  Only those tokens are in the loss (an assistant message with ``"weight": 0`` is not). The prompt a
  backend sends at inference is the same template, so training and serving cannot drift.
- No compute on padding, and none on positions that are not learned:
  - ``packing: false`` (default): length-grouped batches (shuffled, then sorted within windows of 64
    batches, as transformers' ``group_by_length``), padded only to the longest in the batch.
  - ``packing: true``: conversations are packed into rows of up to ``max_seq_length`` tokens with
    ``position_ids`` restarting at each one and no attention mask, which makes transformers build a
    block-causal mask: a conversation never attends to its neighbour (a test checks the loss equals
    the unpacked one).
  - the LM head (a fifth of SmolLM2's compute, and a 49k-wide softmax) runs only on the positions
    whose next token is learned. That shortcut is checked against the model's own forward once at
    start, and the recipe falls back to full logits for models where they differ (e.g. softcapping).
- The loss of an optimizer step is the mean over every learned token of all its micro-batches, not a
  mean of per-batch means, so gradient accumulation does not reweight short answers.
- Batch order depends only on ``seed`` and the epoch, so ``--resume`` from a checkpoint (adapter,
  optimizer, scheduler, RNG states, position) continues exactly where an uninterrupted run would be.
  Ctrl-C saves a checkpoint before exiting.
- The run directory keeps the adapter with the best validation loss (``adapter/``, written whole),
  ``metrics.jsonl``, ``loss.png`` and a manifest the registry reads, so ``--model runs/x`` loads it.
- bf16 autocast on CUDA (LoRA weights stay fp32), fp32 on CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from data.records import read_records
from data.schema import EXAMPLE_KEYS, ChatMessage
from data.support_chat import DataError
from finetune.config import RecipeConfig
from tunedesk import __version__
from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import replacing_directory, write_text_atomically
from tunedesk.models import MANIFEST, read_manifest, sha256_file

IGNORE = -100
ALL_LINEAR: Literal["all-linear"] = "all-linear"


class TrainConfig(RecipeConfig):
    """A LoRA fine-tune; every field can be set in the YAML file, the paths also by CLI flags."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("smollm2-135m", description="Base model: registry name, transformers directory or hub id.")
    train: Path = Field(..., description="Training JSONL (chat format).")
    validation: Path | None = Field(None, description="Validation JSONL; evaluation and early stopping need it.")
    output: Path = Field(Path("runs/support"), description="Run directory.")
    # LoRA
    rank: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(ALL_LINEAR, description="Module names, or all-linear.")
    # optimisation
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of the steps spent warming up.")
    epochs: float = Field(2, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(8, ge=1, description="Sequences (or packed rows) per micro-batch and process.")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_seq_length: int = Field(1024, ge=16, description="Longer conversations are cut (and counted).")
    packing: bool = Field(False, description="Pack conversations into rows of max_seq_length tokens.")
    gradient_checkpointing: bool = False
    seed: int = 0
    # evaluation, logging, checkpoints
    eval_every: int = Field(50, ge=0, description="Optimizer steps between evaluations; 0: only at the end.")
    eval_at_start: bool = Field(True, description="Evaluate the base model first: the before of before/after.")
    early_stopping_patience: int | None = Field(3, ge=1, description="Evaluations without improvement to stop.")
    early_stopping_min_delta: float = Field(0.0, ge=0)
    log_every: int = Field(10, ge=1)
    save_every: int = Field(50, ge=1, description="Optimizer steps between checkpoints.")
    keep_checkpoints: int = Field(2, ge=1)
    device: str = Field("auto", description="auto, cpu or cuda; under accelerate launch, accelerate decides.")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.early_stopping_patience is not None and self.validation is None:
            self.early_stopping_patience = None  # nothing to stop on
        return self


# ---------------------------------------------------------------------------------------------- data


@dataclass
class Tokenized:
    """One conversation: its token ids and labels (``IGNORE`` where nothing is learned)."""

    input_ids: list[int]
    labels: list[int]
    source: str  # file:line, for messages

    @property
    def learned(self) -> int:
        return sum(1 for label in self.labels[1:] if label != IGNORE)


@dataclass
class DataSummary:
    path: str
    sha256: str
    examples: int
    tokens: int
    learned_tokens: int
    truncated: int = 0
    dropped: int = 0  # nothing left to learn after truncation

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def read_conversations(path: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(line, messages)`` for each example of a chat JSONL file; bad examples raise naming file:line: field."""
    for line, record in read_records(path, fields=sorted(EXAMPLE_KEYS), fmt="jsonl"):
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{path}:{line}: messages: expected a non-empty list of messages")
        checked = []
        for index, message in enumerate(messages):
            try:
                checked.append(ChatMessage.model_validate(message).model_dump(exclude_none=True))
            except ValidationError as exc:
                name, problem = validation_problems(exc)[0]
                raise DataError(f"{path}:{line}: messages.{index}.{name}: {problem}") from None
        if not any(m["role"] == "assistant" for m in checked):
            raise DataError(f"{path}:{line}: messages: no assistant message to learn from")
        yield line, checked


def render(tokenizer: Any, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = False) -> str:
    """The chat-template text of ``messages``; the very function the parity test holds backends to."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    text: str = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)
    return text


def tokenize_conversation(tokenizer: Any, messages: Sequence[dict[str, Any]], source: str = "") -> Tokenized:
    """Token ids and assistant-only labels of one conversation, rendered by the model's chat template.

    An assistant turn's span runs from the end of the prompt that asks for it (``add_generation_prompt``)
    to the end of the conversation rendered through it, so it includes the end-of-turn token: the model
    learns to stop. Turns with ``weight: 0`` are left out."""
    text = render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        before = render(tokenizer, messages[:index], add_generation_prompt=True)
        through = render(tokenizer, messages[: index + 1])
        if not text.startswith(before) or not text.startswith(through):
            raise DataError(
                f"{source}: the chat template does not render message {index} as a prefix of the conversation; "
                "assistant-only loss needs a template that appends turns"
            )
        spans.append((len(before), len(through)))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    labels = [IGNORE] * len(ids)
    span = 0
    for position, (start, end) in enumerate(encoded["offset_mapping"]):
        while span < len(spans) and start >= spans[span][1]:
            span += 1
        if span < len(spans) and start >= spans[span][0] and end <= spans[span][1] and end > start:
            labels[position] = ids[position]
    return Tokenized(ids, labels, source)


def load_split(tokenizer: Any, path: Path, max_seq_length: int) -> tuple[list[Tokenized], DataSummary]:
    """Tokenize a chat JSONL file; conversations longer than ``max_seq_length`` are cut at the end."""
    examples: list[Tokenized] = []
    summary = DataSummary(str(path), sha256_file(path) if path.is_file() else "", 0, 0, 0)
    for line, messages in read_conversations(path):
        example = tokenize_conversation(tokenizer, messages, f"{path}:{line}")
        if len(example.input_ids) > max_seq_length:
            summary.truncated += 1
            example = Tokenized(example.input_ids[:max_seq_length], example.labels[:max_seq_length], example.source)
        if example.learned == 0:
            summary.dropped += 1
            continue
        examples.append(example)
        summary.examples += 1
        summary.tokens += len(example.input_ids)
        summary.learned_tokens += example.learned
    if not examples:
        raise DataError(f"{path}: no example has an assistant token to learn within max_seq_length={max_seq_length}")
    return examples, summary


@dataclass
class Batch:
    input_ids: Any  # LongTensor [rows, length]
    labels: Any
    attention_mask: Any | None  # None when packed (position_ids carry the boundaries)
    position_ids: Any | None
    tokens: int  # real (non-padding) tokens
    learned: int  # tokens in the loss


def make_batches(
    examples: Sequence[Tokenized], config: TrainConfig, epoch: int, pad_id: int, shuffle: bool = True
) -> list[Batch]:
    """The micro-batches of one epoch, in an order fixed by ``seed`` and ``epoch``."""
    rng = random.Random(config.seed * 1_000_003 + epoch)
    order = list(range(len(examples)))
    if shuffle:
        rng.shuffle(order)
    if config.packing:
        rows = _pack(examples, order, config.max_seq_length)
        groups = [rows[i : i + config.batch_size] for i in range(0, len(rows), config.batch_size)]
        return [_packed_batch(group, pad_id) for group in groups]
    window = config.batch_size * 64
    grouped: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -len(examples[i].input_ids))
        grouped.extend(chunk[i : i + config.batch_size] for i in range(0, len(chunk), config.batch_size))
    if shuffle:
        rng.shuffle(grouped)
    return [_padded_batch([examples[i] for i in group], pad_id) for group in grouped]


def _pack(examples: Sequence[Tokenized], order: list[int], capacity: int) -> list[list[Tokenized]]:
    """First-fit decreasing within windows of the shuffled order: rows nearly full, order still random."""
    rows: list[list[Tokenized]] = []
    window = 256
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -len(examples[i].input_ids))
        bins: list[tuple[int, list[Tokenized]]] = []
        for index in chunk:
            size = len(examples[index].input_ids)
            for slot, (used, row) in enumerate(bins):
                if used + size <= capacity:
                    row.append(examples[index])
                    bins[slot] = (used + size, row)
                    break
            else:
                bins.append((size, [examples[index]]))
        rows.extend(row for _, row in bins)
    return rows


def _padded_batch(group: Sequence[Tokenized], pad_id: int) -> Batch:
    import torch

    width = max(len(e.input_ids) for e in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    labels = torch.full((len(group), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for row, example in enumerate(group):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    tokens = int(mask.sum())
    return Batch(ids, labels, mask, None, tokens, sum(e.learned for e in group))


def _packed_batch(rows: Sequence[Sequence[Tokenized]], pad_id: int) -> Batch:
    """Rows of packed conversations. Labels never cross a boundary: each conversation's first position
    predicts nothing from its predecessor because the shift happens inside each conversation."""
    import torch

    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    tokens = learned = 0
    for r, row in enumerate(rows):
        at = 0
        for example in row:
            n = len(example.input_ids)
            ids[r, at : at + n] = torch.tensor(example.input_ids)
            labels[r, at : at + n] = torch.tensor(example.labels)
            labels[r, at] = IGNORE  # the first token of a conversation is never predicted
            positions[r, at : at + n] = torch.arange(n)
            at += n
            tokens += n
            learned += example.learned
        if at < width:  # padding continues the last conversation's positions, masked out of the loss
            last = int(positions[r, at - 1])
            positions[r, at:] = torch.arange(last + 1, last + 1 + width - at)
    return Batch(ids, labels, None, positions, tokens, learned)


# ---------------------------------------------------------------------------------------------- model


def _device(config: TrainConfig) -> str | None:
    """The device for ``Accelerator(cpu=...)``: "cpu" when asked or when there is no GPU (accelerate then runs
    several processes over gloo), None to let accelerate place each process on its GPU."""
    import torch

    if config.device == "auto":
        return None if torch.cuda.is_available() else "cpu"
    if config.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    return config.device


def build_model(base_path: Path, config: TrainConfig, dtype: Any) -> Any:
    """The base causal LM with fresh LoRA layers; only they are trainable."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    # peft asks transformers the deprecated way; nothing for a user to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    model: Any = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(model, lora)


def causal_lm_loss(model: Any) -> Any:
    """A module whose forward is the summed cross-entropy over a batch's learned tokens.

    It wraps the peft model so that ``accelerator.prepare`` (DDP) wraps the whole loss computation:
    gradients are synchronised even when the LM head is applied by hand. ``selected``: the head runs on
    learned positions only, verified once against the model's own forward by ``verify``."""
    import torch
    import torch.nn.functional as F

    class CausalLMLoss(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            self.selected = False

        def verify(self, batch: Batch, atol: float = 1e-4) -> bool:
            base = self.model.get_base_model()
            if base.get_output_embeddings() is None or not hasattr(base, "get_decoder"):
                return False
            with torch.no_grad():
                self.selected = False
                full = self(*_tensors(batch), reduce=False)
                self.selected = True
                try:
                    fast = self(*_tensors(batch), reduce=False)
                except Exception:
                    fast = None
            self.selected = (
                fast is not None and fast.shape == full.shape and bool(torch.allclose(fast, full, atol=atol))
            )
            return self.selected

        def forward(
            self, input_ids: Any, labels: Any, attention_mask: Any = None, position_ids: Any = None, reduce: bool = True
        ) -> Any:
            inputs: dict[str, Any] = {"input_ids": input_ids, "use_cache": False}
            if attention_mask is not None:
                inputs["attention_mask"] = attention_mask
            if position_ids is not None:
                inputs["position_ids"] = position_ids
            targets = labels[:, 1:]
            keep = targets != IGNORE
            if self.selected:
                base = self.model.get_base_model()
                hidden = base.get_decoder()(**inputs).last_hidden_state[:, :-1]
                logits = base.get_output_embeddings()(hidden[keep]).float()
            else:
                logits = self.model(**inputs).logits[:, :-1].float()[keep]
            return F.cross_entropy(logits, targets[keep], reduction="sum" if reduce else "none")

    return CausalLMLoss(model)


def _tensors(batch: Batch) -> tuple[Any, Any, Any, Any]:
    return batch.input_ids, batch.labels, batch.attention_mask, batch.position_ids


def _lr_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = int(round(config.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.lr_scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if config.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# ---------------------------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    output: Path
    steps: int
    epochs_done: float
    train_tokens: int  # real tokens processed (all processes)
    learned_tokens: int
    train_seconds: float  # time in optimizer steps, evaluation excluded
    best_val_loss: float | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None  # the peft model as it ended (its last step, which need not be the best)

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds else 0.0


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed (all processes)
    base_val_loss: float | None = None
    best_val_loss: float | None = None
    bad_evals: int = 0
    train_tokens: int = 0
    learned_tokens: int = 0
    train_seconds: float = 0.0


StepCallback = Callable[[dict[str, Any]], None]


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    home: Path | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Fine-tune ``config.model`` with LoRA on ``config.train``; write the run to ``config.output``.

    ``on_step`` sees each logged step's record (tests use it to interrupt a run)."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from tunedesk.prepare import ensure_transformers
    from tunedesk.settings import load_settings

    hf_logging.disable_progress_bar()
    out = config.output
    existing = read_manifest(out) if out.is_dir() else None
    if existing is not None and not resume:
        raise ConfigError(
            f"{out} already holds a finished run; pass --resume to continue it or choose another --output"
        )
    checkpoint = _latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise ConfigError(f"--resume: {out} has no checkpoint to resume from (checkpoints/step-N)")
    if checkpoint is None and out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; pass --resume to continue the run in it or choose another --output")

    device = _device(config)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if _on_cuda(device) else "no")
    main = accelerator.is_main_process
    with accelerator.main_process_first():  # one process converts the base model, the others wait
        base_path = ensure_transformers(config.model, home or load_settings().home)
    # seeded after the conversion, which may draw random numbers (a random-initialised test model does), so a
    # run on a fresh home and a rerun with the same seed start from the same LoRA weights
    _seed_everything(config.seed + accelerator.process_index)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{config.model}: assistant-only loss needs a fast tokenizer (offsets); this one is slow")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set, train_summary = load_split(tokenizer, config.train, config.max_seq_length)
    val_set, val_summary = (
        load_split(tokenizer, config.validation, config.max_seq_length) if config.validation else ([], None)
    )

    dtype = torch.bfloat16 if accelerator.device.type == "cuda" else torch.float32
    model = build_model(base_path, config, dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    world = accelerator.num_processes
    per_step = world * config.gradient_accumulation_steps  # micro-batches per optimizer step
    batches_per_epoch = len(make_batches(train_set, config, 0, pad_id))
    steps_per_epoch = max(1, batches_per_epoch // per_step)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config, total_steps))
    loss_module = causal_lm_loss(model)
    fast_head = loss_module.verify(make_batches(train_set, config, 0, pad_id)[0])
    loss_fn, optimizer = accelerator.prepare(loss_module, optimizer)
    peft_model = model

    state = _State()
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, peft_model, optimizer, scheduler, accelerator.process_index)
    elif main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out / "config.yaml", config.to_yaml())
    metrics_path = out / "metrics.jsonl"
    if main:
        _truncate_metrics(metrics_path, state.step)
    accelerator.wait_for_everyone()

    def log(record: dict[str, Any]) -> None:
        if main:
            with metrics_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    if main and state.step == 0:
        log({"event": "start", "fast_lm_head": fast_head, "processes": world, "total_steps": total_steps})

    def evaluate() -> dict[str, Any]:
        loss_fn.eval()
        loss_sum = torch.zeros((), device=accelerator.device, dtype=torch.float64)
        count = torch.zeros((), device=accelerator.device, dtype=torch.float64)
        eval_batches = make_batches(val_set, config, 0, pad_id, shuffle=False)
        with torch.no_grad(), accelerator.autocast():
            for batch in eval_batches[accelerator.process_index :: world]:
                loss_sum += loss_fn(*_tensors(_to(batch, accelerator.device))).double()
                count += batch.learned
        loss_sum, count = accelerator.reduce(loss_sum, "sum"), accelerator.reduce(count, "sum")
        loss_fn.train()
        val_loss = float(loss_sum / count)
        return {"step": state.step, "val_loss": round(val_loss, 5), "val_perplexity": round(math.exp(val_loss), 3)}

    def save_best(record: dict[str, Any]) -> None:
        """Keep the adapter with the lowest validation loss; the step-0 evaluation is the baseline."""
        if state.step == 0:
            state.base_val_loss = record["val_loss"]
            return
        improved = (
            state.best_val_loss is None or record["val_loss"] < state.best_val_loss - config.early_stopping_min_delta
        )
        if improved:
            state.best_val_loss, state.bad_evals = record["val_loss"], 0
            if main:
                _save_adapter(peft_model, tokenizer, out / "adapter")
        else:
            state.bad_evals += 1
        record["best"] = improved

    stopped_early = False
    interrupted = False
    bar = tqdm(total=total_steps, initial=state.step, desc="lora", unit="step", disable=not (progress and main))
    previous_handler = signal.getsignal(signal.SIGTERM)
    if main:
        with contextlib.suppress(ValueError):  # only the main thread may set handlers
            signal.signal(signal.SIGTERM, _raise_interrupt)
    loss_fn.train()
    try:
        if val_set and config.eval_at_start and state.step == 0:
            record = evaluate()
            log({"event": "eval", **record})
            save_best(record)
        window_loss = window_tokens = 0.0
        window_started = state.train_seconds
        while state.step < total_steps:
            batches = make_batches(train_set, config, state.epoch, pad_id)
            while state.batch_in_epoch + per_step <= len(batches) and state.step < total_steps:
                started = time.perf_counter()
                group = batches[state.batch_in_epoch : state.batch_in_epoch + per_step]
                mine = group[accelerator.process_index :: world]
                learned = sum(b.learned for b in mine)
                step_loss = 0.0
                for index, batch in enumerate(mine):
                    last = index == len(mine) - 1
                    sync = contextlib.nullcontext() if last else accelerator.no_sync(loss_fn)
                    with sync, accelerator.autocast():
                        loss = loss_fn(*_tensors(_to(batch, accelerator.device))) / learned
                        accelerator.backward(loss)
                    step_loss += float(loss.detach())
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.batch_in_epoch += per_step
                tokens = sum(b.tokens for b in group)
                state.train_tokens += tokens
                state.learned_tokens += sum(b.learned for b in group)
                state.train_seconds += time.perf_counter() - started
                window_loss += step_loss
                window_tokens += tokens
                bar.update(1)
                if state.step % config.log_every == 0 or state.step == total_steps:
                    elapsed = state.train_seconds - window_started
                    steps = state.step % config.log_every or config.log_every
                    record = {
                        "event": "train",
                        "step": state.step,
                        "epoch": round(state.epoch + state.batch_in_epoch / len(batches), 4),
                        "loss": round(window_loss / steps, 5),
                        "lr": scheduler.get_last_lr()[0],
                        "tokens_per_s": round(window_tokens / elapsed, 1),
                        "tokens": state.train_tokens,
                    }
                    log(record)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                    if on_step is not None:
                        on_step(record)
                    window_loss = window_tokens = 0.0
                    window_started = state.train_seconds
                evaluating = val_set and config.eval_every and state.step % config.eval_every == 0
                if evaluating:
                    record = evaluate()
                    save_best(record)
                    log({"event": "eval", **record})
                    loss, perplexity = record["val_loss"], record["val_perplexity"]
                    bar.write(f"step {state.step}: validation loss {loss:.4f}, perplexity {perplexity:.2f}")
                if state.step % config.save_every == 0 and state.step < total_steps:
                    _save_checkpoint(out, state, accelerator, peft_model, optimizer, scheduler, config.keep_checkpoints)
                patience = config.early_stopping_patience
                if evaluating and patience is not None and state.bad_evals >= patience:
                    stopped_early = True
                    break
            if stopped_early:
                break
            if state.step < total_steps:
                state.epoch += 1
                state.batch_in_epoch = 0
    except KeyboardInterrupt:
        interrupted = True
        _save_checkpoint(out, state, accelerator, peft_model, optimizer, scheduler, config.keep_checkpoints)
        raise
    finally:
        bar.close()
        if main:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous_handler)
        if interrupted and main:
            print(f"interrupted: checkpoint saved at step {state.step}; continue with --resume")

    if val_set and (not config.eval_every or state.step % config.eval_every) and not stopped_early:
        record = evaluate()
        save_best(record)
        log({"event": "eval", **record})
    if main:
        if not (out / "adapter").is_dir():  # no validation set, or no evaluation after training
            _save_adapter(peft_model, tokenizer, out / "adapter")
        history = _read_metrics(metrics_path)
        _plot(history, out / "loss.png")
        manifest = {
            "format": 1,
            "kind": "lora",
            "name": out.name,
            "base": config.model,
            "base_path": str(base_path),
            "adapter": "adapter",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tunedesk_version": __version__,
            "config": config.model_dump(mode="json"),
            "data": {"train": train_summary.as_dict(), "validation": val_summary.as_dict() if val_summary else None},
            "steps": state.step,
            "epochs": round(state.epoch + state.batch_in_epoch / max(1, batches_per_epoch), 3),
            "stopped_early": stopped_early,
            "base_val_loss": state.base_val_loss,
            "base_val_perplexity": round(math.exp(state.base_val_loss), 3) if state.base_val_loss is not None else None,
            "best_val_loss": state.best_val_loss,
            "best_val_perplexity": round(math.exp(state.best_val_loss), 3) if state.best_val_loss is not None else None,
            "train_tokens": state.train_tokens,
            "train_seconds": round(state.train_seconds, 2),
            "tokens_per_s": round(state.train_tokens / state.train_seconds, 1) if state.train_seconds else None,
            "processes": world,
            "device": str(accelerator.device),
        }
        write_text_atomically(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    accelerator.wait_for_everyone()
    return TrainResult(
        output=out,
        steps=state.step,
        epochs_done=state.epoch + state.batch_in_epoch / max(1, batches_per_epoch),
        train_tokens=state.train_tokens,
        learned_tokens=state.learned_tokens,
        train_seconds=state.train_seconds,
        best_val_loss=state.best_val_loss,
        stopped_early=stopped_early,
        history=_read_metrics(metrics_path) if main else [],
        model=peft_model,
    )


def _on_cuda(device: str | None) -> bool:
    import torch

    return device != "cpu" and torch.cuda.is_available()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _to(batch: Batch, device: Any) -> Batch:
    def move(tensor: Any) -> Any:
        return None if tensor is None else tensor.to(device, non_blocking=True)

    return Batch(
        move(batch.input_ids),
        move(batch.labels),
        move(batch.attention_mask),
        move(batch.position_ids),
        batch.tokens,
        batch.learned,
    )


def _save_adapter(model: Any, tokenizer: Any, target: Path) -> None:
    with replacing_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted(
        (p for p in (out / "checkpoints").glob("step-*") if (p / "state.json").is_file()),
        key=lambda p: int(p.name.split("-")[1]),
    )
    return found[-1] if found else None


def _save_checkpoint(
    out: Path, state: _State, accelerator: Any, model: Any, optimizer: Any, scheduler: Any, keep: int
) -> None:
    """Everything an exact resume needs, written whole: a half-written checkpoint never exists."""
    import torch

    target = out / "checkpoints" / f"step-{state.step}"
    rank = accelerator.process_index
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with replacing_directory(target) as tmp:
            model.save_pretrained(tmp / "adapter")
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            (tmp / "state.json").write_text(json.dumps(state.__dict__, indent=2))
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), target / f"rng-{rank}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        older = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]
        for stale in older:
            shutil.rmtree(stale, ignore_errors=True)


def _load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, rank: int) -> _State:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(path / "adapter" / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, weights)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = path / f"rng-{rank}.pt"
    if rng.is_file():
        _set_rng_state(torch.load(rng, weights_only=False))
    return _State(**json.loads((path / "state.json").read_text()))


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop records written after the checkpoint: they will be written again."""
    if not path.is_file():
        return
    kept = [r for r in _read_metrics(path) if r.get("step", 0) <= step and (step > 0 or r.get("event") != "eval")]
    write_text_atomically(path, "".join(json.dumps(r) + "\n" for r in kept))


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plot(history: list[dict[str, Any]], target: Path) -> None:
    """Training loss and validation loss against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in history if r.get("event") == "train"]
    val = [(r["step"], r["val_loss"]) for r in history if r.get("event") == "eval"]
    figure, axes = plt.subplots(figsize=(7, 4))
    if train:
        axes.plot(*zip(*train, strict=True), label="training loss")
    if val:
        axes.plot(*zip(*val, strict=True), marker="o", label="validation loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy (assistant tokens)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    tmp = target.with_name(f".{target.name}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    os.replace(tmp, target)
