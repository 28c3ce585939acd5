"""Product-image captioning: train an image encoder feeding a text decoder on fashion-mnist photos.

The model is a transformers ``VisionEncoderDecoderModel``: a ViT encoder, a GPT-2 decoder with
cross-attention to it. That is the architecture of ``nlpconnect/vit-gpt2-image-captioning``, so a hub
checkpoint and a run of this recipe load through the same code (``tunedesk.tasks.captioning``).
(``Salesforce/blip-image-captioning-base`` loads through it too, for captioning; it is a different class,
``BlipForConditionalGeneration``, whose BERT-style decoder and processor this recipe does not fine-tune.)

Decisions:
- **Offline, from scratch.** No pre-trained vision model installs offline, so by default (``model: null``)
  both halves are random-initialised from small configs sized for fashion-mnist: 28x28 grayscale photos
  (one channel, not replicated to RGB: it would triple the first layer's work for nothing), 7x7 patches
  (16 patches + CLS: half the step time of 4x4 patches on CPU), ``hidden_size`` 128.
  ``model: <hub id or directory>`` fine-tunes a pre-trained VisionEncoderDecoder instead, through its own
  image processor and tokenizer.
- **Tokenizer.** No hub tokenizer is available offline, and the captions use ~100 words, so a word-level
  ``tokenizers`` model is trained on the training captions: words split at spaces (Metaspace, so decoding
  restores them) with ``, . : ; ! ?`` as tokens of their own and hyphenated words whole. It is saved as a
  ``PreTrainedTokenizerFast`` in ``model/``, so ``AutoTokenizer.from_pretrained`` loads it.
- **Data.** Captions are ``data.captioning.describe(image, label)``. Training and validation photos come
  from fashion-mnist ``train`` only (a seeded permutation: the first ``validation_images`` validate, the next
  ``train_images`` train); ``t10k`` is left to evaluation (``eval/suites/captioning.yaml``) and never read here.
  The model reads photos as photographed (ink negated back, ``tunedesk.tasks.captioning.photo_tensor``).
- **Loop.** Plain PyTorch: AdamW, linear warm-up then cosine decay, gradient clipping, a tqdm bar with the
  running loss. After each epoch: validation loss and the product-noun accuracy of greedy captions of
  ``eval_images`` validation photos, in ``metrics.jsonl``. The last epoch's weights are saved.
- **Run directory**, built in a temporary sibling and renamed into place (``tunedesk.files.replacing_directory``),
  so an interrupted run never leaves a half-written one: ``model/`` (weights, configs, tokenizer),
  ``config.yaml``, ``metrics.jsonl`` and the manifest (``tunedesk.models.MANIFEST``, ``"kind": "captioning"``)
  with the data's sha256, the metrics and the training time.

Cost, measured with the shipped config (``finetune/configs/captioning-fashion.yaml``: 50,000 photos, 4 epochs,
batch 64, 1.36M parameters) on a 2-core CPU shared with two other trainings, ``OMP_NUM_THREADS=1``: 15 minutes
wall clock (about 2 to caption the photos, 12.8 to train), 0.8 GB resident; 86.6% of validation captions name the
right product.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic import ConfigDict, Field, model_validator

from finetune.config import RecipeConfig
from tunedesk import __version__
from tunedesk.console import err, friendly_errors
from tunedesk.errors import ConfigError
from tunedesk.files import replacing_directory, write_text_atomically
from tunedesk.models import MANIFEST
from tunedesk.tasks import captioning as infer

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
IGNORE = -100
TRAIN_SPLIT_SIZE = 60_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


class CaptionConfig(RecipeConfig):
    """A captioning training run; every field can be set in the YAML file."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="null: train from scratch; else a VisionEncoderDecoder to fine-tune.")
    output: Path = Field(Path("runs/captioning-fashion"), description="Run directory.")
    fashion_mnist_dir: Path | None = Field(
        None, description="IDX files; default $TUNEDESK_FASHION_MNIST_DIR or Debian's."
    )
    train_images: int = Field(50_000, ge=1, description="Photos from fashion-mnist train to train on.")
    validation_images: int = Field(1000, ge=1, description="Other photos from fashion-mnist train to validate on.")
    eval_images: int = Field(500, ge=0, description="Validation photos captioned after each epoch (noun accuracy).")
    # architecture of a from-scratch model
    patch_size: int = Field(7, ge=1, description="ViT patch side in pixels; must divide 28.")
    hidden_size: int = Field(128, ge=8, description="Width of encoder and decoder.")
    encoder_layers: int = Field(4, ge=1)
    decoder_layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    max_caption_tokens: int = Field(32, ge=4, description="Longer captions are cut; also the decoder's positions.")
    # optimisation
    epochs: int = Field(4, ge=1)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (overrides epochs).")
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: int = 0
    device: str = Field("auto", description="auto, cpu or cuda.")

    @model_validator(mode="after")
    def _check(self) -> CaptionConfig:
        if self.train_images + self.validation_images > TRAIN_SPLIT_SIZE:
            raise ValueError(
                f"train_images + validation_images = {self.train_images + self.validation_images} is more than "
                f"the {TRAIN_SPLIT_SIZE} photos of fashion-mnist train (t10k is for evaluation only)"
            )
        if infer.IMAGE_SIZE % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} does not divide the image side {infer.IMAGE_SIZE}")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of heads {self.heads}")
        return self


# --- data ----------------------------------------------------------------------------------------------


@dataclass
class CaptionSet:
    """Photos of one split's selection: ink arrays, labels, captions, and which indices of the split they are."""

    indices: np.ndarray
    ink: np.ndarray
    labels: np.ndarray
    captions: list[str]

    def sha256(self) -> str:
        digest = hashlib.sha256(self.indices.astype("<i8").tobytes())
        digest.update(np.ascontiguousarray(self.ink).tobytes())
        digest.update("\n".join(self.captions).encode())
        return digest.hexdigest()


def select_photos(config: CaptionConfig, progress: bool = True) -> tuple[CaptionSet, CaptionSet]:
    """``(train, validation)`` from fashion-mnist train, disjoint, captioned with ``describe``."""
    from tqdm.auto import tqdm

    from data.captioning import describe, load_fashion_mnist

    images, labels = load_fashion_mnist("train", config.fashion_mnist_dir)
    order = np.random.default_rng(config.seed).permutation(len(images))
    chosen = {
        "validation": order[: config.validation_images],
        "train": order[config.validation_images : config.validation_images + config.train_images],
    }
    sets = {}
    for name, indices in chosen.items():
        captions = [
            describe(images[i], int(labels[i]))
            for i in tqdm(indices, desc=f"captioning {name} photos", unit="photo", disable=not progress)
        ]
        sets[name] = CaptionSet(indices, images[indices], labels[indices].astype(np.int64), captions)
    return sets["train"], sets["validation"]


def train_tokenizer(captions: Sequence[str]) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` fitted on ``captions`` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Split(Regex(r"[,.:;!?]"), "isolated")]
    )
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(captions, trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS)))
    pad, bos, eos, unk = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk
    )


def label_matrix(tokenizer: Any, captions: Sequence[str], max_tokens: int) -> Any:
    """Token ids + EOS per caption, cut to ``max_tokens``, padded with ``IGNORE`` (the loss skips it)."""
    import torch

    rows = [ids[: max_tokens - 1] + [tokenizer.eos_token_id] for ids in tokenizer(list(captions)).input_ids]
    matrix = torch.full((len(rows), max(len(row) for row in rows)), IGNORE, dtype=torch.long)
    for index, row in enumerate(rows):
        matrix[index, : len(row)] = torch.tensor(row)
    return matrix


# --- model ---------------------------------------------------------------------------------------------


def build_model(config: CaptionConfig, tokenizer: Any) -> Any:
    """A random-initialised ViT encoder + GPT-2 decoder with cross-attention, sized by ``config``."""
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    encoder = ViTConfig(
        image_size=infer.IMAGE_SIZE,
        patch_size=config.patch_size,
        num_channels=1,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.encoder_layers,
        num_attention_heads=config.heads,
        intermediate_size=4 * config.hidden_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    decoder = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.max_caption_tokens + 1,
        n_embd=config.hidden_size,
        n_layer=config.decoder_layers,
        n_head=config.heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = VisionEncoderDecoderModel(config=VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    _set_special_tokens(model, tokenizer)
    return model


def _set_special_tokens(model: Any, tokenizer: Any) -> None:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for target in (model.config, model.generation_config):
        target.decoder_start_token_id = start
        target.pad_token_id = pad
        target.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = start


def _starting_point(config: CaptionConfig, train: CaptionSet, device: str) -> infer.Captioner:
    """The captioner training starts from: a fresh small model, or the pre-trained ``config.model``."""
    if config.model is None:
        tokenizer = train_tokenizer(train.captions)
        return infer.Captioner(build_model(config, tokenizer).to(device), tokenizer, None, device, {"init": "scratch"})
    captioner = infer.load_captioner(config.model, device)
    if captioner.model.config.model_type != "vision-encoder-decoder":
        raise ConfigError(
            f"model: {config.model} is a '{captioner.model.config.model_type}' model; this recipe fine-tunes "
            "VisionEncoderDecoder models (e.g. nlpconnect/vit-gpt2-image-captioning)"
        )
    _set_special_tokens(captioner.model, captioner.tokenizer)
    captioner.description = {"init": config.model}
    return captioner


# --- training ------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    output: Path
    manifest: dict[str, Any]


def _pixels(captioner: infer.Captioner, ink: np.ndarray) -> Any:
    if captioner.grayscale:
        return infer.photo_tensor(infer.ink_to_photo(ink)).to(captioner.device)
    from PIL import Image

    return captioner.pixel_values([Image.fromarray(photo) for photo in infer.ink_to_photo(ink)])


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _validate(captioner: infer.Captioner, data: CaptionSet, labels: Any, config: CaptionConfig) -> dict[str, float]:
    import torch

    model = captioner.model
    model.eval()
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(data.captions), 256):
            batch = labels[start : start + 256].to(captioner.device)
            loss = model(pixel_values=_pixels(captioner, data.ink[start : start + 256]), labels=batch).loss
            count = int((batch != IGNORE).sum())
            total, tokens = total + float(loss) * count, tokens + count
    metrics = {"validation_loss": total / max(1, tokens)}
    if config.eval_images:
        shown = min(config.eval_images, len(data.captions))
        captions = [
            text
            for start in range(0, shown, 256)
            for text in infer.caption_ink(captioner, data.ink[start : min(shown, start + 256)])
        ]
        right = sum(infer.product_noun(text) == int(label) for text, label in zip(captions, data.labels, strict=False))
        metrics["validation_noun_accuracy"] = right / shown
    model.train()
    return metrics


def train(config: CaptionConfig, progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train a captioner per ``config`` and write its run directory; returns where and the manifest."""
    import torch
    from tqdm.auto import tqdm

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    train_set, validation_set = select_photos(config, progress)
    captioner = _starting_point(config, train_set, device)
    model, tokenizer = captioner.model, captioner.tokenizer
    train_labels = label_matrix(tokenizer, train_set.captions, config.max_caption_tokens)
    validation_labels = label_matrix(tokenizer, validation_set.captions, config.max_caption_tokens)
    steps_per_epoch = math.ceil(len(train_set.captions) / config.batch_size)
    total = config.max_steps or steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = max(1, int(config.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _schedule(step, total, warmup))
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    started, step, epoch = time.perf_counter(), 0, 0
    model.train()
    bar = tqdm(total=total, desc="captioning", unit="step", disable=not progress)
    running = None
    while step < total:
        epoch += 1
        order = torch.randperm(len(train_set.captions), generator=generator)
        for start in range(0, len(order), config.batch_size):
            if step >= total:
                break
            index = order[start : start + config.batch_size]
            batch_labels = train_labels[index]
            batch_labels = batch_labels[:, : int((batch_labels != IGNORE).sum(1).max())].to(device)
            loss = model(pixel_values=_pixels(captioner, train_set.ink[index.numpy()]), labels=batch_labels).loss
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            value = loss.item()
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", epoch=epoch)
        row = {"epoch": epoch, "step": step, "train_loss": running, "seconds": round(time.perf_counter() - started, 1)}
        row |= _validate(captioner, validation_set, validation_labels, config)
        history.append(row)
        log(json.dumps(row))
    bar.close()
    seconds = time.perf_counter() - started
    return TrainResult(config.output, _write_run(config, captioner, train_set, validation_set, history, seconds))


def _write_run(
    config: CaptionConfig,
    captioner: infer.Captioner,
    train_set: CaptionSet,
    validation_set: CaptionSet,
    history: list[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    last = history[-1]
    manifest = {
        "kind": infer.RUN_KIND,
        "name": config.output.name,
        "model": infer.MODEL_SUBDIR,
        "init": captioner.description.get("init"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tunedesk_version": __version__,
        "parameters": sum(p.numel() for p in captioner.model.parameters()),
        "train_seconds": round(seconds, 1),
        "epochs": last["epoch"],
        "steps": last["step"],
        "metrics": {k: v for k, v in last.items() if k not in ("epoch", "step", "seconds")},
        "data": {
            name: {"source": "fashion-mnist", "split": "train", "images": len(part.captions), "sha256": part.sha256()}
            for name, part in (("train", train_set), ("validation", validation_set))
        },
    }
    with replacing_directory(config.output) as tmp:
        captioner.model.save_pretrained(tmp / infer.MODEL_SUBDIR)
        captioner.tokenizer.save_pretrained(tmp / infer.MODEL_SUBDIR)
        if captioner.processor is not None:
            captioner.processor.save_pretrained(tmp / infer.MODEL_SUBDIR)
        (tmp / "config.yaml").write_text(config.to_yaml())
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # last: a run without it is incomplete
    return manifest


# --- predict -------------------------------------------------------------------------------------------


def _image_inputs(inputs: Sequence[Path]) -> list[tuple[str, Callable[[], Any]]]:
    """``(reference, opener)`` for each image file, each image in a directory, each line of a captions JSONL.

    Files are read through the upload check (type by content, size limits), like the chat's uploads."""
    from data.captioning import open_image, read_captions

    def upload(path: Path) -> Callable[[], Any]:
        return lambda: infer.check_upload(path.read_bytes(), str(path))

    def stored(example: Any, base: Path) -> Callable[[], Any]:
        return lambda: open_image(example, base)

    found: list[tuple[str, Callable[[], Any]]] = []
    for path in inputs:
        if path.is_file() and path.suffix == ".jsonl":
            found += [(ex.image, stored(ex, path.parent)) for ex in read_captions(path)]
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(str(p), upload(p)) for p in files]
        elif path.is_file():
            found.append((str(path), upload(path)))
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return found


app = typer.Typer(help="Product-image captioning: train on fashion-mnist photos, caption images.", no_args_is_help=True)


@app.command("train")
@friendly_errors
def train_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="YAML recipe, e.g. finetune/configs/captioning-fashion.yaml.")
    ],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (overrides the config).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="VisionEncoderDecoder to fine-tune.")] = None,
    train_images: Annotated[int | None, typer.Option(help="Training photos (overrides the config).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (overrides the config).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (overrides the config).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (overrides the config).")] = None,
) -> None:
    """Train a captioner on fashion-mnist photos; writes a run directory that predict, eval and the chat load.

    Example: tunedesk captioning train --config finetune/configs/captioning-fashion.yaml"""
    overrides = {"output": output, "model": model, "train_images": train_images, "epochs": epochs}
    overrides |= {"max_steps": max_steps, "batch_size": batch_size, "seed": seed}
    settings = CaptionConfig.from_yaml(config, **overrides)
    result = train(settings, log=lambda line: err.print(line, highlight=False))
    metrics = result.manifest["metrics"]
    err.print(
        f"wrote {result.output} in {result.manifest['train_seconds']:.0f} s; {json.dumps(metrics)}", highlight=False
    )


@app.command("predict")
@friendly_errors
def predict_command(
    model: Annotated[str, typer.Argument(help="A captioning run directory, a transformers directory or a hub id.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files, directories of images, or captions JSONL files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL to write: image, caption (and reference).")],
    beams: Annotated[int, typer.Option(help="Beam width; 1 is greedy.")] = 1,
) -> None:
    """Caption images in a batch and write one JSON line per image.

    Example: tunedesk captioning predict runs/captioning-fashion data/samples/captioning/photos.jsonl -o out.jsonl"""
    from tqdm.auto import tqdm

    captioner = infer.load_captioner(model)
    lines = []
    for reference, opener in tqdm(_image_inputs(inputs), desc="captioning", unit="image"):
        text = infer.caption(captioner, opener(), num_beams=beams)
        lines.append(json.dumps({"image": reference, "caption": text}) + "\n")
    write_text_atomically(output, "".join(lines))
    err.print(f"wrote {len(lines)} captions to {output}", highlight=False)
