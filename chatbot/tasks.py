"""The sibling tasks in the chat: a Sentiment, a Summarize and a Caption profile beside Support.

Each profile is one plain async function from what the person sent to text pieces, so ``chatbot.app`` only
routes a message to the profile's function and records the answer like any other.

Decisions:
- Models come from settings (``TUNEDESK_SENTIMENT_MODEL``, ``..._SUMMARIZATION_MODEL``, ``..._CAPTIONING_MODEL``),
  load once per process in a worker thread and are shared by every session, like the chat backend.
- A missing run is a message saying which command makes it, not an error page. Summarize alone has a fallback:
  the base SmolLM2 can summarise untrained, so it is used (and named) while the default run does not exist.
- Uploads reach only the Caption profile (its ``config_overrides`` turn file upload on) and are checked there by
  content, type and size (``tunedesk.tasks.captioning.check_upload``); Chainlit's own ``accept`` and size limit
  are the first fence, this is the one that decides.
- Long work reports progress: summarising a long document shows each part as it is read (map), then streams
  the final summary (reduce); the answer ends with how the document was cut.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunedesk.errors import ModelNotFoundError, TunedeskError
from tunedesk.settings import Settings

IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"]
MAX_UPLOAD_MB = 10
# A pasted legal document: read part by part, so far longer than a chat message (the samples reach 44,000).
MAX_DOCUMENT_CHARS = 200_000
SENTIMENT_TRAIN = "tunedesk sentiment train --config finetune/configs/sentiment-minilm.yaml"
CAPTIONING_TRAIN = "tunedesk captioning train --config finetune/configs/captioning-fashion.yaml"


@dataclass(frozen=True)
class Upload:
    name: str
    path: Path | None  # Chainlit's temporary copy of the file


@dataclass(frozen=True)
class TaskProfile:
    name: str
    description: str
    greeting: str
    answer: Callable[[str, Sequence[Upload], Settings], AsyncIterator[str]]
    setting: str  # the Settings field naming the profile's model
    uploads: bool = False
    untrained: str | None = None  # the model used while the setting's default run has not been trained
    max_chars: int | None = None  # longest message; None: the chat's (TUNEDESK_MAX_MESSAGE_CHARS)

    def model(self, settings: Settings) -> str:
        """What answers, as recorded with each answer."""
        if self.untrained is not None and _untrained(settings, self.setting):
            return self.untrained
        return str(getattr(settings, self.setting))


# ---------------------------------------------------------------------------------------------- sentiment


@functools.cache
def _classifier(ref: str) -> Any:
    from tunedesk.tasks.sentiment import load_classifier

    return load_classifier(ref)


async def classify(text: str, uploads: Sequence[Upload], settings: Settings) -> AsyncIterator[str]:
    """The label of each non-empty line (a post per line), with the probabilities."""
    posts = [line.strip() for line in text.splitlines() if line.strip()]
    if not posts:
        yield "Send one or more posts, one per line."
        return
    ref = _require(settings, "sentiment_model", SENTIMENT_TRAIN)
    classifier = await asyncio.to_thread(_classifier, ref)
    predictions = await asyncio.to_thread(classifier.predict, posts)
    labels = list(predictions[0][1])
    yield "| post | sentiment | " + " | ".join(labels) + " |\n|---|---|" + "---|" * len(labels) + "\n"
    for post, (label, scores) in zip(posts, predictions, strict=True):
        cells = " | ".join(f"{scores[name]:.2f}" for name in labels)
        yield f"| {_cell(post)} | **{label}** | {cells} |\n"


def _cell(text: str, limit: int = 120) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------------------------- summarization


@functools.cache
def _summarizer(ref: str, repetition_penalty: float) -> Any:
    from tunedesk.tasks.summarization import Summarizer

    return Summarizer(ref, repetition_penalty=repetition_penalty)


def summarization_model(settings: Settings) -> str:
    """The configured summarizer, or the base SmolLM2 while the default run has not been trained."""
    return PROFILES["Summarize"].model(settings)


async def summarize(text: str, uploads: Sequence[Upload], settings: Settings) -> AsyncIterator[str]:
    """Progress lines while the parts of a long document are read, then the summary, then how it was cut."""
    if len(text.split()) < 40:
        yield "Paste the document to summarise (a contract, a judgment, a policy: at least a paragraph)."
        return
    ref = summarization_model(settings)
    if ref != settings.summarization_model:
        yield f"_Not fine-tuned yet: summarising with the base {ref}._\n\n"
    # the chat's repetition penalty (1.1): greedy decoding with none loops on the 135M model's summaries
    model = await asyncio.to_thread(_summarizer, ref, settings.repetition_penalty)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def push(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (kind, value))

    def work() -> None:
        stream = model.stream(text, on_chunk=lambda index, total, note: push("part", (index, total)))
        try:
            for piece in stream:
                push("piece", piece)
            push("done", stream.result)
        except Exception as exc:  # re-raised on the loop's side
            push("error", exc)

    worker = asyncio.create_task(asyncio.to_thread(work))
    try:
        while True:
            kind, value = await events.get()
            if kind == "part":
                index, total = value
                yield f"_Read part {index + 1} of {total}._\n"
                if index + 1 == total:
                    yield "\n"
            elif kind == "piece":
                yield value
            elif kind == "error":
                raise value
            else:
                chunks = value.metadata()["chunks"] if value is not None else 0
                if chunks > 1:
                    yield f"\n\n_{chunks} parts of at most {value.chunk_chars:,} characters, summarised one by one "
                    yield "and then combined._"
                return
    finally:
        await worker


# ---------------------------------------------------------------------------------------------- captioning


@functools.cache
def _captioner(ref: str) -> Any:
    from tunedesk.tasks.captioning import load_captioner

    return load_captioner(ref)


async def caption(text: str, uploads: Sequence[Upload], settings: Settings) -> AsyncIterator[str]:
    """A caption of the one uploaded product photo, streamed as it is decoded."""
    from tunedesk.tasks.captioning import astream_caption, check_upload

    if len(uploads) != 1 or uploads[0].path is None:
        yield "Attach one product photo (PNG, JPEG, WebP or GIF, at most 10 MB) to get its caption."
        return
    upload = uploads[0]
    assert upload.path is not None
    image = check_upload(await asyncio.to_thread(upload.path.read_bytes), upload.name)
    ref = _require(settings, "captioning_model", CAPTIONING_TRAIN)
    captioner = await asyncio.to_thread(_captioner, ref)
    async for piece in astream_caption(captioner, image):
        yield piece


# ---------------------------------------------------------------------------------------------- registry


def _untrained(settings: Settings, setting: str) -> bool:
    """Whether ``setting`` still names its default run and that run has not been trained."""
    ref = getattr(settings, setting)
    return bool(ref == Settings.model_fields[setting].default and not Path(ref).exists())


def _require(settings: Settings, setting: str, command: str) -> str:
    """The model ``setting`` names; the default run must have been trained, any other reference (a path, a hub
    id) is the loader's to check."""
    if _untrained(settings, setting):
        raise ModelNotFoundError(f"no model at {getattr(settings, setting)} yet; train it with: {command}")
    return str(getattr(settings, setting))


PROFILES: dict[str, TaskProfile] = {
    profile.name: profile
    for profile in (
        TaskProfile(
            "Sentiment",
            "Label social-media posts positive, neutral or negative (one post per line).",
            "Paste social-media posts, one per line, and I will label each one positive, neutral or negative.",
            classify,
            "sentiment_model",
        ),
        TaskProfile(
            "Summarize",
            "Summarise a legal document; long ones are read part by part.",
            "Paste a legal document (a contract, a judgment, a policy) and I will summarise it.",
            summarize,
            "summarization_model",
            untrained="smollm2-135m",  # the base model summarises too
            max_chars=MAX_DOCUMENT_CHARS,
        ),
        TaskProfile(
            "Caption",
            "Caption a product photo for an online shop.",
            "Attach a product photo (PNG, JPEG, WebP or GIF, at most 10 MB) and I will caption it.",
            caption,
            "captioning_model",
            uploads=True,
        ),
    )
}


async def answer(profile: TaskProfile, text: str, uploads: Sequence[Upload], settings: Settings) -> AsyncIterator[str]:
    """The profile's answer; errors a person can act on (no model yet, a bad upload) are raised as they are."""
    try:
        async for piece in profile.answer(text, uploads, settings):
            yield piece
    except TunedeskError:
        raise
    except (OSError, ValueError) as exc:
        raise TunedeskError(f"{profile.name}: {exc}") from exc
