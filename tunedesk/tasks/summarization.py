"""Legal-document summarisation: map-reduce with a causal LM, and the lead-k and TextRank baselines.

A document that fits one chunk is summarised in one call. A longer one is cut at its section headings
(``data.legal_summary.split_sections``) into chunks of at most ``chunk_chars`` characters; each chunk
is summarised on its own (map) and the chunk notes are combined by one more call (reduce). The result
carries the chunking (how many chunks, their character spans, each chunk's note), so a reader can
see what the final summary was made from.

Decisions:
- Three prompts, one per call kind (a whole document, one part of a longer one, combining the parts'
  notes), each a system message followed by the text as the user message, through the model's own
  chat template. ``finetune.summarization`` builds its training examples from these same functions,
  so the model is trained on exactly the calls it is asked at inference.
- A part with nothing worth keeping (boilerplate) is taught to answer ``NO_KEY_TERMS``; such notes are
  left out of the reduce call's input.
- ``chunk_chars`` comes from the run directory's manifest (what the adapter was trained with), else
  ``DEFAULT_CHUNK_CHARS`` (about 1,000 SmolLM2 tokens of legal English). A chunk that still does not
  fit the model's context with the answer's budget is cut at its end, and the cut is recorded.
- The model is loaded through ``tunedesk.prepare.ensure_transformers``: a registry name, a hub id, a
  transformers directory, or a LoRA run directory (merged once into a cached copy: on CPU a merged model
  decodes faster than base + unmerged adapter, and its logits are the same).
- Greedy decoding with a bounded ``max_new_tokens``: summaries must be reproducible for evaluation.
- Streaming (``Summarizer.stream``) is a plain iterator of text pieces of the final summary; the map
  calls run first, and ``on_chunk(index, total, note)`` reports each as it finishes. An async caller
  iterates it in a worker thread (``asyncio.to_thread``/starlette's ``iterate_in_threadpool``). The
  ``SummaryResult`` is on ``stream.result`` once the iterator is exhausted.
- Baselines: ``lead_k`` (the first k sentences, headings skipped) and ``textrank`` (TF-IDF cosine
  sentence graph, PageRank by power iteration in numpy: no graph library needed).
- Heavy imports (torch, transformers, scikit-learn) happen inside the functions that use them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data.legal_summary import split_sections
from tunedesk.errors import GenerationError
from tunedesk.models import MANIFEST

RUN_TASK = "summarization"  # the "task" a summarisation run's manifest carries (its "kind" stays "lora")
DEFAULT_CHUNK_CHARS = 4000
DEFAULT_MAX_NEW_TOKENS = 200  # reference summaries are 89-169 SmolLM2 tokens
NO_KEY_TERMS = "No key terms."

SYSTEM_DOCUMENT = (
    "You summarise legal documents. Write a summary of 3 to 6 sentences: the parties, the date, the key "
    "amounts and terms, and the governing law. Use only facts stated in the document."
)
SYSTEM_PART = (
    "You summarise legal documents. This is one part of a longer document. State the key facts of this part "
    "(parties, dates, amounts, terms, governing law) in one to three sentences, using only facts stated in it. "
    f'If it has none, answer "{NO_KEY_TERMS}"'
)
SYSTEM_COMBINE = (
    "You summarise legal documents. These are notes on the parts of one document, in order. Write a summary of "
    "the document of 3 to 6 sentences: the parties, the date, the key amounts and terms, and the governing law. "
    "Use only facts stated in the notes."
)

Messages = list[dict[str, str]]


def document_messages(document: str) -> Messages:
    return [{"role": "system", "content": SYSTEM_DOCUMENT}, {"role": "user", "content": document.strip()}]


def part_messages(part: str) -> Messages:
    return [{"role": "system", "content": SYSTEM_PART}, {"role": "user", "content": part.strip()}]


def combine_input(notes: Sequence[str]) -> str:
    """The reduce call's text: the parts' notes in order, numbered; parts without key terms left out."""
    kept = [(i, note.strip()) for i, note in enumerate(notes, start=1) if note.strip() and not _empty_note(note)]
    return "\n".join(f"Part {i}: {note}" for i, note in kept) or "\n".join(
        f"Part {i}: {note.strip()}" for i, note in enumerate(notes, start=1)
    )


def combine_messages(notes: Sequence[str]) -> Messages:
    return [{"role": "system", "content": SYSTEM_COMBINE}, {"role": "user", "content": combine_input(notes)}]


def _empty_note(note: str) -> bool:
    return note.strip().rstrip(".").lower() == NO_KEY_TERMS.rstrip(".").lower()


@dataclass
class Chunk:
    index: int
    start: int  # character span in the document
    end: int
    text: str


def plan_chunks(document: str, chunk_chars: int) -> list[Chunk]:
    """``document`` cut at section boundaries into chunks of at most ``chunk_chars``, with their spans."""
    chunks: list[Chunk] = []
    at = 0
    for index, piece in enumerate(split_sections(document, chunk_chars)):
        chunks.append(Chunk(index, at, at + len(piece), piece))
        at += len(piece)
    return chunks


@dataclass
class ChunkNote:
    """One map call: the chunk's span and what the model wrote about it."""

    index: int
    start: int
    end: int
    summary: str
    truncated_chars: int = 0  # cut from the chunk's end to fit the context


@dataclass
class SummaryResult:
    summary: str
    chunks: list[ChunkNote] = field(default_factory=list)  # empty when the document was one chunk
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    final_truncated_chars: int = 0  # cut from the final call's text (a one-chunk document, or the notes)

    @property
    def combined(self) -> bool:
        return len(self.chunks) > 1

    def metadata(self) -> dict[str, Any]:
        """The chunking, JSON-able: ``chunks`` (count), ``spans``, ``chunk_summaries``, ``truncated_chars``."""
        return {
            "chunks": max(1, len(self.chunks)),
            "chunk_chars": self.chunk_chars,
            "spans": [[c.start, c.end] for c in self.chunks],
            "chunk_summaries": [c.summary for c in self.chunks],
            "truncated_chars": sum(c.truncated_chars for c in self.chunks) + self.final_truncated_chars,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, **self.metadata(), "chunk_notes": [asdict(c) for c in self.chunks]}


ChunkCallback = Callable[[int, int, str], None]  # (chunk index, chunk count, its note)


class Summarizer:
    """A causal LM that summarises documents map-reduce style; see the module docstring."""

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        chunk_chars: int | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        repetition_penalty: float = 1.0,
        device: str = "auto",
        home: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from tunedesk.prepare import ensure_transformers
        from tunedesk.settings import load_settings

        hf_logging.disable_progress_bar()
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        path = ensure_transformers(model, home or load_settings().home)
        self.model_ref = model
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        loaded: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        self.model = loaded.to(self.device).eval()
        trained = run_settings(model)
        self.chunk_chars = chunk_chars or int(trained.get("chunk_chars") or DEFAULT_CHUNK_CHARS)
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        limit = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.context = int(limit)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model_ref,
            "path": str(self.path),
            "chunk_chars": self.chunk_chars,
            "max_new_tokens": self.max_new_tokens,
            "device": self.device,
        }

    # ------------------------------------------------------------------------------------------ generation

    def _prompt(self, messages: Messages) -> tuple[list[int], int]:
        """Token ids of ``messages`` ready for the answer, and how many characters of the user text were cut
        so that the prompt and ``max_new_tokens`` fit the context."""
        user = messages[-1]["content"]
        budget = self.context - self.max_new_tokens
        cut = 0
        while True:
            shown = [*messages[:-1], {"role": "user", "content": user[: len(user) - cut]}]
            ids = self._encode(shown)
            if len(ids) <= budget:
                return ids, cut
            if cut >= len(user):
                raise GenerationError(f"the prompt alone is {len(ids)} tokens; the context is {self.context}")
            keep = int((len(user) - cut) * budget / len(ids) * 0.95)
            cut = len(user) - max(0, keep)

    def _encode(self, messages: Messages) -> list[int]:
        encoded: Any = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(encoded, "input_ids") or isinstance(encoded, dict):  # transformers 5 returns a BatchEncoding
            encoded = encoded["input_ids"]
        return list(encoded)

    def _generate_kwargs(self, prompt: list[int]) -> dict[str, Any]:
        import torch

        input_ids = torch.tensor([prompt], device=self.device)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "repetition_penalty": self.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }

    def complete(self, messages: Messages) -> tuple[str, int]:
        """The model's greedy answer to ``messages`` and the characters cut to fit the context."""
        import torch

        prompt, cut = self._prompt(messages)
        with torch.inference_mode():
            output = self.model.generate(**self._generate_kwargs(prompt))
        text = str(self.tokenizer.decode(output[0, len(prompt) :], skip_special_tokens=True))
        return text.strip(), cut

    def complete_stream(self, messages: Messages) -> Iterator[str]:
        """The answer as text pieces while it is generated (``TextIteratorStreamer``, generation in a thread)."""
        import torch
        from transformers import TextIteratorStreamer

        prompt, _ = self._prompt(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**self._generate_kwargs(prompt), streamer=streamer)
            except BaseException as exc:  # re-raised in the consuming thread
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="tunedesk-summarize", daemon=True)
        worker.start()
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            worker.join()
        if failure:
            raise GenerationError(f"summary generation failed: {failure[0]}") from failure[0]

    # ------------------------------------------------------------------------------------------ map-reduce

    def summarize(self, document: str, on_chunk: ChunkCallback | None = None) -> SummaryResult:
        """The document's summary, by map-reduce when it is longer than one chunk."""
        stream = self.stream(document, on_chunk, streaming=False)
        for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def stream(self, document: str, on_chunk: ChunkCallback | None = None, streaming: bool = True) -> SummaryStream:
        """An iterator of the final summary's text pieces; ``.result`` holds the whole result afterwards."""
        return SummaryStream(self, document, on_chunk, streaming)


class SummaryStream:
    """Iterate to run the summary: the map calls first (reported through ``on_chunk``), then the final call,
    whose text is yielded piece by piece. ``result`` is set when the iteration ends."""

    def __init__(self, summarizer: Summarizer, document: str, on_chunk: ChunkCallback | None, streaming: bool) -> None:
        self.summarizer = summarizer
        self.document = document
        self.on_chunk = on_chunk
        self.streaming = streaming
        self.result: SummaryResult | None = None

    def __iter__(self) -> Iterator[str]:
        model = self.summarizer
        chunks = plan_chunks(self.document, model.chunk_chars)
        notes: list[ChunkNote] = []
        if len(chunks) > 1:
            for chunk in chunks:
                text, cut = model.complete(part_messages(chunk.text))
                notes.append(ChunkNote(chunk.index, chunk.start, chunk.end, text, cut))
                if self.on_chunk is not None:
                    self.on_chunk(chunk.index, len(chunks), text)
            final = combine_messages([note.summary for note in notes])
        else:
            final = document_messages(self.document)
        _, final_cut = model._prompt(final)
        if self.streaming:
            pieces = []
            for piece in model.complete_stream(final):
                pieces.append(piece)
                yield piece
            summary = "".join(pieces).strip()
        else:
            summary, _ = model.complete(final)
            yield summary
        self.result = SummaryResult(summary, notes, model.chunk_chars, final_cut)


def run_settings(model: str | Path) -> dict[str, Any]:
    """The ``summarization`` settings a run directory was trained with (``chunk_chars``...); {} otherwise."""
    manifest = Path(model) / MANIFEST
    if not manifest.is_file():
        return {}
    settings = json.loads(manifest.read_text(encoding="utf-8")).get(RUN_TASK) or {}
    return dict(settings) if isinstance(settings, dict) else {}


# ------------------------------------------------------------------------------------------------ baselines

# A full stop after these does not end a sentence (lower case, without the final dot).
_ABBREVIATIONS = frozenset(
    "inc ltd corp co llc l.l.c no nos sec secs art arts para mr mrs ms dr st v vs e.g i.e u.s etc cf jr sr "
    "approx dept est fig jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_CLAUSE_NUMBER = re.compile(r"^(?:\(?[a-z0-9]{1,3}\)|\d{1,3}(?:\.\d{1,3})*|[IVXLC]+)\.?$")
# "Section 3.2.", "ARTICLE IV", "1.1", "(a)" opening a paragraph: a label, not part of its first sentence.
_CLAUSE_LABEL = re.compile(
    r"^(?:(?:Section|SECTION|Sec\.|§|Article|ARTICLE)\s*(?:\d+(?:\.\d+)*|[IVXLC]+)\.?|\d{1,3}(?:\.\d{1,3})*\.?|\([a-z0-9]{1,3}\))\s+"
)


def split_sentences(document: str) -> list[str]:
    """Sentences of ``document`` in order, whitespace collapsed; heading-only paragraphs are skipped, and a
    clause label opening a paragraph ("Section 3.2.", "1.1", "(a)") is left out of its first sentence.

    A paragraph (text between blank lines) without a sentence end is one unit ("WHEREAS, ...;")."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", document):
        text = " ".join(paragraph.split())
        labelled = _CLAUSE_LABEL.match(text)
        text = text[labelled.end() :] if labelled else text
        if not text or _is_heading(text) or (labelled and len(text.split()) <= 6):  # "Section 6. Termination."
            continue
        start = 0
        for match in _BOUNDARY.finditer(text):
            before = text[start : match.start()].rsplit(" ", 1)[-1].rstrip(".!?\"')]").lower()
            if before in _ABBREVIATIONS or _CLAUSE_NUMBER.match(before) or (len(before) == 1 and before.isalpha()):
                continue
            sentences.append(text[start : match.start()].strip())
            start = match.end()
        tail = text[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if not _CLAUSE_NUMBER.match(s)]


def _is_heading(text: str) -> bool:
    """A title or heading: short and not ending like a sentence, or all capitals."""
    words = text.split()
    return (len(words) <= 8 and text[-1] not in ".;:!?") or (text.upper() == text and len(words) <= 12)


def lead_k(document: str, k: int = 3) -> str:
    """The first ``k`` sentences of the document."""
    return " ".join(split_sentences(document)[:k])


def textrank(document: str, k: int = 4, damping: float = 0.85, iterations: int = 100, tol: float = 1e-8) -> str:
    """The ``k`` most central sentences in document order: PageRank over a TF-IDF cosine similarity graph.

    Edges are weighted by similarity (rows normalised to transition probabilities; a sentence similar to
    none jumps uniformly), as in Mihalcea & Tarau's TextRank with cosine instead of word overlap."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    units = split_sentences(document)
    if len(units) <= k:
        return " ".join(units)
    try:
        vectors = TfidfVectorizer(stop_words="english").fit_transform(units)
    except ValueError:  # nothing but stop words: no graph to rank, fall back to the lead
        return " ".join(units[:k])
    similarity = (vectors @ vectors.T).toarray()  # rows are L2-normalised: dot product = cosine
    np.fill_diagonal(similarity, 0.0)
    n = len(units)
    totals = similarity.sum(axis=1, keepdims=True)
    transition = np.where(totals > 0, similarity / np.where(totals > 0, totals, 1.0), 1.0 / n)
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        updated = (1 - damping) / n + damping * transition.T @ rank
        if np.abs(updated - rank).sum() < tol:
            rank = updated
            break
        rank = updated
    top = sorted(np.argsort(-rank, kind="stable")[:k].tolist())
    return " ".join(units[i] for i in top)
