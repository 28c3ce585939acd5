"""Regenerate ``fashion_captions.jsonl``: a class-balanced, seeded sample of fashion-mnist captioned by ``describe``.

    python data/samples/captioning/generate.py             # rewrites fashion_captions.jsonl next to this file
    python data/samples/captioning/generate.py --check     # exit 1 if that file is not what this would write

Decisions:
- ``random.Random(seed).sample`` picks ``per_class`` photos of each class from the split; lines are in
  photo-index order, so classes are interleaved as in the split itself.
- A line holds ``id``, ``image`` (``fashion-mnist:<split>:<index>``, no pixels copied) and ``caption``; the
  output is a pure function of the arguments and the dataset, and regenerates byte-identically.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tunedesk.files import write_text_atomically

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "fashion_captions.jsonl"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUTPUT, help="file to write (default: %(default)s)")
    parser.add_argument("--split", default="t10k", choices=("train", "t10k"), help="fashion-mnist split to sample")
    parser.add_argument("--per-class", type=int, default=100, help="photos per class (10 classes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument(
        "--fashion-mnist-dir", type=Path, help="the IDX files (default: $TUNEDESK_FASHION_MNIST_DIR, else Debian's)"
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out differs from the output")
    return parser


def sample_indices(labels: list[int], per_class: int, seed: int) -> list[int]:
    """``per_class`` indices of each label, drawn with ``random.Random(seed)``, in ascending order."""
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(set(labels)):
        members = [index for index, value in enumerate(labels) if value == label]
        if len(members) < per_class:
            raise ValueError(f"label {label} has {len(members)} photos, fewer than --per-class {per_class}")
        chosen += rng.sample(members, per_class)
    return sorted(chosen)


def build(split: str, per_class: int, seed: int, directory: Path | None = None) -> str:
    """The JSONL text of the sample."""
    from data.captioning import describe, load_fashion_mnist

    images, labels = load_fashion_mnist(split, directory)
    lines = []
    for index in sample_indices([int(label) for label in labels], per_class, seed):
        record = {
            "id": f"fashion-mnist-{split}-{index:05d}",
            "image": f"fashion-mnist:{split}:{index}",
            "caption": describe(images[index], int(labels[index])),
        }
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    text = build(args.split, args.per_class, args.seed, args.fashion_mnist_dir)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out}: out of date; run python data/samples/captioning/generate.py", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date ({text.count(chr(10))} captions)")
        return 0
    write_text_atomically(args.out, text)
    print(f"{args.out}: {text.count(chr(10))} captions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
