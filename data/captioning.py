"""Captioned product images: fashion-mnist photos captioned from what their pixels show, and the readers.

Image references (``CaptionExample.image``), four forms:
- a path relative to the captions file, or an absolute path;
- ``fashion-mnist:<split>:<index>``: photo ``index`` of Debian's dataset-fashion-mnist, split ``train``
  (60,000) or ``t10k`` (10,000);
- ``skimage:<filename>``: a sample photo shipped in the installed scikit-image's ``skimage/data``
  directory (``skimage:coffee.png``), so the sample needs no image copied into the repository.

Decisions:
- ``load_fashion_mnist`` parses the gzipped IDX files with numpy (magic numbers and sizes checked) and
  caches them per process as read-only arrays. The directory is the argument, else
  ``$TUNEDESK_FASHION_MNIST_DIR``, else ``FASHION_MNIST_DIR`` (read when called, never at import).
- Arrays are kept as stored: fashion-mnist negated the photos, so a pixel's value is its *ink*
  (0 = white background, 255 = black). ``describe`` takes that array; ``open_image`` negates it back so
  the product looks as photographed (dark garment on white).
- ``describe`` states only attributes it measured, each with a fixed threshold chosen by looking at
  t10k photos on either side of it; an attribute between thresholds is left unsaid rather than guessed.
  Its phrasing (one of four sentence shapes and the synonyms) follows from a hash of the pixels, so a
  caption is a pure function of ``(image, label)`` and captions are not all one template.

Measurements (``measure``), on the 28x28 ink array:
- object mask: ink >= 20; interior: the mask eroded once (4-neighbours), or the mask if that leaves < 10 px;
- ``darkness``: mean ink of the interior; ``contrast``: its standard deviation;
- ``edge_density``: share of 4-neighbour pairs inside the interior whose ink differs by > 40;
- ``aspect``: bounding-box width / height (fashion-mnist scaled each photo so its longest side spans 28 px);
- ``fill``: mask pixels / bounding-box area;
- ``mid_width``, ``hem_width``: row extent (leftmost to rightmost mask pixel) at 50% and 85% of the
  height, divided by the widest row;
- ``flare``: extent at 90% of the height / narrowest row between 20% and 60%;
- ``arch``: the highest the silhouette's bottom edge rises above the box's bottom row over the middle half
  of the columns, / height (a heel lifts the middle of a shoe off the ground);
- ``enclosed``: background pixels in the top 45% of the box not reachable from the image border (a loop);
- ``sole_contrast``: mean ink of the upper part minus mean ink of the bottom 20% of rows (a light sole);
- ``bands``, ``band_strength``: over interior rows with >= 3 interior pixels (at least 6 such rows), each row's
  mean ink is dark (> median + 25), light (< median - 25) or neither; ``bands`` counts dark/light alternations
  down the garment, ``band_strength`` is the std of the row means / the mean std within rows (high for
  stripes, low for checks and prints, which vary along a row too).

Attribute rules (``attributes``); unless a class is named, a rule applies to every class:
- tone: darkness < 115 light; < 170 mid-grey; < 215 dark; else very dark;
- pattern (not footwear): bands >= 4 and band_strength >= 1.3 striped (horizontal stripes); else
  edge_density < 0.10 plain, >= 0.22 patterned; footwear: edge_density < 0.10 plain, nothing else;
- contrast (garments, bags; plain or no pattern word): contrast >= 55 "with contrasting light and dark areas";
- T-shirt/top: aspect < 0.64 and hem_width >= 0.8 a sleeveless top; hem_width <= 0.72 a short-sleeved
  T-shirt (the sleeves are wider than the body below them); else just a top;
- pullover, coat, shirt: mid_width and hem_width >= 0.9 long-sleeved; shirt: hem_width <= 0.72 short-sleeved
  (a coat or pullover that narrow at the hem is a long coat or has 3/4 sleeves: left unsaid);
- coat: aspect <= 0.62 longline; >= 0.9 cropped;
- trousers: aspect < 0.37 slim; >= 0.5 wide-leg or cropped (scaling to 28 px cannot tell which);
- dress: flare < 1.05 straight; >= 1.4 flared;
- sandal: arch >= 0.3 high-heeled, <= 0.1 flat; fill < 0.5 strappy; ankle boot: arch >= 0.22 heeled, <= 0.1 flat;
- sneaker: aspect <= 1.6 high-top, >= 1.9 low-top; sneaker, ankle boot: sole_contrast >= 60 "with a light sole";
- ankle boot: aspect <= 1.1 high-shaft, >= 1.6 low-cut;
- bag: enclosed >= 12 "with a top handle"; aspect >= 1.4 wide; <= 0.8 tall.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import itertools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from data.records import read_records, text_field
from data.schema import CaptionExample
from data.support_chat import DataError

if TYPE_CHECKING:
    from PIL import Image

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "TUNEDESK_FASHION_MNIST_DIR"
FASHION_MNIST_SPLITS: dict[str, int] = {"train": 60_000, "t10k": 10_000}
LABELS: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CAPTION_FIELDS: tuple[str, ...] = ("id", "image", "caption")
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801  # IDX: unsigned bytes, 3 and 1 dimensions

INK = 20  # ink at or above this is the object; below, background and JPEG-style fringe
TONES: tuple[tuple[float, str, tuple[str, ...]], ...] = (  # (upper bound of darkness, level, words)
    (115, "light", ("light", "pale", "light-coloured")),
    (170, "mid-grey", ("mid-tone", "medium-toned", "mid-grey")),
    (215, "dark", ("dark", "deep-toned", "dark-coloured")),
    (256, "very dark", ("very dark", "near-black", "very dark")),
)
PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "plain": ("plain", "solid-colour", "plain"),
    "patterned": ("patterned", "textured or patterned", "busy-patterned"),
    "striped": ("striped", "horizontally striped", "striped"),
}
FOOTWEAR = frozenset({5, 7, 9})
SLEEVED = frozenset({2, 4, 6})  # pullover, coat, shirt
# (noun, plural) per label; the T-shirt/top noun depends on the sleeves measured.
NOUNS: dict[int, tuple[str, bool]] = {
    0: ("top", False), 1: ("trousers", True), 2: ("pullover", False), 3: ("dress", False), 4: ("coat", False),
    5: ("sandal", False), 6: ("shirt", False), 7: ("sneaker", False), 8: ("bag", False), 9: ("ankle boot", False),
}  # fmt: skip


# --- fashion-mnist IDX files ---------------------------------------------------------------------


def fashion_mnist_dir(directory: Path | str | None = None) -> Path:
    """Where the IDX files are: ``directory``, else ``$TUNEDESK_FASHION_MNIST_DIR``, else the Debian path."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def load_fashion_mnist(split: str, directory: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of a split: uint8 arrays ``N x 28 x 28`` (ink, 0 = background) and ``N``."""
    if split not in FASHION_MNIST_SPLITS:
        raise DataError(f"fashion-mnist: split: unknown split {split!r}; use one of {', '.join(FASHION_MNIST_SPLITS)}")
    return _load_split(split, fashion_mnist_dir(directory).resolve())


@functools.lru_cache(maxsize=4)
def _load_split(split: str, directory: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(directory / f"{split}-images-idx3-ubyte.gz", _IMAGES_MAGIC)
    labels = _read_idx(directory / f"{split}-labels-idx1-ubyte.gz", _LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{directory}: {split}: {len(images)} images but {len(labels)} labels")
    if images.shape[1:] != (28, 28):
        raise DataError(f"{directory}: {split}: images are {images.shape[1:]}, expected 28 x 28")
    if labels.size and labels.max() >= len(LABELS):
        raise DataError(f"{directory}: {split}: label {labels.max()} out of range 0-{len(LABELS) - 1}")
    return images, labels  # read-only arrays: the cache hands the same ones to every caller


def _read_idx(path: Path, magic: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; install Debian's fashion-mnist with `sudo apt-get install dataset-fashion-mnist` "
            f"or point ${FASHION_MNIST_ENV} at a directory holding the four *-ubyte.gz files"
        )
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "none"
        raise DataError(f"{path}: bad IDX magic number {found}, expected {magic:08x}")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes, file holds {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)  # read-only: a view of the decompressed bytes


# --- what the pixels show ------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurements:
    """What ``measure`` reads off a 28x28 ink array; the module docstring defines each field."""

    darkness: float
    contrast: float
    edge_density: float
    aspect: float
    fill: float
    mid_width: float
    hem_width: float
    flare: float
    arch: float
    enclosed: int
    sole_contrast: float
    bands: int
    band_strength: float


def measure(image: np.ndarray) -> Measurements:
    """Silhouette, tone and texture measurements of one fashion-mnist image (ink, 0 = background)."""
    ink = np.asarray(image, dtype=np.float64)
    assert ink.ndim == 2, f"expected a 2-D grayscale image, got shape {ink.shape}"
    mask = ink >= INK
    if not mask.any():
        raise ValueError("image has no object pixels (all ink below the threshold)")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    height, width = bottom - top + 1, right - left + 1
    interior = _erode(mask)
    if interior.sum() < 10:
        interior = mask
    extents = _row_extents(mask)[top : bottom + 1]
    widest = extents.max()

    def extent_at(fraction: float) -> int:
        return int(extents[round(fraction * (height - 1))])

    waist = extents[int(0.2 * height) : int(0.6 * height) + 1].min(initial=widest)
    lowest = np.array([np.flatnonzero(mask[:, x])[-1] if mask[:, x].any() else bottom for x in range(mask.shape[1])])
    middle = range(left + width // 4, right - width // 4 + 1)
    sole_rows = max(2, round(0.2 * height))
    bands, band_strength = _bands(ink, interior)
    upper, sole = mask.copy(), mask.copy()
    upper[bottom - sole_rows + 1 :] = False
    sole[: bottom - sole_rows + 1] = False
    return Measurements(
        darkness=float(ink[interior].mean()),
        contrast=float(ink[interior].std()),
        edge_density=_edge_density(ink, interior),
        aspect=width / height,
        fill=float(mask[top : bottom + 1, left : right + 1].mean()),
        mid_width=extent_at(0.5) / widest,
        hem_width=extent_at(0.85) / widest,
        flare=extent_at(0.9) / max(1, waist),
        arch=max((bottom - lowest[x]) / height for x in middle),
        enclosed=int((~mask & ~_reachable_background(mask))[top : top + int(0.45 * height)].sum()),
        sole_contrast=float(ink[upper].mean() - ink[sole].mean()) if upper.any() and sole.any() else 0.0,
        bands=bands,
        band_strength=band_strength,
    )


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[[0, -1]] = False
    out[:, [0, -1]] = False
    return out


def _reachable_background(mask: np.ndarray) -> np.ndarray:
    """Background pixels connected (4-neighbours) to the image border."""
    background = ~mask
    reached = np.zeros_like(mask)
    reached[[0, -1]] = background[[0, -1]]
    reached[:, [0, -1]] = background[:, [0, -1]]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= background
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def _row_extents(mask: np.ndarray) -> np.ndarray:
    any_pixel = mask.any(axis=1)
    first = mask.argmax(axis=1)
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return np.where(any_pixel, last - first + 1, 0)


def _bands(ink: np.ndarray, interior: np.ndarray) -> tuple[int, float]:
    """``(bands, band_strength)`` as the module docstring defines them."""
    rows = [ink[y][interior[y]] for y in range(ink.shape[0]) if interior[y].sum() >= 3]
    if len(rows) < 6:
        return 0, 0.0
    means = np.array([row.mean() for row in rows])
    middle = float(np.median(means))
    states = [1 if mean > middle + 25 else -1 for mean in means if abs(mean - middle) > 25]
    alternations = sum(1 for before, after in itertools.pairwise(states) if before != after)
    within = float(np.mean([row.std() for row in rows]))
    return alternations, float(means.std()) / max(within, 1.0)


def _edge_density(ink: np.ndarray, interior: np.ndarray) -> float:
    across = np.abs(np.diff(ink, axis=1))[interior[:, 1:] & interior[:, :-1]]
    down = np.abs(np.diff(ink, axis=0))[interior[1:] & interior[:-1]]
    pairs = np.concatenate([across, down])
    return float((pairs > 40).mean()) if pairs.size else 0.0


# --- from measurements to words ------------------------------------------------------------------


@dataclass
class Attributes:
    """The words a caption is made of: a tone level, adjectives in order, and ``with ...`` details."""

    noun: str
    plural: bool
    tone: str  # a level of TONES
    pattern: str | None = None  # a key of PATTERN_WORDS
    shape: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def tone_level(darkness: float) -> str:
    return next(level for bound, level, _ in TONES if darkness < bound)


def attributes(found: Measurements, label: int) -> Attributes:
    """Apply the module docstring's rules to one image's measurements."""
    if label not in NOUNS:
        raise ValueError(f"label {label} out of range 0-{len(LABELS) - 1}")
    noun, plural = NOUNS[label]
    result = Attributes(noun=noun, plural=plural, tone=tone_level(found.darkness))
    if label not in FOOTWEAR and found.bands >= 4 and found.band_strength >= 1.3:
        result.pattern = "striped"
    elif found.edge_density < 0.10:
        result.pattern = "plain"
    elif found.edge_density >= 0.22 and label not in FOOTWEAR:
        result.pattern = "patterned"
    if label not in FOOTWEAR and result.pattern in (None, "plain") and found.contrast >= 55:
        result.details.append("with contrasting light and dark areas")
    shape_rules = {0: _top, 1: _trousers, 3: _dress, 5: _sandal, 7: _sneaker, 8: _bag, 9: _boot}
    if label in SLEEVED:
        _sleeves(found, result, label)
    else:
        shape_rules[label](found, result)
    return result


def _top(found: Measurements, result: Attributes) -> None:
    if found.aspect < 0.64 and found.hem_width >= 0.8:
        result.shape = ["sleeveless"]
    elif found.hem_width <= 0.72:
        result.noun, result.shape = "T-shirt", ["short-sleeved"]


def _sleeves(found: Measurements, result: Attributes, label: int) -> None:
    if label == 4 and found.aspect <= 0.62:
        result.shape.append("longline")
    elif label == 4 and found.aspect >= 0.9:
        result.shape.append("cropped")
    if found.hem_width <= 0.72 and label == 6:  # coats and pullovers this narrow at the hem are long or 3/4-sleeved
        result.shape.append("short-sleeved")
    elif found.mid_width >= 0.9 and found.hem_width >= 0.9:
        result.shape.append("long-sleeved")


def _trousers(found: Measurements, result: Attributes) -> None:
    if found.aspect < 0.37:
        result.shape.append("slim")
    elif found.aspect >= 0.5:
        result.details.append("with a wide or cropped leg")


def _dress(found: Measurements, result: Attributes) -> None:
    if found.flare < 1.05:
        result.shape.append("straight")
    elif found.flare >= 1.4:
        result.shape.append("flared")


def _heel(found: Measurements, result: Attributes, heeled: str, threshold: float) -> None:
    if found.arch >= threshold:
        result.shape.append(heeled)
    elif found.arch <= 0.1:
        result.shape.append("flat")


def _sandal(found: Measurements, result: Attributes) -> None:
    _heel(found, result, "high-heeled", 0.3)  # chunky flat sandals curve up to ~0.28
    if found.fill < 0.5:
        result.shape.append("strappy")


def _sneaker(found: Measurements, result: Attributes) -> None:
    if found.aspect <= 1.6:
        result.shape.append("high-top")
    elif found.aspect >= 1.9:
        result.shape.append("low-top")
    if found.sole_contrast >= 60:
        result.details.append("with a light sole")


def _boot(found: Measurements, result: Attributes) -> None:
    _heel(found, result, "heeled", 0.22)
    if found.aspect <= 1.1:
        result.shape.append("high-shaft")
    elif found.aspect >= 1.6:
        result.shape.append("low-cut")
    if found.sole_contrast >= 60:
        result.details.append("with a light sole")


def _bag(found: Measurements, result: Attributes) -> None:
    if found.aspect >= 1.4:
        result.shape.append("wide")
    elif found.aspect <= 0.8:
        result.shape.append("tall")
    if found.enclosed >= 12:
        result.details.append("with a top handle")


def describe(image: np.ndarray, label: int) -> str:
    """A caption for a fashion-mnist image (ink array, as ``load_fashion_mnist`` returns it) of class ``label``."""
    found = attributes(measure(image), label)
    pixels = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    variant = int.from_bytes(hashlib.sha256(pixels + bytes([label])).digest()[:4], "big")
    return render(found, variant)


def render(found: Attributes, variant: int) -> str:
    """One of four sentence shapes, and the synonyms, picked by ``variant``."""
    tone_words = next(words for _, level, words in TONES if level == found.tone)
    adjectives = [tone_words[variant % len(tone_words)]]
    if found.pattern:
        words = PATTERN_WORDS[found.pattern]
        adjectives.append(words[(variant // 3) % len(words)])
    adjectives += found.shape
    adjective_text = ", ".join(adjectives)
    details = " " + " and ".join(found.details) if found.details else ""
    noun = found.noun
    shape = (variant // 9) % 4
    if shape == 0:
        article = "A pair of" if found.plural else _article(adjective_text).capitalize()
        return f"{article} {adjective_text} {noun}{details}."
    if shape == 1:
        return f"{_capitalize(adjective_text)} {noun}{details}, shown on a white background."
    if shape == 2:
        article = "a pair of" if found.plural else _article(adjective_text)
        return f"Product photo of {article} {adjective_text} {noun}{details}."
    return f"{_capitalize(noun)}: {adjective_text}{',' + details if details else ''}."


def _article(following: str) -> str:
    return "an" if following[:1].lower() in "aeiou" else "a"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- caption files and images --------------------------------------------------------------------


def read_captions(path: Path) -> Iterator[CaptionExample]:
    """Caption examples from a JSONL file in file order; ``source`` is ``file:line``.

    Each line holds ``id``, ``image`` and ``caption`` (a ``source`` key is allowed and replaced). Unknown
    fields, blank values, repeated ids and malformed ``fashion-mnist:``/``skimage:`` references are
    errors naming ``file:line: field``; whether an image file exists is ``open_image``'s business.
    """
    seen: dict[str, int] = {}
    for line, record in read_records(path, CAPTION_FIELDS, "jsonl", allowed_extra=("source",)):
        example_id = text_field(path, line, record, "id")
        if example_id in seen:
            raise DataError(f"{path}:{line}: id: {example_id!r} already used on line {seen[example_id]}")
        seen[example_id] = line
        image = text_field(path, line, record, "image")
        _parse_reference(image, f"{path}:{line}")
        try:
            yield CaptionExample(
                id=example_id, image=image, caption=text_field(path, line, record, "caption"), source=f"{path}:{line}"
            )
        except ValidationError as exc:  # the schema's own limits, should it gain any
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise DataError(f"{path}:{line}: {where}: {error['msg']}") from None


def _parse_reference(image: str, where: str) -> tuple[str, int] | None:
    """``(split, index)`` for a fashion-mnist reference, None for other forms; malformed ones raise."""
    if image.startswith("fashion-mnist:"):
        parts = image.split(":")
        if len(parts) != 3 or parts[1] not in FASHION_MNIST_SPLITS or not parts[2].isdigit():
            raise DataError(f"{where}: image: {image!r} is not fashion-mnist:<train|t10k>:<index>")
        split, index = parts[1], int(parts[2])
        if index >= FASHION_MNIST_SPLITS[split]:
            raise DataError(f"{where}: image: index {index} out of range; {split} has {FASHION_MNIST_SPLITS[split]}")
        return split, index
    if image.startswith("skimage:"):
        name = image.removeprefix("skimage:")
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise DataError(f"{where}: image: {image!r} must name a file directly in skimage/data")
    return None


def skimage_data_dir() -> Path:
    """The installed scikit-image's ``data`` directory (found without importing scikit-image)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("skimage: scikit-image is not installed; `pip install scikit-image`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def open_image(example: CaptionExample, base_dir: Path) -> Image.Image:
    """The example's image, loaded; fashion-mnist photos come back un-negated (dark product on white)."""
    from PIL import Image, UnidentifiedImageError

    where = example.source or example.id
    reference = _parse_reference(example.image, where)
    if reference is not None:
        images, _ = load_fashion_mnist(reference[0])
        return Image.fromarray(255 - images[reference[1]])
    if example.image.startswith("skimage:"):
        path = skimage_data_dir() / example.image.removeprefix("skimage:")
    else:
        path = Path(example.image) if Path(example.image).is_absolute() else base_dir / example.image
    if not path.is_file():
        raise DataError(f"{where}: image: no such file {path}")
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{where}: image: cannot read {path} ({exc})") from None
    return image
