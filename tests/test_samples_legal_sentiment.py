"""The legal-summary and sentiment samples: reproducible, balanced, faithful, and read by their readers
with errors that name file:line:field."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from data.legal_summary import read_documents, split_sections
from data.schema import SentimentExample, SummaryExample
from data.sentiment import read_posts
from data.support_chat import DataError

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "samples" / "legal"
SENTIMENT = ROOT / "data" / "samples" / "sentiment"


def load_generator(folder: Path) -> ModuleType:
    """A sample's generate.py, imported by path (data/samples is not a package)."""
    name = f"_sample_generator_{folder.name}"
    spec = importlib.util.spec_from_file_location(name, folder / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def legal_generator() -> ModuleType:
    return load_generator(LEGAL)


@pytest.fixture(scope="module")
def sentiment_generator() -> ModuleType:
    return load_generator(SENTIMENT)


@pytest.fixture(scope="module")
def documents() -> list[SummaryExample]:
    return list(read_documents(LEGAL / "documents.jsonl"))


@pytest.fixture(scope="module")
def posts() -> list[SentimentExample]:
    return list(read_posts(SENTIMENT / "posts.csv"))


# Regeneration


@pytest.mark.parametrize(("folder", "name"), [(LEGAL, "documents.jsonl"), (SENTIMENT, "posts.csv")])
def test_regeneration_is_byte_identical(tmp_path: Path, folder: Path, name: str) -> None:
    generator = load_generator(folder)
    out = tmp_path / name
    generator.main(["--out", str(out)])
    assert out.read_bytes() == (folder / name).read_bytes(), f"run python {folder / 'generate.py'} and commit"
    generator.main(["--out", str(out), "--seed", "7"])
    assert out.read_bytes() != (folder / name).read_bytes(), "the seed must matter"
    assert [p.name for p in tmp_path.iterdir()] == [name], "no temp file left behind"


# Legal documents


def test_legal_sample_has_many_kinds_and_lengths(legal_generator: ModuleType, documents: list[SummaryExample]) -> None:
    records = legal_generator.generate()
    assert [r["id"] for r in records] == [d.id for d in documents]
    kinds = Counter(r["kind"] for r in records)
    assert len(documents) >= 60 and len(kinds) >= 9 and min(kinds.values()) >= 3, kinds
    lengths = sorted(len(d.document) for d in documents)
    assert lengths[0] < 4_000 and sum(n > 40_000 for n in lengths) >= 5, lengths
    assert sum(5_000 <= n <= 40_000 for n in lengths) >= 20, "lengths in between, not only the extremes"
    assert len({d.title for d in documents}) == len(documents)


def test_long_documents_are_many_distinct_sections(documents: list[SummaryExample]) -> None:
    long = [d for d in documents if len(d.document) > 40_000]
    assert len(long) >= 5
    for doc in long:
        paragraphs = [p.strip() for p in doc.document.split("\n\n") if len(p.strip()) >= 80]
        repeated = [p[:60] for p, n in Counter(paragraphs).items() if n > 1]
        assert not repeated, f"{doc.id} repeats paragraphs: {repeated[:3]}"
        assert len(paragraphs) >= 100, f"{doc.id}: {len(paragraphs)} paragraphs"
        assert len(split_sections(doc.document)) >= 30


MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DATE = re.compile(rf"\b(?:{MONTHS}) \d{{1,2}}, \d{{4}}")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[,.]\d+)*")
CAPITALISED_RUN = re.compile(r"(?<![\w'])[A-Z][\w'&-]*\.?(?: [A-Z][\w'&-]*\.?)*")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])(?<!\bv\.)(?<!\bNo\.)\s+(?=[A-Z])")  # not after "X v. Y", "Case No."


def _contains(document: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(text)}(?!\w)", document) is not None


def unsupported(document: str, summary: str) -> list[str]:
    """Dates, numbers and capitalised names (runs like "Harborview Analytics LLC") of ``summary`` that
    ``document`` lacks. A sentence's first word may be capitalised only for being first ("The", "In
    Alpha LLC v. ..."): it is then checked in lower case."""
    missing = [date for date in DATE.findall(summary) if date not in document]
    missing += [n for n in NUMBER.findall(summary) if not re.search(rf"(?<!\d){re.escape(n)}(?!\d)", document)]
    for sentence in SENTENCE_BREAK.split(summary):
        for match in CAPITALISED_RUN.finditer(sentence):
            run = match.group().rstrip(".")
            if _contains(document, run):
                continue
            first, _, rest = run.partition(" ")
            if match.start() == 0 and _contains(document, first.lower()) and (not rest or _contains(document, rest)):
                continue
            missing.append(run)
    return missing


def test_summaries_state_only_what_their_document_says(documents: list[SummaryExample]) -> None:
    for doc in documents:
        assert not unsupported(doc.document, doc.summary), f"{doc.source}: {unsupported(doc.document, doc.summary)}"
        sentences = len(SENTENCE_BREAK.split(doc.summary.strip()))
        assert 3 <= sentences <= 6, f"{doc.id}: {sentences} sentences"
        assert DATE.search(doc.summary) and NUMBER.search(doc.summary), f"{doc.id} states no date or number"


def test_the_faithfulness_check_catches_invented_facts(documents: list[SummaryExample]) -> None:
    doc = next(d for d in documents if "$" in d.summary)
    amount = re.search(r"\$([\d,]+)", doc.summary)
    assert amount is not None
    assert unsupported(doc.document, doc.summary.replace(amount.group(1), "9,876,543", 1)) == ["9,876,543"]
    assert unsupported(doc.document, doc.summary + " Zanzibar Widgets Ltd guarantees it.") == ["Zanzibar Widgets Ltd"]
    assert unsupported(doc.document, doc.summary + " It was signed on February 30, 1999.")


# split_sections


def test_split_sections_cuts_at_headings_and_keeps_them_with_their_text() -> None:
    document = (
        "MASTER AGREEMENT\n\nThis Agreement is made by Alpha LLC and Beta Inc.\n\n"
        "WHEREAS, Alpha makes widgets that Beta wishes to buy in large numbers every year;\n\n"
        "ARTICLE IV\nDEFINITIONS\n\n"
        "Section 3. Payment. Beta pays within thirty days.\n"
        "3.2 Termination. Either party may end this Agreement on notice.\n"
        "It may not be ended in the first year.\n\n"
        "I. BACKGROUND\n\nThe parties met in 2020.\n"
    )
    sections = split_sections(document)
    assert "".join(sections) == document
    assert [s.splitlines()[0] for s in sections] == [
        "MASTER AGREEMENT",
        "WHEREAS, Alpha makes widgets that Beta wishes to buy in large numbers every year;",
        "ARTICLE IV",
        "3.2 Termination. Either party may end this Agreement on notice.",
        "I. BACKGROUND",
    ]
    assert sections[2].endswith("Beta pays within thirty days.\n"), "a heading alone stays with its text"
    assert split_sections("no headings here\nat all") == ["no headings here\nat all"]


def test_split_sections_covers_a_long_sample_document(documents: list[SummaryExample]) -> None:
    doc = max(documents, key=lambda d: len(d.document))
    sections = split_sections(doc.document)
    assert len(sections) >= 30 and "".join(sections) == doc.document
    assert max(len(s) for s in sections) < len(doc.document) / 10
    heading = re.compile(r"(ARTICLE|Section|SCHEDULE|WHEREAS|NOW, THEREFORE|IN WITNESS|\d+\.|[A-Z][A-Z0-9 ,.'&-]+$)")
    first_lines = [s.lstrip().splitlines()[0] for s in sections[1:]]
    assert all(heading.match(line) for line in first_lines), [line for line in first_lines if not heading.match(line)]
    chunks = split_sections(doc.document, max_chars=8_000)
    assert "".join(chunks) == doc.document and all(len(c) <= 8_000 for c in chunks)
    assert len(doc.document) // 8_000 < len(chunks) < len(sections)


# Sentiment posts


def test_posts_are_many_balanced_and_distinct(posts: list[SentimentExample]) -> None:
    labels = Counter(p.label for p in posts)
    assert len(posts) >= 1_500 and min(labels.values()) >= 400, labels
    assert max(labels.values()) <= 1.2 * min(labels.values())
    assert len({p.text.casefold() for p in posts}) == len(posts), "duplicate texts"
    assert all(len(p.text) <= 280 for p in posts)


def test_posts_look_like_social_media(posts: list[SentimentExample]) -> None:
    def share(pattern: str) -> float:
        return sum(bool(re.search(pattern, p.text)) for p in posts) / len(posts)

    assert share(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]") > 0.3, "emojis"
    assert share(r"#[A-Z][a-z]+[A-Z]\w*") > 0.15, "camelCase hashtags"
    assert any("#WorstServiceEver" in p.text for p in posts)
    assert share(r"@\w+") > 0.15, "mentions"
    assert share(r"https?://\S+") > 0.05, "links"
    assert share(r"([a-z])\1\1") > 0.03, "elongations"
    assert share(r"\b[A-Z]{4,}\b") > 0.08, "ALL CAPS"
    assert share(r"\b(u|ur|rn|tbh|ngl|lol|lmao|smh|fr|idk|bruh)\b") > 0.15, "slang"
    assert share(r"\b(definately|beleive|agian|untill|becuase|deliverd|pakage|cusotmer|honeslty|wating|realy)\b") > 0.01


def test_sarcasm_is_flagged_by_the_generator_and_labelled_negative(
    sentiment_generator: ModuleType, posts: list[SentimentExample]
) -> None:
    generated = sentiment_generator.generate()
    assert [(g.id, g.text, g.label) for g in generated] == [(p.id, p.text, p.label) for p in posts]
    sarcastic = [g for g in generated if g.sarcastic]
    assert len(sarcastic) >= 0.05 * len(generated)
    assert {g.label for g in sarcastic} == {"negative"}
    praise = re.compile(
        r"\b(great|love|best|amazing|perfect|thanks|thx|fantastic|glad|legends|premium|stellar|recommend)\b"
    )
    with_praise = [g for g in sarcastic if praise.search(re.sub(r"(\w)\1{2,}", r"\1", g.text.lower()))]  # "greaaat"
    assert len(with_praise) >= 0.9 * len(sarcastic), "sarcasm is praise words on a bad event (typos may hide a few)"


def test_no_single_word_separates_the_labels(posts: list[SentimentExample]) -> None:
    words = [set(re.findall(r"[#@]?\w+", p.text.lower())) for p in posts]
    labels = [p.label for p in posts]
    best = 0.0
    for word in set().union(*words):
        present = Counter(label for ws, label in zip(words, labels, strict=True) if word in ws)
        absent = Counter(label for ws, label in zip(words, labels, strict=True) if word not in ws)
        best = max(best, (max(present.values()) + max(absent.values(), default=0)) / len(posts))
    assert best < 0.55, f"one word predicts the label {best:.0%} of the time"
    for word in ("love", "great", "best"):
        assert sum(word in ws and label == "negative" for ws, label in zip(words, labels, strict=True)) >= 10, word
    for brand in ("skynimbus", "parcelo", "zapcart", "streamly"):
        seen = {label for ws, label in zip(words, labels, strict=True) if brand in ws}
        assert seen == {"negative", "neutral", "positive"}, f"{brand} only in {seen}"


# Readers


def test_readers_parse_the_samples(documents: list[SummaryExample], posts: list[SentimentExample]) -> None:
    assert documents[0].source == f"{LEGAL / 'documents.jsonl'}:1" and documents[-1].source.endswith(
        f":{len(documents)}"
    )
    assert all(d.title and d.summary and d.document for d in documents)
    assert posts[0].source == f"{SENTIMENT / 'posts.csv'}:2"
    assert len({p.id for p in posts}) == len(posts)


def test_documents_from_csv_with_multiline_fields(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "title", "document", "summary"])
        writer.writerow(["a", "", "ARTICLE I\nTERM\n\nOne year.", "A one-year term."])
        writer.writerow(["b", "Lease", "Rent is $5.", "Rent is $5."])
    first, second = read_documents(path)
    assert (first.id, first.title, first.document, first.source) == (
        "a",
        None,
        "ARTICLE I\nTERM\n\nOne year.",
        f"{path}:2",
    )
    assert (second.title, second.source) == ("Lease", f"{path}:6")


def test_posts_accept_tweet_eval_labels_and_any_case(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text("text,label\nugh,0\nok then,1\nyay,2\nfine,NEUTRAL\nmeh, Negative \n", encoding="utf-8")
    assert [(p.id, p.label) for p in read_posts(path)] == [
        ("tweets-2", "negative"),
        ("tweets-3", "neutral"),
        ("tweets-4", "positive"),
        ("tweets-5", "neutral"),
        ("tweets-6", "negative"),
    ]
    jsonl = tmp_path / "tweets.jsonl"
    jsonl.write_text(json.dumps({"id": 7, "text": "love it", "label": 2}) + "\n", encoding="utf-8")
    (post,) = read_posts(jsonl)
    assert (post.id, post.label, post.source) == ("7", "positive", f"{jsonl}:1")


@pytest.mark.parametrize(
    ("reader", "name", "content", "message"),
    [
        (read_documents, "docs.jsonl", '{"id": "a", "document": "d", "summary": "s"}\n{"id": \n', "docs.jsonl:2: record: invalid JSON"),
        (read_documents, "docs.jsonl", '{"id": "a", "document": "d"}\n', "docs.jsonl:1: summary: missing"),
        (read_documents, "docs.jsonl", '{"id": "a", "document": "  ", "summary": "s"}\n', "docs.jsonl:1: document: empty"),
        (read_documents, "docs.jsonl", '{"id": "a", "document": "d", "summmary": "s"}\n', "docs.jsonl:1: summmary: unknown field"),
        (read_documents, "docs.jsonl", '{"id": "a", "document": 5, "summary": "s"}\n', "docs.jsonl:1: document: expected text"),
        (read_documents, "docs.jsonl", '["a", "d", "s"]\n', "docs.jsonl:1: record: expected a JSON object"),
        (read_documents, "docs.jsonl", '{"id":"a","document":"d","summary":"s"}\n\n{"id":"a","document":"e","summary":"t"}\n', "docs.jsonl:3: id: 'a' already used on line 1"),
        (read_documents, "docs.csv", "id,title,document\na,t,d\n", "docs.csv:1: header: missing column(s) summary"),
        (read_documents, "docs.csv", "id,document,summary,notes\na,d,s,n\n", "docs.csv:1: header: unknown column(s) notes"),
        (read_documents, "docs.csv", 'id,document,summary\na,"two\nlines",s\nb,d,\n', "docs.csv:4: summary: empty"),
        (read_documents, "docs.csv", "id,document,summary\na,d,s\n\nb,caf\xe9 terms,s\n".encode("latin-1"), "docs.csv:4: document: not UTF-8 (byte 0xe9 at column 6)"),
        (read_posts, "posts.csv", "id,text,label\np1,meh,happy\n", "posts.csv:2: label: unknown label 'happy'"),
        (read_posts, "posts.csv", "id,text,label\np1,meh,3\n", "posts.csv:2: label: unknown label '3'"),
        (read_posts, "posts.csv", "id,text,label\np1,meh,\n", "posts.csv:2: label: empty"),
        (read_posts, "posts.csv", "id,text,label\np1,meh,neutral,extra\n", "posts.csv:2: record: 4 values for 3 columns"),
        (read_posts, "posts.csv", "id,text,label\n,meh,neutral\n", "posts.csv:2: id: empty"),
        (read_posts, "posts.csv", "id,text,label\np1,ok,neutral\np2,d\xe9j\xe0 vu,neutral\n".encode("latin-1"), "posts.csv:3: text: not UTF-8 (byte 0xe9"),
        (read_posts, "posts.jsonl", '{"id": "p1", "text": 12, "label": 0}\n', "posts.jsonl:1: text: expected text"),
        (read_posts, "posts.jsonl", '{"id": "p1", "text": "hi"}\n', "posts.jsonl:1: label: missing"),
        (read_posts, "posts.jsonl", '{"id": "p1", "text": "hi", "label": true}\n', "posts.jsonl:1: label: unknown label True"),
        (read_posts, "posts.jsonl", '{"id": "p1", "text": "hi", "label": 1, "lang": "en"}\n', "posts.jsonl:1: lang: unknown field"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_field(
    tmp_path: Path, reader: object, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as raised:
        list(reader(path))  # type: ignore[operator]
    assert str(raised.value).startswith(str(tmp_path / message))


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list(read_documents(tmp_path / "nope.jsonl"))


# Data cards


@pytest.mark.parametrize(("folder", "data"), [(LEGAL, "documents.jsonl"), (SENTIMENT, "posts.csv")])
def test_data_cards_state_the_real_counts(folder: Path, data: str) -> None:
    card = (folder / "README.md").read_text(encoding="utf-8")
    generator = load_generator(folder)
    if folder == LEGAL:
        counts = Counter(r["kind"] for r in generator.generate())
        total = sum(counts.values())
    else:
        counts = Counter(p.label for p in generator.generate())
        counts["sarcastic (labelled negative)"] = sum(p.sarcastic for p in generator.generate())
        total = sum(n for k, n in counts.items() if not k.startswith("sarcastic"))
    for key, count in counts.items():
        assert re.search(rf"\|\s*`?{re.escape(key)}`?\s*\|\s*{count:,}\s*\|", card), f"{key}: {count} not in the card"
    assert re.search(rf"\|\s*\*\*total\*\*\s*\|\s*\*\*{total:,}\*\*\s*\|", card)
    assert f"python data/samples/{folder.name}/generate.py" in card and "Apache-2.0" in card
    assert f"--seed {generator.DEFAULT_SEED}" in card
