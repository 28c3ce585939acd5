"""The public datasets, by hub id, as tunedesk examples: ``tunedesk data fetch NAME --out FILE``.

| name | hub id (config) | becomes |
|---|---|---|
| bitext | bitext/Bitext-customer-support-llm-chatbot-training-dataset | chat JSONL with intent, for ``data prepare`` |
| tweet_eval | cardiffnlp/tweet_eval (sentiment) | sentiment JSONL (``SentimentExample``) |
| billsum | FiscalNote/billsum | summary JSONL (``SummaryExample``) |
| flickr8k | jxie/flickr8k | caption JSONL (``CaptionExample``), images saved beside it |

Decisions:
- ``--source`` takes a hub id or a directory written by ``datasets``' ``save_to_disk``: the second
  is how the loaders are tested offline, and how a team ships a mirrored copy behind a firewall.
- Bitext writes placeholders as ``{{Order Number}}``; they become our typed placeholders
  (``[ORDER_ID]``), so its answers teach the same convention as our redacted logs.
- Output is written to a temporary file and renamed into place; images go to ``<out stem>-images/``
  and the caption file points at them by relative path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.schema import SENTIMENT_LABELS, CaptionExample, SentimentExample, SummaryExample
from data.support_chat import Conversation, DataError, Turn
from tunedesk.files import atomic_writer


@dataclass(frozen=True)
class HubSet:
    hub_id: str
    config: str | None
    columns: frozenset[str]  # what a copy must have to be this set
    convert: Callable[[Any, str, Path], Iterator[dict[str, Any]]]
    description: str


BITEXT_PLACEHOLDERS: dict[str, str] = {
    "order number": "ORDER_ID", "invoice number": "ORDER_ID", "tracking number": "ORDER_ID",
    "email address": "EMAIL", "phone number": "PHONE", "customer support phone number": "PHONE",
    "credit card number": "CARD", "iban": "IBAN", "delivery address": "ADDRESS", "shipping address": "ADDRESS",
    "person name": "NAME", "client first name": "NAME", "client last name": "NAME",
}  # fmt: skip
_CURLY = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def _placeholder(match: re.Match[str]) -> str:
    name = match.group(1).strip()
    return "[" + BITEXT_PLACEHOLDERS.get(name.lower(), re.sub(r"\W+", "_", name).strip("_").upper()) + "]"


def _bitext(dataset: Any, split: str, _: Path) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(dataset):
        conversation = Conversation(
            id=f"bitext-{split}-{index}",
            turns=[
                Turn(role="user", content=_CURLY.sub(_placeholder, row["instruction"])),
                Turn(role="assistant", content=_CURLY.sub(_placeholder, row["response"])),
            ],
            intent=row.get("intent") or row.get("category"),
        )
        yield {"id": conversation.id, "intent": conversation.intent, **conversation.to_example()}


def _tweet_eval(dataset: Any, split: str, _: Path) -> Iterator[dict[str, Any]]:
    feature = dataset.features["label"]
    names = list(getattr(feature, "names", SENTIMENT_LABELS))
    for index, row in enumerate(dataset):
        label = row["label"]
        text_label = names[label] if isinstance(label, int) else str(label).lower()
        record = {"id": f"tweet_eval-{split}-{index}", "text": row["text"], "label": text_label}
        yield SentimentExample.model_validate({**record, "source": f"tweet_eval:{split}:{index}"}).model_dump()


def _billsum(dataset: Any, split: str, _: Path) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(dataset):
        yield SummaryExample(
            id=f"billsum-{split}-{index}",
            document=row["text"],
            summary=row["summary"],
            title=row.get("title"),
            source=f"billsum:{split}:{index}",
        ).model_dump(exclude_none=True)


def _flickr8k(dataset: Any, split: str, images: Path) -> Iterator[dict[str, Any]]:
    images.mkdir(parents=True, exist_ok=True)
    for index, row in enumerate(dataset):
        captions = [row[c] for c in sorted(row) if c.startswith("caption_") and row[c]]
        if isinstance(row.get("caption"), list):
            captions += row["caption"]
        name = f"{split}-{index:05d}.jpg"
        row["image"].convert("RGB").save(images / name, quality=92)
        for number, caption in enumerate(captions):
            yield CaptionExample(
                id=f"flickr8k-{split}-{index}-{number}",
                image=f"{images.name}/{name}",
                caption=caption,
                source=f"flickr8k:{split}:{index}",
            ).model_dump()


HUB_SETS: dict[str, HubSet] = {
    "bitext": HubSet(
        "bitext/Bitext-customer-support-llm-chatbot-training-dataset",
        None,
        frozenset({"instruction", "response"}),
        _bitext,
        "27k customer-support instruction/response pairs over 27 intents (chat JSONL)",
    ),
    "tweet_eval": HubSet(
        "cardiffnlp/tweet_eval",
        "sentiment",
        frozenset({"text", "label"}),
        _tweet_eval,
        "tweets labelled negative/neutral/positive (sentiment JSONL)",
    ),
    "billsum": HubSet(
        "FiscalNote/billsum",
        None,
        frozenset({"text", "summary"}),
        _billsum,
        "US bills with human summaries (summary JSONL)",
    ),
    "flickr8k": HubSet(
        "jxie/flickr8k",
        None,
        frozenset({"image"}),
        _flickr8k,
        "8k photos with five captions each (caption JSONL + images)",
    ),
}


def load_split(name: str, source: str | None, split: str) -> Any:
    """One split of a hub set, from the hub or from a ``save_to_disk`` directory."""
    import datasets

    hub = HUB_SETS[name]
    where = source or hub.hub_id
    try:
        if Path(where).is_dir():
            loaded = datasets.load_from_disk(where)
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataError(f"{where}: no split '{split}'; it has {', '.join(loaded)}")
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(where, hub.config, split=split)
    except DataError:
        raise
    except Exception as exc:  # hub unreachable, unknown id, a corrupt copy: say which and why
        raise DataError(f"{name}: cannot load '{where}' split '{split}': {exc}") from exc
    missing = hub.columns - set(loaded.column_names)
    if missing:
        raise DataError(f"{where}: not a {name} copy: missing column(s) {', '.join(sorted(missing))}")
    return loaded


def fetch(name: str, out: Path, source: str | None = None, split: str = "train", limit: int | None = None) -> int:
    """Write ``name``'s ``split`` as tunedesk JSONL to ``out``; returns the number of lines written."""
    if name not in HUB_SETS:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(HUB_SETS)}")
    dataset = load_split(name, source, split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    written = 0
    with atomic_writer(out) as handle:
        for record in HUB_SETS[name].convert(dataset, split, out.parent / f"{out.stem}-images"):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written
