"""``tunedesk data stats``: what a prepared dataset holds, as numbers, plots and one HTML page.

Decisions:
- Input is a ``data prepare`` output directory (its splits, meta files and report) or chat JSONL
  files. From a directory the report's per-step counts come too, so one page says what was read,
  what was dropped and why, and what is left.
- Per split: conversations, turns per conversation, tokens per conversation (the ``--target``
  tokenizer, as ``data validate`` counts them), intents and how many were augmented.
- Plots are PNG files (matplotlib, the Agg backend: no display needed) embedded in a self-contained
  ``stats.html`` next to ``stats.json``. Everything is written to a temporary directory first and
  renamed into place.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.validate import Target, spread
from tunedesk.errors import DataError
from tunedesk.files import jsonl_lines, load_json, parse_json, read_text, replacing_directory

SPLITS = ("train", "val", "test")


@dataclass
class SplitStats:
    name: str
    turns: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    intents: Counter[str] = field(default_factory=Counter)
    augmented: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        def with_median(values: list[int]) -> dict[str, float] | None:
            described = spread(values)
            if described is not None:
                described["p50"] = sorted(values)[len(values) // 2]
            return described

        return {
            "conversations": len(self.turns),
            "turns": with_median(self.turns),
            "tokens": with_median(self.tokens),
            "total_tokens": sum(self.tokens),
            "intents": dict(self.intents.most_common()),
            "augmented": dict(self.augmented),
        }


def collect(inputs: Sequence[Path], target: Target) -> tuple[list[SplitStats], dict[str, Any] | None]:
    """Stats per split (or per file) and the ``data prepare`` report when a directory is given."""
    report: dict[str, Any] | None = None
    files: list[tuple[str, Path, Path | None]] = []
    for path in inputs:
        if path.is_dir():
            found: list[tuple[str, Path, Path | None]] = []
            for name in SPLITS:
                data, meta = path / f"{name}.jsonl", path / f"{name}.meta.jsonl"
                if data.is_file():
                    found.append((name, data, meta if meta.is_file() else None))
            if not found:
                raise DataError(f"{path}: no train/val/test.jsonl; give a 'data prepare' output or JSONL files")
            files += found
            if (path / "report.json").is_file():
                loaded = load_json(path / "report.json", DataError)
                report = loaded if isinstance(loaded, dict) else None
        elif path.is_file():
            files.append((path.stem, path, None))
        else:
            raise DataError(f"{path}: no such file or directory")
    return [_split_stats(name, data, meta, target) for name, data, meta in files], report


def _split_stats(name: str, data: Path, meta: Path | None, target: Target) -> SplitStats:
    stats = SplitStats(name)
    for number, line in jsonl_lines(read_text(data, DataError)):
        if not line.strip():
            continue
        example = parse_json(line, f"{data}:{number}", DataError)
        try:
            turns = [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
            if not all(isinstance(m["role"], str) and isinstance(m["content"], str) for m in turns):
                raise TypeError("role or content not text")
        except (KeyError, TypeError) as exc:
            raise DataError(
                f"{data}:{number}: messages: not a chat example (bad or missing {exc}); run 'tunedesk data validate'"
            ) from None
        stats.turns.append(sum(1 for m in turns if m["role"] != "system"))
        stats.tokens.append(target.count(turns))
    if meta is not None:
        for number, line in jsonl_lines(read_text(meta, DataError)):
            if not line.strip():
                continue
            record = parse_json(line, f"{meta}:{number}", DataError)
            intent = record.get("intent") if isinstance(record, dict) else None
            augmented = record.get("augmented") if isinstance(record, dict) else None
            if not isinstance(intent, str | None) or not isinstance(augmented, str | None):
                raise DataError(f"{meta}:{number}: intent, augmented: expected text or null")
            stats.intents[intent or "unknown"] += 1
            if augmented:
                stats.augmented[augmented] += 1
    return stats


def write(out: Path, splits: list[SplitStats], report: dict[str, Any] | None, target: Target) -> dict[str, Any]:
    """``stats.json``, the PNG plots and ``stats.html`` in ``out``, swapped in whole."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = {
        "target": f"{target.kind}:{target.model}",
        "token_count": "approximate (4 characters a token)" if target.approximate else "exact",
        "splits": {s.name: s.summary() for s in splits},
        "steps": (report or {}).get("steps"),
        "pii_redacted": (report or {}).get("pii_redacted"),
    }
    with replacing_directory(out) as tmp:
        plots: list[tuple[str, str]] = []

        def save(figure: Any, name: str, title: str) -> None:
            figure.tight_layout()
            figure.savefig(tmp / name, dpi=110)
            plt.close(figure)
            plots.append((name, title))

        for key, label in (("turns", "turns per conversation"), ("tokens", "tokens per conversation")):
            figure, axes = plt.subplots(figsize=(7, 3.5))
            values = [getattr(s, key) for s in splits if getattr(s, key)]
            axes.hist(values, bins=30, stacked=True, label=[s.name for s in splits if getattr(s, key)])
            axes.set_xlabel(label)
            axes.set_ylabel("conversations")
            axes.legend()
            save(figure, f"{key}.png", label.capitalize())
        intents = sorted({i for s in splits for i in s.intents})
        if intents:
            figure, axes = plt.subplots(figsize=(7, 0.3 * len(intents) + 1.2))
            left = [0] * len(intents)
            for s in splits:
                widths = [s.intents.get(i, 0) for i in intents]
                axes.barh(intents, widths, left=left, label=s.name)
                left = [a + b for a, b in zip(left, widths, strict=True)]
            axes.set_xlabel("conversations")
            axes.legend()
            save(figure, "intents.png", "Intents per split")
        if report and report.get("steps"):
            steps = {k: v for k, v in report["steps"].items() if v}
            figure, axes = plt.subplots(figsize=(7, 0.3 * len(steps) + 1.2))
            axes.barh(list(steps), list(steps.values()), color="tab:gray")
            axes.invert_yaxis()
            axes.set_xlabel("count")
            save(figure, "steps.png", "What each preparation step did")
        (tmp / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (tmp / "stats.html").write_text(_html(summary, plots, tmp), encoding="utf-8")
    return summary


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}"""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(summary: dict[str, Any], plots: list[tuple[str, str]], directory: Path) -> str:
    def p(spread: dict[str, float] | None, key: str) -> object:
        return spread[key] if spread else "-"

    splits = _table(
        ("split", "conversations", "turns p50", "tokens p50", "tokens max", "tokens total", "intents", "augmented"),
        [
            (name, s["conversations"], p(s["turns"], "p50"), p(s["tokens"], "p50"), p(s["tokens"], "max"),
             f"{s['total_tokens']:,}", len(s["intents"]), sum(s["augmented"].values()))
            for name, s in summary["splits"].items()
        ],
    )  # fmt: skip
    parts = [f"<p>Tokens: {html.escape(summary['target'])}, {html.escape(summary['token_count'])}.</p>", splits]
    if summary["steps"]:
        steps = [(k.replace("_", " "), f"{v:,}") for k, v in summary["steps"].items()]
        parts.append("<h2>Preparation steps</h2>" + _table(("step", "count"), steps))
    if summary["pii_redacted"]:
        parts.append("<h2>PII redacted</h2>" + _table(("kind", "count"), list(summary["pii_redacted"].items())))
    for name, title in plots:
        data = base64.b64encode((directory / name).read_bytes()).decode()
        caption = html.escape(title)
        image = f"<img alt='{caption}' src='data:image/png;base64,{data}'>"
        parts.append(f"<figure>{image}<figcaption>{caption}</figcaption></figure>")
    body = "\n".join(parts)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>tunedesk data stats</title>"
        f"<style>{STYLE}</style></head><body><h1>Dataset statistics</h1>\n{body}\n</body></html>\n"
    )
