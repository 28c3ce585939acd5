"""Legal-document summarisation: LoRA on the causal LM (SmolLM2 by default) through ``finetune.lora``.

``prepare`` splits the documents and writes chat JSONL (``train``/``validation``/``test.jsonl``: the
Azure OpenAI fine-tune format, so ``tunedesk finetune azure submit`` can be sent the same file);
``train`` runs ``finetune.lora.train`` on it and adds the summarisation settings to the run's manifest.

Decisions:
- The split is by document, ordered by ``sha256(f"{split_seed}:{id}")``: the first ``test_documents``
  are test, the next ``validation_documents`` validation, the rest train. It depends only on the ids
  and the seed, never on file order. Each split's documents are also written as they are
  (``<split>-documents.jsonl``) for evaluation, which needs the whole document, not chat turns.
- Training examples are the calls the map-reduce summariser makes (``tunedesk.tasks.summarization``),
  so nothing is truncated blindly and the model learns every step it performs:
  - a document of one chunk (``chunk_chars``): the document -> its reference summary;
  - a longer one, per chunk: the chunk -> the reference summary's sentences grounded in it. A sentence
    is grounded in the chunk that states the most of its facts (dates, numbers, names; the
    faithfulness extractor's), if that is at least half of them; a sentence without facts goes to the
    chunk sharing the most of its words, if that is at least half. Chunks with no sentence are
    boilerplate: ``plain_parts_per_document`` of them (seeded pick) learn to answer ``NO_KEY_TERMS``,
    the others are not trained on (they would be most of the tokens and teach one answer);
  - and one reduce example per long document: the chunks' notes -> the reference summary.
- Token budget (SmolLM2's tokenizer, about 4.4 characters a token): the 64 sample documents are 226k
  tokens, up to 10.3k each, longer than a 2-core CPU can train on in 30 minutes and than SmolLM2's 8k
  context. With ``chunk_chars: 4000`` a chunk is at most ~1,000 tokens; with the system prompt and an
  answer of at most ~170 tokens an example fits ``max_seq_length: 1536``, and the few that do not are
  cut at the end by ``finetune.lora`` (counted as ``truncated`` in the manifest).
- The run directory is ``finetune.lora``'s (``"kind": "lora"``, so every ``--model`` loads it); its
  manifest gains ``"task": "summarization"`` and ``"summarization": {chunk_chars, documents, sha256,
  split}``, which the summariser reads so inference chunks as training did.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ConfigDict, Field, ValidationError

from data.legal_summary import SUMMARY_FIELDS, read_documents
from data.records import read_records, text_field
from data.schema import SummaryExample
from finetune.config import RecipeConfig, read_mapping
from finetune.lora import TrainConfig, TrainResult
from tunedesk.console import err, friendly_errors
from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import atomic_writer, write_text_atomically
from tunedesk.models import MANIFEST, read_manifest, sha256_file
from tunedesk.tasks.summarization import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_MAX_NEW_TOKENS,
    NO_KEY_TERMS,
    RUN_TASK,
    Chunk,
    Messages,
    combine_messages,
    document_messages,
    part_messages,
    plan_chunks,
    split_sentences,
)
from tunedesk.tasks.summarization_facts import SourceIndex, extract_facts

SPLITS = ("train", "validation", "test")
SPLIT_FILE = "split.json"
_WORDS = re.compile(r"[a-z0-9]{3,}")


class SummarizationConfig(RecipeConfig):
    """Prepare the documents and fine-tune; the ``lora`` mapping holds ``finetune.lora.TrainConfig`` fields."""

    model_config = ConfigDict(extra="forbid")

    documents: Path = Field(Path("data/samples/legal/documents.jsonl"), description="Documents with summaries.")
    prepared: Path = Field(Path("build/summarization"), description="Where prepare writes the split files.")
    chunk_chars: int = Field(DEFAULT_CHUNK_CHARS, ge=200, description="Longest chunk sent to the model, in chars.")
    validation_documents: int = Field(8, ge=0)
    test_documents: int = Field(8, ge=0)
    split_seed: int = Field(0, description="Seed of the document split (hash order of seed:id).")
    plain_parts_per_document: int = Field(1, ge=0, description="Boilerplate chunks per document taught NO_KEY_TERMS.")
    lora: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields (not train/validation).")

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> SummarizationConfig:
        """Read a YAML config; an override is a top-level field or else a ``lora`` field (model, epochs...)."""
        raw = read_mapping(path)
        for key, value in overrides.items():
            if value is None:
                continue
            if key in cls.model_fields:
                raw[key] = value
            else:
                raw.setdefault("lora", {})[key] = value
        config = cls.validated(path, raw)
        try:
            config.train_config()
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return config

    def split_path(self, split: str, documents: bool = False) -> Path:
        return self.prepared / (f"{split}-documents.jsonl" if documents else f"{split}.jsonl")

    def train_config(self) -> TrainConfig:
        """The LoRA recipe on the prepared files."""
        taken = {"train", "validation"} & set(self.lora)
        if taken:
            raise ConfigError(f"lora.{sorted(taken)[0]}: set by prepare (the files under 'prepared'); remove it")
        values = {
            "output": "runs/summarization-smollm2",
            "max_seq_length": 1536,
            **self.lora,
            "train": self.split_path("train"),
            "validation": self.split_path("validation") if self.validation_documents else None,
        }
        try:
            return TrainConfig.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_problems(exc, prefix="lora.")) from None


def _problems(exc: ValidationError, prefix: str = "") -> str:
    return "; ".join(f"{prefix}{name or '(config)'}: {message}" for name, message in validation_problems(exc))


# ---------------------------------------------------------------------------------------------- prepare


def split_documents(
    examples: list[SummaryExample], validation: int, test: int, seed: int
) -> dict[str, list[SummaryExample]]:
    """Train/validation/test by the hash order of ``seed:id`` (stable under reordering or additions elsewhere)."""
    if validation + test >= len(examples):
        raise ConfigError(
            f"validation_documents + test_documents = {validation + test} leaves no training document "
            f"out of {len(examples)}"
        )
    ordered = sorted(examples, key=lambda e: hashlib.sha256(f"{seed}:{e.id}".encode()).hexdigest())
    return {
        "test": ordered[:test],
        "validation": ordered[test : test + validation],
        "train": ordered[test + validation :],
    }


def ground_sentences(summary: str, chunks: list[Chunk]) -> list[list[str]]:
    """The summary's sentences grouped by the chunk that states them (see the module docstring)."""
    indexes = [SourceIndex(chunk.text) for chunk in chunks]
    chunk_words = [set(_WORDS.findall(chunk.text.lower())) for chunk in chunks]
    grouped: list[list[str]] = [[] for _ in chunks]
    for sentence in split_sentences(summary):
        facts = extract_facts(sentence)
        words = set(_WORDS.findall(sentence.lower()))
        scores = [
            (sum(index.supports(f) for f in facts), len(words & seen))
            for index, seen in zip(indexes, chunk_words, strict=True)
        ]
        best = max(range(len(chunks)), key=lambda i: (scores[i], -i))
        found, shared = scores[best]
        if (facts and 2 * found >= len(facts) and found > 0) or (not facts and words and 2 * shared >= len(words)):
            grouped[best].append(sentence)
    return grouped


@dataclass
class Conversation:
    kind: str  # document, part, plain (a part answered NO_KEY_TERMS), combine
    document_id: str
    messages: Messages


def document_conversations(
    example: SummaryExample, chunk_chars: int, plain_parts: int, rng: random.Random
) -> list[Conversation]:
    """The training conversations of one document: the calls the summariser would make, with their answers."""

    def answered(messages: Messages, answer: str) -> Messages:
        return [*messages, {"role": "assistant", "content": answer}]

    chunks = plan_chunks(example.document, chunk_chars)
    if len(chunks) == 1:
        return [Conversation("document", example.id, answered(document_messages(example.document), example.summary))]
    grouped = ground_sentences(example.summary, chunks)
    notes = [" ".join(sentences) or NO_KEY_TERMS for sentences in grouped]
    plain = [chunk for chunk, sentences in zip(chunks, grouped, strict=True) if not sentences]
    taught = {chunk.index for chunk in rng.sample(plain, min(plain_parts, len(plain)))}
    conversations = [
        Conversation("part" if grouped[chunk.index] else "plain", example.id, answered(part_messages(chunk.text), note))
        for chunk, note in zip(chunks, notes, strict=True)
        if grouped[chunk.index] or chunk.index in taught
    ]
    conversations.append(Conversation("combine", example.id, answered(combine_messages(notes), example.summary)))
    return conversations


@dataclass
class PrepareReport:
    prepared: Path
    documents: dict[str, int]
    conversations: dict[str, dict[str, int]]  # split -> kind -> count
    characters: dict[str, int] = field(default_factory=dict)  # split -> characters of all conversations

    def as_dict(self) -> dict[str, Any]:
        return {
            "prepared": str(self.prepared),
            "documents": self.documents,
            "conversations": self.conversations,
            "characters": self.characters,
        }


def prepare(config: SummarizationConfig) -> PrepareReport:
    """Split the documents and write each split as chat JSONL and as documents; every file atomically."""
    examples = list(read_documents(config.documents))
    splits = split_documents(examples, config.validation_documents, config.test_documents, config.split_seed)
    report = PrepareReport(config.prepared, {}, {})
    for split in SPLITS:
        rng = random.Random(f"{config.split_seed}:{split}")
        conversations = [
            conversation
            for example in sorted(splits[split], key=lambda e: e.id)
            for conversation in document_conversations(
                example, config.chunk_chars, config.plain_parts_per_document, rng
            )
        ]
        report.documents[split] = len(splits[split])
        report.conversations[split] = dict(Counter(c.kind for c in conversations))
        report.characters[split] = sum(len(m["content"]) for c in conversations for m in c.messages)
        if not splits[split]:
            continue
        with atomic_writer(config.split_path(split)) as handle:
            for conversation in conversations:
                handle.write(json.dumps({"messages": conversation.messages}, ensure_ascii=False) + "\n")
        with atomic_writer(config.split_path(split, documents=True)) as handle:
            for example in sorted(splits[split], key=lambda e: e.id):
                record = example.model_dump(exclude={"source"}, exclude_none=True)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = {
        "documents": str(config.documents),
        "sha256": sha256_file(config.documents),
        "chunk_chars": config.chunk_chars,
        "split_seed": config.split_seed,
        "ids": {split: sorted(e.id for e in splits[split]) for split in SPLITS},
        **report.as_dict(),
    }
    write_text_atomically(config.prepared / SPLIT_FILE, json.dumps(summary, indent=2) + "\n")
    return report


# ---------------------------------------------------------------------------------------------- train


def train(
    config: SummarizationConfig, *, resume: bool = False, progress: bool = True, home: Path | None = None
) -> tuple[TrainResult, PrepareReport]:
    """Prepare the split, fine-tune with ``finetune.lora``, and record the summarisation settings in the run."""
    from finetune.lora import train as lora_train

    report = prepare(config)
    recipe = config.train_config()
    result = lora_train(recipe, resume=resume, progress=progress, home=home)
    manifest = read_manifest(recipe.output)
    if manifest is not None:  # only the first of several processes writes the run
        manifest["task"] = RUN_TASK
        manifest[RUN_TASK] = {
            "chunk_chars": config.chunk_chars,
            "documents": str(config.documents),
            "documents_sha256": sha256_file(config.documents),
            "split_seed": config.split_seed,
            "prepared": report.as_dict(),
        }
        write_text_atomically(recipe.output / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return result, report


# ---------------------------------------------------------------------------------------------- predict


def read_inputs(path: Path) -> list[tuple[str, str, str | None]]:
    """``(id, document, reference summary or None)`` from JSONL or CSV; only ``id`` and ``document`` are needed."""
    rows = []
    for line, record in read_records(path, SUMMARY_FIELDS, required=("id", "document"), allowed_extra=("source",)):
        reference = text_field(path, line, record, "summary", required=False) or None
        document = text_field(path, line, record, "document", strip=False)
        rows.append((text_field(path, line, record, "id"), document, reference))
    return rows


def predict_file(
    model: str, inputs: Path, out: Path, chunk_chars: int | None, max_new_tokens: int, limit: int | None
) -> int:
    """Summarise every document of ``inputs`` into JSONL at ``out`` (written whole at the end)."""
    from tqdm.auto import tqdm

    from tunedesk.tasks.summarization import Summarizer

    rows = read_inputs(inputs)[:limit]
    summarizer = Summarizer(model, chunk_chars=chunk_chars, max_new_tokens=max_new_tokens)
    with atomic_writer(out) as handle:
        for example_id, document, reference in tqdm(rows, desc="summarize", unit="doc"):
            result = summarizer.summarize(document)
            record = {"id": example_id, **result.as_dict()}
            if reference is not None:
                record["reference"] = reference
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(rows)


# ---------------------------------------------------------------------------------------------- CLI

app = typer.Typer(
    help="Legal-document summarisation: prepare, LoRA fine-tune, map-reduce predict.", no_args_is_help=True
)
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="YAML recipe, e.g. finetune/configs/summarization-smollm2.yaml.")
]


@app.command("prepare")
@friendly_errors
def prepare_command(config: ConfigOpt) -> None:
    """Split the documents and write train/validation/test chat JSONL (the Azure fine-tune format too).

    Example: tunedesk summarization prepare --config finetune/configs/summarization-smollm2.yaml"""
    report = prepare(SummarizationConfig.from_yaml(config))
    err.print(f"split files written to {report.prepared}")
    typer.echo(json.dumps(report.as_dict()))


@app.command("train")
@friendly_errors
def train_command(
    config: ConfigOpt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Run directory (overrides lora.output).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base model (overrides lora.model).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (overrides lora.epochs).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed (overrides lora.seed).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --output from its latest checkpoint.")] = False,
) -> None:
    """Prepare the split and fine-tune a LoRA summariser; writes a run directory that --model accepts.

    Example: tunedesk summarization train --config finetune/configs/summarization-smollm2.yaml"""
    recipe = SummarizationConfig.from_yaml(
        config, output=output, model=model, epochs=epochs, max_steps=max_steps, seed=seed
    )
    result, _ = train(recipe, resume=resume)
    err.print(f"run written to {result.output}; try it: tunedesk summarization predict {result.output} DOCUMENTS.jsonl")
    summary = {
        "run": str(result.output),
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "best_val_loss": result.best_val_loss,
    }
    typer.echo(json.dumps(summary))


@app.command("predict")
@friendly_errors
def predict_command(
    model: Annotated[str, typer.Argument(help="Run directory, registry name, transformers directory or hub id.")],
    inputs: Annotated[Path, typer.Argument(help="JSONL or CSV with id and document (summary optional).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL: summary and chunking per document.")] = Path(
        "summaries.jsonl"
    ),
    chunk_chars: Annotated[int | None, typer.Option(help="Chunk size; default: the run's, else 4000.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer per call, in tokens.")] = DEFAULT_MAX_NEW_TOKENS,
    limit: Annotated[int | None, typer.Option(help="Only the first N documents.")] = None,
) -> None:
    """Summarise documents (map-reduce over sections for long ones); writes JSONL with the chunking of each.

    Example: tunedesk summarization predict runs/summarization-smollm2 build/summarization/test-documents.jsonl"""
    count = predict_file(model, inputs, out, chunk_chars, max_new_tokens, limit)
    err.print(f"{count} summaries written to {out}")
