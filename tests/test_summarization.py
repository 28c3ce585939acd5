"""Legal summarisation: split and prepare, LoRA train -> load -> map-reduce predict on a tiny random Llama,
the lead-k and TextRank baselines, the faithfulness check, and the eval suite end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from data.legal_summary import read_documents
from data.schema import ChatExample, SummaryExample
from eval.tasks import TaskSuite
from finetune.summarization import SummarizationConfig, app, prepare, split_documents, train
from tunedesk.errors import ConfigError
from tunedesk.models import MANIFEST
from tunedesk.tasks.summarization import (
    NO_KEY_TERMS,
    SYSTEM_COMBINE,
    SYSTEM_DOCUMENT,
    SYSTEM_PART,
    Summarizer,
    document_messages,
    lead_k,
    plan_chunks,
    split_sentences,
    textrank,
)
from tunedesk.tasks.summarization_facts import extract_facts, faithfulness

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data/samples/legal/documents.jsonl"
BOILERPLATE = (
    "Each Party shall keep the other Party's confidential information in confidence and use it only for "
    "the purposes of this Agreement. Neither Party may assign this Agreement without the prior written consent "
    "of the other Party, which shall not be unreasonably withheld.\n\n"
)


def long_document(n: int) -> SummaryExample:
    """A lease whose facts sit in different sections, padded with boilerplate so it needs several chunks."""
    tenant = ["Harborview Analytics LLC", "Quillstone Foods Inc.", "Marrowfield Labs Ltd"][n % 3]
    rent = f"{4000 + 500 * n:,}"
    document = (
        f"LEASE AGREEMENT\n\nThis Lease is made on March {n + 3}, 2021 between Oakridge Property Holdings LLC "
        f'("Landlord") and {tenant} ("Tenant").\n\n'
        "1. Premises\n\n" + BOILERPLATE + f"2. Rent\n\nTenant shall pay monthly rent of ${rent} on the first day "
        "of each month.\n\n" + "3. General\n\n" + BOILERPLATE * 2 + "4. Governing Law\n\n"
        "This Lease is governed by the laws of the State of Oregon.\n"
    )
    summary = (
        f"Oakridge Property Holdings LLC leases premises to {tenant} from March {n + 3}, 2021. "
        f"The tenant pays monthly rent of ${rent}. The lease is governed by the laws of the State of Oregon."
    )
    return SummaryExample(id=f"lease-{n:02d}", document=document, summary=summary)


def short_document(n: int) -> SummaryExample:
    document = (
        f"NOTICE\n\nOn June {n + 1}, 2022 Pellbay Analytics Inc. agreed to pay Redhaven Robotics Corporation "
        f"${1000 * (n + 1):,} within ten (10) days."
    )
    summary = f"Pellbay Analytics Inc. agreed on June {n + 1}, 2022 to pay ${1000 * (n + 1):,} within 10 days."
    return SummaryExample(id=f"note-{n:02d}", document=document, summary=summary)


def write_documents(path: Path, examples: list[SummaryExample]) -> Path:
    path.write_text("".join(json.dumps(e.model_dump(exclude={"source"}, exclude_none=True)) + "\n" for e in examples))
    return path


CHUNK_CHARS = 400  # the long documents above are 3-4 chunks


def config_for(tmp: Path, **lora: Any) -> SummarizationConfig:
    documents = write_documents(
        tmp / "docs.jsonl", [*(long_document(n) for n in range(8)), *map(short_document, range(4))]
    )
    return SummarizationConfig.model_validate(
        {
            "documents": documents,
            "prepared": tmp / "prepared",
            "chunk_chars": CHUNK_CHARS,
            "validation_documents": 2,
            "test_documents": 2,
            "lora": {
                "model": "tiny-random-llama",
                "output": str(tmp / "run"),
                "rank": 4,
                "alpha": 8,
                "learning_rate": 1e-2,
                "batch_size": 4,
                "max_steps": 10,
                "eval_every": 5,
                "log_every": 1,
                "save_every": 5,
                "max_seq_length": 512,
                **lora,
            },
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_home: Path) -> tuple[SummarizationConfig, Any]:
    tmp = tmp_path_factory.mktemp("summarization")
    config = config_for(tmp)
    result, _ = train(config, progress=False, home=shared_home)
    return config, result


# ------------------------------------------------------------------------------------------ split and prepare


def test_split_is_by_id_hash_whatever_the_file_order() -> None:
    examples = list(read_documents(SAMPLE))
    splits = split_documents(examples, validation=8, test=8, seed=0)
    again = split_documents(list(reversed(examples)), validation=8, test=8, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"test": 8, "validation": 8, "train": 48}
    assert {k: sorted(e.id for e in v) for k, v in splits.items()} == {
        k: sorted(e.id for e in v) for k, v in again.items()
    }
    ids = [e.id for split in splits.values() for e in split]
    assert len(set(ids)) == 64
    other = split_documents(examples, validation=8, test=8, seed=1)
    assert {e.id for e in other["test"]} != {e.id for e in splits["test"]}
    with pytest.raises(ConfigError, match="leaves no training document"):
        split_documents(examples[:10], validation=5, test=5, seed=0)


def test_prepare_writes_the_calls_of_the_map_reduce_with_grounded_answers(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    report = prepare(config)
    assert report.documents == {"train": 8, "validation": 2, "test": 2}
    split = json.loads((config.prepared / "split.json").read_text())
    assert sorted(split["ids"]["test"]) == sorted(
        json.loads(line)["id"] for line in open(config.split_path("test", True))
    )
    conversations = [json.loads(line) for line in config.split_path("train").read_text().splitlines()]
    for record in conversations:
        ChatExample.model_validate(record)  # the Azure / local fine-tune format
    by_prompt: dict[str, list[list[dict[str, str]]]] = {SYSTEM_DOCUMENT: [], SYSTEM_PART: [], SYSTEM_COMBINE: []}
    for record in conversations:
        by_prompt[record["messages"][0]["content"]].append(record["messages"])
    assert by_prompt[SYSTEM_DOCUMENT] and by_prompt[SYSTEM_PART] and by_prompt[SYSTEM_COMBINE]
    for messages in by_prompt[SYSTEM_PART]:
        chunk, note = messages[1]["content"], messages[2]["content"]
        assert len(chunk) <= CHUNK_CHARS
        if note != NO_KEY_TERMS:  # every fact the note states is in its own chunk
            assert faithfulness(note, chunk).unsupported == [], (note, chunk)
    rent_notes = [m[2]["content"] for m in by_prompt[SYSTEM_PART] if "monthly rent" in m[1]["content"]]
    assert rent_notes and all("rent of $" in note for note in rent_notes)
    assert any(m[2]["content"] == NO_KEY_TERMS for m in by_prompt[SYSTEM_PART])  # boilerplate learns to say so
    long_ids = [e for e in read_documents(config.split_path("train", True)) if len(e.document) > CHUNK_CHARS]
    assert len(by_prompt[SYSTEM_COMBINE]) == len(long_ids)
    assert {m[2]["content"] for m in by_prompt[SYSTEM_COMBINE]} == {e.summary for e in long_ids}


def test_config_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("documents: x.jsonl\nchunk_size: 10\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: chunk_size: Extra inputs"):
        SummarizationConfig.from_yaml(path)
    path.write_text("lora:\n  rnk: 4\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: lora\.rnk: Extra inputs"):
        SummarizationConfig.from_yaml(path)
    path.write_text("lora:\n  train: other.jsonl\n")
    with pytest.raises(ConfigError, match=r"lora\.train: set by prepare"):
        SummarizationConfig.from_yaml(path)
    shipped = SummarizationConfig.from_yaml(ROOT / "finetune/configs/summarization-smollm2.yaml", max_steps=3)
    assert shipped.train_config().max_steps == 3 and shipped.train_config().output == Path("runs/summarization-smollm2")
    assert (
        (ROOT / "finetune/configs/summarization-smollm2.yaml")
        .read_text()
        .startswith("# tunedesk summarization train --config finetune/configs/summarization-smollm2.yaml")
    )


# ------------------------------------------------------------------------------------------ train, load, predict


def test_train_writes_a_loadable_run_and_the_loss_falls(trained: tuple[SummarizationConfig, Any]) -> None:
    config, result = trained
    losses = [r["loss"] for r in result.history if r.get("event") == "train"]
    assert losses[-1] < losses[0]
    manifest = json.loads((result.output / MANIFEST).read_text())
    assert manifest["kind"] == "lora" and manifest["task"] == "summarization"
    assert manifest["summarization"]["chunk_chars"] == CHUNK_CHARS
    assert manifest["data"]["train"]["truncated"] == 0


def test_map_reduce_predict_carries_the_chunking(trained: tuple[SummarizationConfig, Any], shared_home: Path) -> None:
    config, result = trained
    summarizer = Summarizer(str(result.output), max_new_tokens=6, home=shared_home)
    assert summarizer.chunk_chars == CHUNK_CHARS  # read from the run
    document = long_document(11).document
    seen: list[tuple[int, int]] = []
    outcome = summarizer.summarize(document, on_chunk=lambda i, n, note: seen.append((i, n)))
    chunks = plan_chunks(document, CHUNK_CHARS)
    assert len(chunks) > 1 and outcome.combined
    meta = outcome.metadata()
    assert meta["chunks"] == len(chunks) == len(meta["chunk_summaries"]) == len(seen)
    assert meta["spans"][0][0] == 0 and meta["spans"][-1][1] == len(document)
    assert all(a[1] == b[0] for a, b in zip(meta["spans"], meta["spans"][1:], strict=False))  # contiguous, lossless
    assert "".join(document[s:e] for s, e in meta["spans"]) == document
    stream = summarizer.stream(document)
    pieces = list(stream)
    assert stream.result is not None and "".join(pieces).strip() == stream.result.summary == outcome.summary
    one = summarizer.summarize(short_document(0).document)
    assert not one.combined and one.metadata()["chunks"] == 1 and one.metadata()["spans"] == []
    assert one.metadata()["truncated_chars"] == 0


def test_a_chunk_longer_than_the_context_is_cut_and_the_cut_recorded(
    trained: tuple[SummarizationConfig, Any], shared_home: Path
) -> None:
    config, result = trained
    summarizer = Summarizer(str(result.output), chunk_chars=10**6, max_new_tokens=4, home=shared_home)
    document = long_document(0).document * 40  # one chunk of ~50k characters, far over 2,048 tokens
    outcome = summarizer.summarize(document)
    assert outcome.metadata()["chunks"] == 1
    cut = outcome.metadata()["truncated_chars"]
    assert 0 < cut < len(document)
    kept = document[: len(document) - cut]
    assert summarizer._prompt(document_messages(kept))[1] == 0  # what was kept fits as it is


def test_predict_command_writes_summaries_with_chunks(trained: tuple[SummarizationConfig, Any], tmp_path: Path) -> None:
    config, result = trained
    out = tmp_path / "out.jsonl"
    outcome = CliRunner().invoke(
        app,
        [
            "predict",
            str(result.output),
            str(config.split_path("test", True)),
            "--out",
            str(out),
            "--max-new-tokens",
            "4",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    test_docs = list(read_documents(config.split_path("test", True)))
    assert [r["id"] for r in rows] == [d.id for d in test_docs]
    for row, doc in zip(rows, test_docs, strict=True):
        assert row["chunks"] == max(
            1, len(plan_chunks(doc.document, CHUNK_CHARS)) if len(doc.document) > CHUNK_CHARS else 1
        )
        assert row["reference"] == doc.summary


# ------------------------------------------------------------------------------------------ baselines


def test_sentences_skip_headings_and_keep_abbreviations() -> None:
    document = (
        "SERVICES AGREEMENT\n\nThis Agreement is made by Acme Widgets Inc. and Foo Bar Ltd. on May 1, 2020. "
        "It runs for 2 years.\n\n3.2 Fees\n\nSection 3.2. The fee is $5,000. No refunds are due.\n"
    )
    assert split_sentences(document) == [
        "This Agreement is made by Acme Widgets Inc. and Foo Bar Ltd. on May 1, 2020.",
        "It runs for 2 years.",
        "The fee is $5,000.",
        "No refunds are due.",
    ]
    assert (
        lead_k(document, 2)
        == "This Agreement is made by Acme Widgets Inc. and Foo Bar Ltd. on May 1, 2020. It runs for 2 years."
    )


def test_textrank_picks_the_central_sentences_in_document_order() -> None:
    document = (
        "The tenant pays rent monthly to the landlord. "
        "Parking is free on Sundays near the harbour. "
        "The landlord may raise the rent once a year. "
        "Late rent owed to the landlord bears interest. "
        "Bananas are yellow."
    )
    # the three rent/landlord sentences are linked to each other; parking and bananas to nothing
    two = textrank(document, k=2)
    assert "Parking" not in two and "Bananas" not in two and two.count("landlord") == 2
    assert two == "The tenant pays rent monthly to the landlord. The landlord may raise the rent once a year."
    three = textrank(document, k=3)
    assert three == (
        "The tenant pays rent monthly to the landlord. The landlord may raise the rent once a year. "
        "Late rent owed to the landlord bears interest."
    )
    assert textrank("One sentence only.", k=3) == "One sentence only."


# ------------------------------------------------------------------------------------------ faithfulness


def test_faithfulness_normalises_numbers_and_dates_and_lists_what_is_made_up() -> None:
    source = (
        'On 19 July 2022 Rookwell Textiles Corporation (the "Licensee") agreed to pay 1200 dollars within ten (10) '
        "days and 5 percent interest, under the laws of the State of Washington."
    )
    summary = (
        "Rookwell Textiles Corporation's agreement of July 19, 2022 makes the Licensee pay $1,200.00 within 10 days "
        "at 5% interest and $3,500 on 2022-08-01; Tidefield Outfitters Inc. guarantees it under the laws of the State "
        "of Washington."
    )
    checked = faithfulness(summary, source)
    found = {(f.kind, f.key) for f in checked.facts}
    assert {("date", "2022-07-19"), ("number", "1200"), ("number", "10"), ("number", "5")} <= found
    assert {("name", "rookwell textiles corporation"), ("name", "licensee"), ("name", "state of washington")} <= found
    assert sorted(f.text for f in checked.unsupported) == ["$3,500", "2022-08-01", "Tidefield Outfitters Inc."]
    assert checked.share == pytest.approx(1 - 3 / len(checked.facts))
    assert faithfulness("The parties agreed.", source).share is None  # nothing to check is not "all supported"
    assert faithfulness("It started in July 2022.", source).unsupported == []  # a month of a full date


def test_names_joined_by_and_are_two_parties_but_places_stay_whole() -> None:
    names = {
        f.text
        for f in extract_facts("Yarrowhaven Freight Ltd and Bellbridge Foods LLC agree under England and Wales law.")
        if f.kind == "name"
    }
    assert names == {"Yarrowhaven Freight Ltd", "Bellbridge Foods LLC", "England and Wales"}


def test_sample_reference_summaries_are_faithful_and_swapped_ones_are_not() -> None:
    examples = list(read_documents(SAMPLE))
    for example in examples:
        assert faithfulness(example.summary, example.document).unsupported == [], example.id
    swapped = [faithfulness(examples[i].summary, examples[i - 1].document) for i in range(len(examples))]
    assert all(check.unsupported for check in swapped)


# ------------------------------------------------------------------------------------------ eval


def test_eval_suite_scores_every_model_with_rouge_and_chunking(trained: tuple[SummarizationConfig, Any]) -> None:
    from eval.tasks import run_task
    from eval.tasks.summarization import MODEL_KINDS

    config, result = trained
    suite = TaskSuite.model_validate(
        {
            "task": "summarization",
            "name": "summarization-test",
            "dataset": {"path": str(config.split_path("test", True))},
            "models": [
                {"name": "lora", "kind": "lora", "model": str(result.output), "settings": {"max_new_tokens": 4}},
                {"name": "lead-3", "kind": "lead"},
                {"name": "textrank", "kind": "textrank", "settings": {"sentences": 2}},
                {"name": "later", "kind": "lora", "model": str(config.prepared / "no-such-run"), "optional": True},
            ],
            "primary_metric": "rougeL",
        }
    )
    run = run_task(suite)
    assert [r.name for r in run.results] == ["lora", "lead-3", "textrank"]
    assert "later" in run.skipped
    for model in run.results:
        assert {"rouge1", "rouge2", "rougeL", "bleu", "faithfulness"} <= set(model.scores)
        assert len(model.example_details) == len(run.examples) == 2
        assert all("chunks" in d and "length_ratio" in d for d in model.example_details)
    lead = run.results[1]
    assert lead.scores["faithfulness"].value == 1.0  # an extract states only what the source does
    assert lead.scores["rougeL"].value > 0
    lora_chunks = [d["chunks"] for d in run.results[0].example_details]
    docs = list(read_documents(config.split_path("test", True)))
    assert lora_chunks == [len(plan_chunks(d.document, CHUNK_CHARS)) for d in docs]
    assert "<table>" in run.sections[0] and "lead-3" in run.sections[0]
    shipped = yaml.safe_load((ROOT / "eval/suites/summarization.yaml").read_text())
    loaded = TaskSuite.model_validate(shipped)
    assert loaded.primary_metric == "rougeL" and all(m.kind in MODEL_KINDS for m in loaded.models)
    bad = {**shipped, "models": [{"name": "lead", "kind": "lead", "settings": {"k": 3}}]}
    with pytest.raises(ConfigError, match=r"models\.0\.settings\.k"):
        run_task(TaskSuite.model_validate({**bad, "dataset": {"path": str(config.split_path("test", True))}}))
