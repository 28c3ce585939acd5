"""Evaluation of product-image captioners: BLEU-4, ROUGE-L, CIDEr-D and the product noun's class accuracy.

Model kinds:
- ``captioner``: a run directory of ``tunedesk captioning train``, a transformers directory or a hub id
  (``nlpconnect/vit-gpt2-image-captioning``), loaded by ``tunedesk.tasks.captioning``; ``settings.beams``
  (default: the suite's ``options.beams``, 1 = greedy).
- ``nearest-neighbour``: the caption of the closest training photo in pixel space (Euclidean distance of
  the framed 28x28 photos), the retrieval baseline of Devlin et al. 2015, *Exploring Nearest Neighbor
  Approaches for Image Captioning*. ``settings.train_images`` (default 10,000) photos of fashion-mnist
  *train* (seeded, ``settings.seed``) captioned with ``data.captioning.describe``: never t10k.

Metrics (names as they appear in the report):
- ``bleu``: corpus BLEU-4 (sacrebleu), ``rougeL``: mean ROUGE-L F1 (rouge-score), both through
  ``eval.metrics.score_text``, 0-100. When an image has several reference captions these two use the first.
- ``cider``: CIDEr-D (Vedantam et al. 2015, as coco-caption's ``Cider`` computes it) over all of an
  image's references: n-grams 1-4 of lowercased words (punctuation dropped, hyphenated words kept whole),
  tf-idf weights with document frequencies over the evaluated references, the candidate's counts clipped
  to the reference's, a Gaussian length penalty with sigma 6, averaged over n and references, times 10.
  (coco-caption measures length in bigrams, i.e. words - 1; the same difference except for empty captions.)
- ``noun_accuracy``: share of images whose caption's first product noun (``product_noun``: "top" and
  "T-shirt" are the T-shirt/top class, "trousers" Trouser, ...) is the image's true class: the fashion-mnist
  label for ``fashion-mnist:`` images, else the noun of the first reference. A caption naming no product
  counts as wrong. The report adds the confusion matrix of nouns (true class x noun found).

The examples are the unique images of ``dataset.path`` (a captions JSONL, ``data.captioning.read_captions``),
in file order; the shipped suite uses the 1,000 held-out t10k photos of ``data/samples/captioning``.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eval.metrics import Score, score_text
from eval.tasks import ModelResult, Progress, TaskExample, TaskModelSpec, TaskRun, TaskSuite
from tunedesk.errors import ConfigError, ModelNotFoundError, validation_problems
from tunedesk.tasks.captioning import FASHION_CLASSES, product_noun

MODEL_KINDS = ("captioner", "nearest-neighbour")
NO_NOUN = "(none)"
_WORD = r"[a-z0-9]+(?:[-'][a-z0-9]+)*"


class CaptionOptions(BaseModel):
    """The suite's ``options`` for captioning."""

    model_config = ConfigDict(extra="forbid")

    beams: int = Field(1, ge=1, description="Beam width for captioner models; 1 is greedy.")
    batch_size: int = Field(64, ge=1, description="Images per generate call.")
    max_new_tokens: int = Field(32, ge=1)
    gallery: int = Field(10, ge=0, description="Example images shown in the report with each model's caption.")


class NeighbourSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_images: int = Field(10_000, ge=1, le=60_000)
    seed: int = 0


class CaptionerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    beams: int | None = Field(None, ge=1)


# --- CIDEr-D -------------------------------------------------------------------------------------------


def _ngrams(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    import re

    words = re.findall(_WORD, text.lower())
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def _length(counts: Counter[tuple[str, ...]]) -> int:
    return sum(count for gram, count in counts.items() if len(gram) == 1)


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> Score:
    """CIDEr-D of each candidate against its references, and their mean (see the module docstring)."""
    if len(candidates) != len(references):
        raise ConfigError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if any(not refs for refs in references):
        raise ConfigError("every candidate needs at least one reference caption")
    cooked_refs = [[_ngrams(ref, n) for ref in refs] for refs in references]
    document_frequency: Counter[tuple[str, ...]] = Counter()
    for refs in cooked_refs:
        document_frequency.update({gram for ref in refs for gram in ref})
    log_images = math.log(len(candidates)) if candidates else 0.0

    def vector(counts: Counter[tuple[str, ...]]) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        weights: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        for gram, count in counts.items():
            weights[len(gram) - 1][gram] = count * (log_images - math.log(max(1.0, document_frequency[gram])))
        norms = [math.sqrt(sum(w * w for w in part.values())) for part in weights]
        return weights, norms, _length(counts)

    per_example = []
    for candidate, refs in zip(candidates, cooked_refs, strict=True):
        hyp, hyp_norms, hyp_length = vector(_ngrams(candidate, n))
        total = [0.0] * n
        for ref_counts in refs:
            ref, ref_norms, ref_length = vector(ref_counts)
            penalty = math.exp(-((hyp_length - ref_length) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(w, ref[k].get(g, 0.0)) * ref[k].get(g, 0.0) for g, w in hyp[k].items())
                if hyp_norms[k] and ref_norms[k]:
                    total[k] += dot / (hyp_norms[k] * ref_norms[k]) * penalty
        per_example.append(10.0 * sum(total) / n / len(refs))
    mean = sum(per_example) / len(per_example) if per_example else 0.0
    return Score("cider", mean, per_example, "higher", "mean")


# --- noun accuracy -------------------------------------------------------------------------------------


def noun_scores(predictions: Sequence[str], true_classes: Sequence[int]) -> tuple[Score, dict[str, Any]]:
    """``noun_accuracy`` and the confusion matrix of product nouns (rows: true class; columns: noun's class, none)."""
    found = [product_noun(text) for text in predictions]
    per_example = [float(noun == truth) for noun, truth in zip(found, true_classes, strict=True)]
    columns = [*FASHION_CLASSES, NO_NOUN]
    matrix = [[0] * len(columns) for _ in FASHION_CLASSES]
    for noun, truth in zip(found, true_classes, strict=True):
        matrix[truth][len(FASHION_CLASSES) if noun is None else noun] += 1
    per_class: dict[str, float | None] = {}
    for name, row, right in zip(FASHION_CLASSES, matrix, range(len(FASHION_CLASSES)), strict=True):
        per_class[name] = row[right] / sum(row) if sum(row) else None
    accuracy = sum(per_example) / len(per_example) if per_example else 0.0
    details = {"rows": list(FASHION_CLASSES), "columns": columns, "matrix": matrix, "per_class": per_class}
    return Score("noun_accuracy", accuracy, per_example, "higher", "mean"), details


# --- data ----------------------------------------------------------------------------------------------


@dataclass
class CaptionedImage:
    id: str
    image: str  # the reference as written in the file
    references: list[str]
    true_class: int | None
    photo: Any  # PIL image, as photographed


def read_images(path: Path, limit: int | None = None) -> list[CaptionedImage]:
    """The unique images of a captions JSONL, each with all its captions and its true class."""
    from data.captioning import load_fashion_mnist, open_image, read_captions

    if not path.is_file():
        raise ConfigError(f"{path}: no such captions file (dataset.path)")
    grouped: dict[str, CaptionedImage] = {}
    for example in read_captions(path):
        if example.image in grouped:
            grouped[example.image].references.append(example.caption)
            continue
        if limit is not None and len(grouped) >= limit:
            continue
        true_class = product_noun(example.caption)
        if example.image.startswith("fashion-mnist:"):
            _, split, index = example.image.split(":")
            true_class = int(load_fashion_mnist(split)[1][int(index)])
        photo = open_image(example, path.parent)
        grouped[example.image] = CaptionedImage(example.id, example.image, [example.caption], true_class, photo)
    if not grouped:
        raise ConfigError(f"{path}: no captioned images")
    return list(grouped.values())


# --- models --------------------------------------------------------------------------------------------


def _settings(model_class: type[BaseModel], spec: TaskModelSpec) -> Any:
    try:
        return model_class.model_validate(spec.settings)
    except ValidationError as exc:
        name, problem = validation_problems(exc)[0]
        raise ConfigError(f"models.{spec.name}.settings.{name}: {problem}") from None


def _caption_with_model(
    spec: TaskModelSpec, images: list[CaptionedImage], options: CaptionOptions, advance: Callable[[int], None]
) -> tuple[list[str], list[float], dict[str, Any]]:
    from tunedesk.tasks.captioning import caption_batch, load_captioner

    settings = _settings(CaptionerSettings, spec)
    if not spec.model:
        raise ConfigError(f"models.{spec.name}.model: a captioner needs a run directory or hub id")
    captioner = load_captioner(spec.model)
    beams = settings.beams or options.beams
    predictions: list[str] = []
    seconds: list[float] = []
    for start in range(0, len(images), options.batch_size):
        batch = [image.photo for image in images[start : start + options.batch_size]]
        began = time.perf_counter()
        predictions += caption_batch(captioner, batch, beams, options.max_new_tokens)
        seconds += [(time.perf_counter() - began) / len(batch)] * len(batch)
        advance(len(batch))
    return predictions, seconds, {**captioner.description, "beams": beams}


def _nearest_neighbour(
    spec: TaskModelSpec, images: list[CaptionedImage], advance: Callable[[int], None]
) -> tuple[list[str], list[float], dict[str, Any]]:
    from data.captioning import describe, load_fashion_mnist
    from tunedesk.tasks.captioning import frame_photo

    settings = _settings(NeighbourSettings, spec)
    train_images, train_labels = load_fashion_mnist("train")
    chosen = np.random.default_rng(settings.seed).permutation(len(train_images))[: settings.train_images]
    memory = train_images[chosen].reshape(len(chosen), -1).astype(np.float32)  # ink
    memory_norms = (memory**2).sum(axis=1)
    captions: dict[int, str] = {}
    predictions, seconds = [], []
    for image in images:
        began = time.perf_counter()
        query = (255.0 - frame_photo(image.photo).astype(np.float32)).reshape(-1)  # the photo as ink
        nearest = int(np.argmin(memory_norms - 2.0 * memory @ query))
        if nearest not in captions:
            index = int(chosen[nearest])
            captions[nearest] = describe(train_images[index], int(train_labels[index]))
        predictions.append(captions[nearest])
        seconds.append(time.perf_counter() - began)
        advance(1)
    description = {"kind": "nearest-neighbour", "train_split": "fashion-mnist train", **settings.model_dump()}
    return predictions, seconds, description


def _score(result: ModelResult, images: list[CaptionedImage]) -> None:
    first = [image.references[0] for image in images]
    text = score_text(["bleu", "rouge"], result.predictions, first)
    result.scores = {"bleu": text["bleu"], "rougeL": text["rougeL"]}
    result.scores["cider"] = cider_d(result.predictions, [image.references for image in images])
    known = [(i, image.true_class) for i, image in enumerate(images) if image.true_class is not None]
    accuracy, confusion = noun_scores([result.predictions[i] for i, _ in known], [truth for _, truth in known])
    if len(known) < len(images):  # per-example values only when every image has a class to check
        accuracy.per_example = []
    result.scores["noun_accuracy"] = accuracy
    result.details = {"noun_confusion": confusion, "images_with_class": len(known)}


def evaluate(suite: TaskSuite, progress: Progress | None = None) -> TaskRun:
    """Caption the suite's held-out images with each model and score the captions."""
    try:
        options = CaptionOptions.model_validate(suite.options)
    except ValidationError as exc:
        name, problem = validation_problems(exc)[0]
        raise ConfigError(f"options.{name}: {problem}") from None
    images = read_images(suite.dataset.path, suite.dataset.limit)
    results: list[ModelResult] = []
    skipped: dict[str, str] = {}
    for spec in suite.models:
        advance = progress(spec.name, len(images)) if progress else (lambda n: None)
        try:
            if spec.kind == "captioner":
                predictions, seconds, description = _caption_with_model(spec, images, options, advance)
            elif spec.kind == "nearest-neighbour":
                predictions, seconds, description = _nearest_neighbour(spec, images, advance)
            else:
                raise ConfigError(f"models.{spec.name}.kind: '{spec.kind}' is not one of {', '.join(MODEL_KINDS)}")
        except ModelNotFoundError as exc:
            if not spec.optional:
                raise
            skipped[spec.name] = str(exc)
            continue
        result = ModelResult(spec.name, spec.kind, description, predictions, seconds=seconds)
        result.failures = [None if text else "empty caption" for text in predictions]
        _score(result, images)
        results.append(result)
    examples = [TaskExample(image.id, image.image, image.references[0]) for image in images]
    run = TaskRun(examples, results, skipped, suite.dataset.path)
    run.sections = [confusion_section(results), gallery_section(images, results, options.gallery)]
    return run


# --- report sections -----------------------------------------------------------------------------------


def confusion_section(results: Sequence[ModelResult]) -> str:
    """Per model: the confusion matrix of product nouns as a plot and per-class accuracy as a table."""
    from eval.report import _plt, _png

    parts = ["<h2>Product noun: true class x noun in the caption</h2>"]
    for result in results:
        confusion = result.details.get("noun_confusion")
        if not confusion:
            continue
        plt = _plt()
        matrix = np.array(confusion["matrix"])
        figure, axis = plt.subplots(figsize=(7.5, 5.5))
        axis.imshow(matrix, cmap="Blues")
        axis.set_xticks(range(len(confusion["columns"])), confusion["columns"], rotation=45, ha="right", fontsize=8)
        axis.set_yticks(range(len(confusion["rows"])), confusion["rows"], fontsize=8)
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                colour = "white" if count > matrix.max() / 2 else "black"
                axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color=colour)
        axis.set_xlabel("noun found in the caption")
        axis.set_ylabel("true class")
        axis.set_title(f"{result.name}: noun accuracy {result.scores['noun_accuracy'].value:.3f}")
        cells = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{'' if value is None else f'{value:.3f}'}</td></tr>"
            for name, value in confusion["per_class"].items()
        )
        parts.append(
            f"<h3>{html.escape(result.name)}</h3>{_png(figure)}"
            f"<table><tr><th>class</th><th>noun accuracy</th></tr>{cells}</table>"
        )
    return "\n".join(parts)


def gallery_section(images: Sequence[CaptionedImage], results: Sequence[ModelResult], count: int) -> str:
    """A few images (one per true class first) with the reference and each model's caption."""
    import base64
    import io

    if not count or not results:
        return ""
    by_class: dict[int | None, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        by_class[image.true_class].append(index)
    shown = sorted({indices[0] for indices in by_class.values()})[:count]
    shown += [i for i in range(len(images)) if i not in shown][: max(0, count - len(shown))]
    rows = []
    for index in shown:
        buffer = io.BytesIO()
        photo = images[index].photo.convert("L")
        photo.resize((photo.width * 3, photo.height * 3) if photo.width <= 64 else photo.size).save(buffer, "PNG")
        source = base64.b64encode(buffer.getvalue()).decode()
        captions = "".join(
            f"<br><b>{html.escape(result.name)}</b>: {html.escape(result.predictions[index])}" for result in results
        )
        rows.append(
            f'<tr><td><img alt="{html.escape(images[index].image)}" src="data:image/png;base64,{source}"></td>'
            f"<td><b>reference</b>: {html.escape(images[index].references[0])}{captions}</td></tr>"
        )
    return f"<h2>Example captions</h2><table>{''.join(rows)}</table>"
