"""Readers: the four shapes support logs come in, and errors that name file:line:field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.support_chat import DataError, read_conversations


def test_csv_with_one_row_per_turn(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text(
        "conversation_id,turn,speaker,text,intent,resolved\n"
        "c1,2,Agent,Sure: it ships tomorrow.,order_status,yes\n"
        'c1,1,Customer,"Hi, where is my order?",,\n'
        "c2,1,customer,I want a refund,refund,no\n"
        "c2,2,support,Of course.,,\n"
    )
    first, second = read_conversations(path)
    assert [(t.role, t.content) for t in first.turns] == [
        ("user", "Hi, where is my order?"),
        ("assistant", "Sure: it ships tomorrow."),
    ]
    assert (first.id, first.intent, first.resolved, first.source) == ("c1", "order_status", True, f"{path}:2")
    assert (second.intent, second.resolved) == ("refund", False)


def test_transcripts_with_continuation_lines(tmp_path: Path) -> None:
    path = tmp_path / "chats.txt"
    path.write_text(
        "Customer: my card was charged twice\nfor order 1234\nAgent: I'm sorry, let me look.\n\n"
        "---\nCaller: hello\nRep: hi there\n"
    )
    first, second = read_conversations(path)
    assert first.turns[0].content == "my card was charged twice\nfor order 1234"
    assert [t.role for t in first.turns] == ["user", "assistant"]
    assert [t.role for t in second.turns] == ["user", "assistant"] and second.source == f"{path}:6"


def test_chat_jsonl_and_bitext_style_instructions(tmp_path: Path) -> None:
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text(
        json.dumps({"id": "x", "intent": "refund", "messages": [{"role": "user", "content": "hi"}]}) + "\n"
    )
    (conversation,) = read_conversations(jsonl)
    assert (conversation.id, conversation.intent, conversation.turns[0].role) == ("x", "refund", "user")

    bitext = tmp_path / "bitext.csv"
    bitext.write_text("flags,instruction,category,intent,response\nB,cancel order 5,ORDER,cancel_order,I can help.\n")
    (pair,) = read_conversations(bitext)
    assert [(t.role, t.content) for t in pair.turns] == [("user", "cancel order 5"), ("assistant", "I can help.")]
    assert pair.intent == "cancel_order"


def test_speaker_map_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "chats.txt"
    path.write_text("Kunde: Wo ist mein Paket?\nBerater: Ich schaue nach.\n")
    with pytest.raises(DataError, match=r"chats.txt:1: speaker: .*--speaker"):
        list(read_conversations(path))
    (conversation,) = read_conversations(path, speakers={"Kunde": "user", "Berater": "assistant"})
    assert [t.role for t in conversation.turns] == ["user", "assistant"]
    with pytest.raises(DataError, match="unknown role 'bot'"):
        list(read_conversations(path, speakers={"Kunde": "bot"}))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "raw.csv",
            "conversation_id,turn,speaker,text\nc1,one,Customer,hi\n",
            "raw.csv:2: turn: expected a number, got 'one'",
        ),
        (
            "raw.csv",
            "conversation_id,turn,speaker,text\nc1,1,Robot,hi\n",
            "raw.csv:2: speaker: unknown speaker 'Robot'",
        ),
        ("raw.csv", "id,speaker,text\n", "raw.csv:1: header: missing column(s) conversation_id, turn"),
        (
            "raw.csv",
            "conversation_id,turn,speaker,text,resolved\nc1,1,agent,hi,maybe\n",
            "raw.csv:2: resolved: expected true/false",
        ),
        (
            "chat.jsonl",
            '{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [\n',
            "chat.jsonl:2: invalid JSON",
        ),
        ("chat.jsonl", '{"messages": [{"role": "user"}]}\n', "chat.jsonl:1: messages[0].content: missing or not text"),
        (
            "chat.jsonl",
            '{"messages": [{"role": "wizard", "content": "x"}]}\n',
            "chat.jsonl:1: messages[0].role: unknown speaker 'wizard'",
        ),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as raised:
        list(read_conversations(path))
    assert str(raised.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(":", 1)[1] in str(raised.value)


def test_wrong_encoding_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_bytes(
        "conversation_id,turn,speaker,text\nc1,1,Customer,ok\nc1,2,Agent,d\xe9j\xe0 vu\n".encode("latin-1")
    )
    with pytest.raises(DataError, match=r"raw.csv:3: not UTF-8 \(byte 0xe9 at column 13\)"):
        list(read_conversations(path))
