from collections.abc import Sequence

import pytest

from chatbot.conversation import Message, fit_to_window, with_system_prompt
from tunedesk.errors import ContextOverflowError


def words(messages: Sequence[Message]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def conversation(turns: int) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": "be kind"}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i} here"})
        messages.append({"role": "assistant", "content": f"answer {i} here"})
    messages.append({"role": "user", "content": "latest question here"})
    return messages


def test_fits_unchanged_when_there_is_room() -> None:
    messages = conversation(2)
    assert fit_to_window(messages, words, 1000) == messages


def test_drops_oldest_turns_first_and_keeps_system_and_latest() -> None:
    messages = conversation(5)  # 2 + 5*6 + 3 = 35 words
    fitted = fit_to_window(messages, words, 17)
    assert fitted[0] == {"role": "system", "content": "be kind"}
    assert fitted[-1]["content"] == "latest question here"
    assert [m["content"] for m in fitted[1:3]] == ["question 3 here", "answer 3 here"]
    assert words(fitted) <= 17
    assert fitted[1]["role"] == "user"  # never starts on an orphaned assistant reply


def test_overflow_when_system_and_latest_alone_do_not_fit() -> None:
    with pytest.raises(ContextOverflowError, match="5 tokens, but only 4 fit"):
        fit_to_window(conversation(3), words, 4)


def test_system_prompt_replaces_any_existing_one() -> None:
    history: list[Message] = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert with_system_prompt(history, "new") == [
        {"role": "system", "content": "new"},
        {"role": "user", "content": "hi"},
    ]
