"""The captioning sample: fashion-mnist IDX parsing, captions that follow the pixels, byte-identical
regeneration, images that open, and caption files whose errors name file:line: field."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from data.captioning import (
    FASHION_MNIST_DIR,
    LABELS,
    TONES,
    attributes,
    describe,
    load_fashion_mnist,
    measure,
    open_image,
    read_captions,
)
from data.support_chat import DataError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "captioning"
# The generator is a script, not a package module: load it under a name no other sample's generate.py takes.
_spec = importlib.util.spec_from_file_location("captioning_generate", SAMPLE / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (sudo apt-get install dataset-fashion-mnist)",
)
TONE_RANK = {level: rank for rank, (_, level, _) in enumerate(TONES)}


def write_idx(directory: Path, split: str, images: np.ndarray, labels: np.ndarray, magic: int = 0x803) -> None:
    header = struct.pack(">IIII", magic, *images.shape)
    (directory / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    label_header = struct.pack(">II", 0x801, len(labels))
    (directory / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(label_header + labels.tobytes()))


def garment(ink: int = 150, sleeves: str = "long") -> np.ndarray:
    """A front-view top: a body with sleeves hanging to the hem ("long") or stopping near the top ("short")."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[1:27, 8:20] = ink  # body
    length = 26 if sleeves == "long" else 8
    image[1 : 1 + length, 2:7] = ink  # sleeves, with a gap to the body
    image[1 : 1 + length, 21:26] = ink
    image[1:4, 7:21] = ink  # shoulders joining them
    return image


# --- IDX parsing ---------------------------------------------------------------------------------


@needs_fashion_mnist
def test_t10k_has_ten_thousand_photos_a_thousand_per_class() -> None:
    images, labels = load_fashion_mnist("t10k")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,)
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    assert images.min() == 0 and images.max() == 255
    assert (images[:, 0, 0] == 0).mean() > 0.9, "the corner is background: ink 0 in the stored (negated) photos"
    assert load_fashion_mnist("t10k")[0] is images, "cached per process"
    assert not images.flags.writeable, "the cached arrays cannot be changed by a caller"


def test_idx_files_round_trip_and_the_directory_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    write_idx(tmp_path, "t10k", images, np.array([9, 0, 4], dtype=np.uint8))
    loaded, labels = load_fashion_mnist("t10k", tmp_path)
    assert np.array_equal(loaded, images) and labels.tolist() == [9, 0, 4]
    monkeypatch.setenv("TUNEDESK_FASHION_MNIST_DIR", str(tmp_path))
    assert np.array_equal(load_fashion_mnist("t10k")[0], images)


def test_bad_idx_files_are_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz: no such file.*apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist("t10k", tmp_path / "absent")
    write_idx(tmp_path, "t10k", np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8), magic=0x801)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: bad IDX magic number 00000801"):
        load_fashion_mnist("t10k", tmp_path)
    truncated = struct.pack(">IIII", 0x803, 5, 28, 28) + bytes(28 * 28)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(truncated))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: header says .* file holds 784"):
        load_fashion_mnist("train", tmp_path)
    with pytest.raises(DataError, match="split: unknown split 'test'"):
        load_fashion_mnist("test", tmp_path)


# --- captions follow the pixels ------------------------------------------------------------------


def test_a_darker_copy_gets_a_darker_tone_word() -> None:
    light = garment(ink=80)
    dark = np.clip(light.astype(int) * 5 // 2, 0, 255).astype(np.uint8)
    assert attributes(measure(light), 2).tone == "light"
    assert attributes(measure(dark), 2).tone == "dark"
    assert any(word in describe(dark, 2).lower() for word in TONES[2][2])


@needs_fashion_mnist
def test_darkening_real_photos_never_lightens_and_usually_darkens_the_tone() -> None:
    images, labels = load_fashion_mnist("t10k")
    raised = 0
    for image, label in zip(images[:200], labels[:200], strict=True):
        before = TONE_RANK[attributes(measure(image), int(label)).tone]
        darker = np.clip(image.astype(int) * 8 // 5, 0, 255).astype(np.uint8)
        after = TONE_RANK[attributes(measure(darker), int(label)).tone]
        assert after >= before
        raised += after > before
    assert raised >= 100, f"only {raised} of 200 photos got a darker tone word"


@needs_fashion_mnist
def test_a_mirrored_photo_keeps_its_class_word_and_every_attribute() -> None:
    images, labels = load_fashion_mnist("t10k")
    for image, label in zip(images[:300], labels[:300], strict=True):
        original = attributes(measure(image), int(label))
        mirrored = np.fliplr(image)
        assert attributes(measure(mirrored), int(label)) == original
        assert original.noun.lower() in describe(mirrored, int(label)).lower()


def test_noise_is_patterned_stripes_are_striped_and_a_flat_fill_is_plain() -> None:
    rng = random.Random(0)
    noisy = garment()
    noisy[noisy > 0] = [rng.randint(40, 255) for _ in range(int((noisy > 0).sum()))]
    striped = garment()
    for row in range(28):
        striped[row][striped[row] > 0] = 230 if (row // 2) % 2 else 70
    assert attributes(measure(noisy), 2).pattern == "patterned" and "pattern" in describe(noisy, 2)
    assert attributes(measure(striped), 2).pattern == "striped" and "striped" in describe(striped, 2)
    assert attributes(measure(garment()), 2).pattern == "plain"


def test_silhouette_attributes_follow_the_shape() -> None:
    assert "long-sleeved" in attributes(measure(garment(sleeves="long")), 2).shape
    short = attributes(measure(garment(sleeves="short")), 0)
    assert (short.noun, short.shape) == ("T-shirt", ["short-sleeved"])
    bag = np.zeros((28, 28), dtype=np.uint8)
    bag[12:27, 2:26] = 180
    assert "with a top handle" not in attributes(measure(bag), 8).details
    bag[3:12, 8:10] = bag[3:12, 18:20] = bag[3:5, 8:20] = 180  # a handle: a loop enclosing background
    assert "with a top handle" in attributes(measure(bag), 8).details


def test_an_empty_image_is_refused() -> None:
    with pytest.raises(ValueError, match="no object pixels"):
        describe(np.zeros((28, 28), dtype=np.uint8), 0)


# --- the sample files ----------------------------------------------------------------------------


def test_sample_indices_are_class_balanced_and_seeded() -> None:
    labels = [index % 10 for index in range(300)]
    chosen = generate.sample_indices(labels, 7, seed=3)
    assert chosen == sorted(set(chosen)) and len(chosen) == 70
    assert Counter(labels[index] for index in chosen) == Counter({label: 7 for label in range(10)})
    assert generate.sample_indices(labels, 7, seed=3) == chosen
    assert generate.sample_indices(labels, 7, seed=4) != chosen


@needs_fashion_mnist
def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "fashion_captions.jsonl"
    assert generate.main(["--out", str(out)]) == 0
    assert out.read_bytes() == (SAMPLE / "fashion_captions.jsonl").read_bytes()
    assert generate.main(["--check"]) == 0
    out.write_text(out.read_text().replace("dark", "light", 1))
    assert generate.main(["--check", "--out", str(out)]) == 1


@needs_fashion_mnist
def test_every_fashion_image_opens_as_the_photo_and_classes_are_balanced() -> None:
    path = SAMPLE / "fashion_captions.jsonl"
    images, labels = load_fashion_mnist("t10k")
    examples = list(read_captions(path))
    assert len(examples) == 1000 and len({example.caption for example in examples}) > 500
    counts: Counter[str] = Counter()
    for example in examples:
        index = int(example.image.rsplit(":", 1)[1])
        opened = np.asarray(open_image(example, path.parent))
        assert np.array_equal(opened, 255 - images[index]), "opened un-negated: a dark product on white"
        assert example.caption == describe(images[index], int(labels[index]))
        counts[LABELS[labels[index]]] += 1
    assert counts == Counter({label: 100 for label in LABELS})


def test_every_photo_opens_and_none_is_copied_into_the_repository() -> None:
    path = SAMPLE / "photos.jsonl"
    examples = list(read_captions(path))
    assert all(example.image.startswith("skimage:") for example in examples)
    assert len({example.image for example in examples}) >= 12
    for example in examples:
        image = open_image(example, path.parent)
        assert min(image.size) >= 100 and len(example.caption.split()) >= 8
    assert not [p for p in SAMPLE.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".tif"}]


def test_relative_and_absolute_paths_open(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 3), "red").save(tmp_path / "img" / "red.png")
    path = tmp_path / "captions.jsonl"
    rows = [
        {"id": "a", "image": "img/red.png", "caption": "A red square."},
        {"id": "b", "image": str(tmp_path / "img" / "red.png"), "caption": "The same red square."},
        {"id": "c", "image": "img/missing.png", "caption": "Nothing."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first, second, missing = read_captions(path)
    assert open_image(first, path.parent).size == open_image(second, path.parent).size == (4, 3)
    assert first.source == f"{path}:1"
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:3: image: no such file"):
        open_image(missing, path.parent)
    with pytest.raises(DataError, match=r":1: image: no such file .*nope\.png"):
        open_image(first.model_copy(update={"image": "skimage:nope.png"}), path.parent)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"id": "a", "image": "x.png", "caption": "c", "colour": "red"}'], r":1: colour: unknown field"),
        (['{"id": "a", "image": "x.png"}'], r":1: caption: missing"),
        (['{"id": "a", "image": "  ", "caption": "c"}'], r":1: image: empty"),
        (['{"id": "a", "image": "x.png", "caption": 5}'], r":1: caption: expected text"),
        (
            ['{"id": "a", "image": "x.png", "caption": "c"}', "", '{"id": "a", "image": "y.png", "caption": "d"}'],
            r":3: id: 'a' already used on line 1",
        ),
        (
            ['{"id": "a", "image": "fashion-mnist:test:5", "caption": "c"}'],
            r":1: image: .* is not fashion-mnist:<train\|t10k>:<index>",
        ),
        (['{"id": "a", "image": "fashion-mnist:t10k:10000", "caption": "c"}'], r":1: image: index 10000 out of range"),
        (['{"id": "a", "image": "skimage:../secret.png", "caption": "c"}'], r":1: image: .* directly in skimage/data"),
        (['{"id": "a", "image": "x.png", "caption": "c"}', '{"id": "b", "image": '], r":2: record: invalid JSON"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, lines: list[str], expected: str) -> None:
    path = tmp_path / "captions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}{expected}"):
        list(read_captions(path))
