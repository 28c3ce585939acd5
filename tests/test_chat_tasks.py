"""The chat's task profiles (``chatbot.tasks``): what each answers, on tiny models, without a browser."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import test_captioning
import test_sentiment

from chatbot import tasks
from finetune.sentiment import TrainResult
from tunedesk.errors import ModelNotFoundError, TunedeskError
from tunedesk.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
# The tiny trained runs of the captioning and sentiment tests, as fixtures here too.
tiny_run = test_captioning.tiny_run
tiny_encoder = test_sentiment.tiny_encoder
trained = test_sentiment.trained


def collect(pieces: AsyncIterator[str]) -> str:
    async def run() -> str:
        return "".join([piece async for piece in pieces])

    return asyncio.run(run())


def settings(tmp_path: Path, **overrides: str) -> Settings:
    return load_settings(home=tmp_path / "home", **overrides)


def test_every_profile_has_its_own_model_setting(tmp_path: Path) -> None:
    current = settings(tmp_path, sentiment_model="a", summarization_model="b", captioning_model="c")
    assert {name: p.model(current) for name, p in tasks.PROFILES.items()} == {
        "Sentiment": "a",
        "Summarize": "b",
        "Caption": "c",
    }
    assert [p.name for p in tasks.PROFILES.values() if p.uploads] == ["Caption"]


def test_summarize_falls_back_to_the_base_model_only_while_the_default_run_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert tasks.summarization_model(settings(tmp_path)) == "smollm2-135m"
    assert tasks.summarization_model(settings(tmp_path, summarization_model="org/legal-sum")) == "org/legal-sum"
    (tmp_path / "runs/summarization-smollm2").mkdir(parents=True)
    assert tasks.summarization_model(settings(tmp_path)) == "runs/summarization-smollm2"


def test_a_missing_default_run_says_which_command_trains_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    profile = tasks.PROFILES["Sentiment"]
    with pytest.raises(ModelNotFoundError, match="tunedesk sentiment train --config"):
        collect(tasks.answer(profile, "great service", [], settings(tmp_path)))
    assert "one per line" in collect(tasks.answer(profile, "  \n ", [], settings(tmp_path)))


def test_caption_asks_for_one_photo_and_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    profile = tasks.PROFILES["Caption"]
    assert "Attach one product photo" in collect(tasks.answer(profile, "hello", [], settings(tmp_path)))
    fake = tmp_path / "shirt.png"
    fake.write_text("name,price\n=HYPERLINK(1),2\n")
    with pytest.raises(TunedeskError, match=r"shirt.png: not a PNG, JPEG, WebP or GIF image"):
        collect(tasks.answer(profile, "", [tasks.Upload("shirt.png", fake)], settings(tmp_path)))


def test_caption_streams_a_caption_of_an_uploaded_photo(tmp_path: Path, tiny_run: Path) -> None:
    from PIL import Image

    photo = tmp_path / "coat.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 80), (240, 240, 240)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    current = settings(tmp_path, captioning_model=str(tiny_run))
    text = collect(tasks.answer(tasks.PROFILES["Caption"], "", [tasks.Upload("coat.jpg", photo)], current))
    assert text.strip()


def test_sentiment_labels_each_line_with_probabilities(tmp_path: Path, trained: TrainResult) -> None:
    current = settings(tmp_path, sentiment_model=str(trained.output))
    text = collect(tasks.answer(tasks.PROFILES["Sentiment"], "love it @brand\n\nworst | service ever", [], current))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| post | sentiment |")
    assert len(rows) == 3  # the header and one row per non-empty line
    assert "worst \\| service ever" in rows[2]  # a pipe in a post does not break the table
    for row in rows[1:]:
        probabilities = [float(cell) for cell in row.strip("| ").split(" | ")[2:]]
        assert len(probabilities) == 3 and abs(sum(probabilities) - 1) < 0.02


def test_summarize_reports_each_part_of_a_long_document_then_streams_the_summary(
    tmp_path: Path, tiny_transformers: Path
) -> None:
    document = json.loads((ROOT / "data/samples/legal/documents.jsonl").open().readline())["document"]
    assert len(document) > 9000  # several parts at the default chunk size
    text = collect(
        tasks.answer(
            tasks.PROFILES["Summarize"], document, [], settings(tmp_path, summarization_model="tiny-random-llama")
        )
    )
    parts = [line for line in text.splitlines() if line.startswith("_Read part ")]
    total = int(parts[0].split(" of ")[1].rstrip("._"))
    assert total > 1 and len(parts) == total
    assert text.rstrip().endswith("summarised one by one and then combined._")
    assert "Paste the document" in collect(
        tasks.answer(tasks.PROFILES["Summarize"], "too short", [], settings(tmp_path))
    )


def test_the_summarize_profile_takes_whole_legal_documents_where_the_chat_limit_would_refuse_them() -> None:
    """The chat's message limit (4,000 characters by default) would refuse most sample documents: the
    Summarize profile has its own, above the longest of them."""
    documents = (
        (Path(__file__).resolve().parent.parent / "data/samples/legal/documents.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    longest = max(len(json.loads(line)["document"]) for line in documents)
    assert longest > Settings().max_message_chars
    assert tasks.PROFILES["Summarize"].max_chars is not None and tasks.PROFILES["Summarize"].max_chars > longest
    assert tasks.PROFILES["Sentiment"].max_chars is None  # the chat's limit
