"""``echo``: a real, deterministic backend for tests and demos. It needs no model.

It answers by repeating the latest user message, word by word, and numbers follow-ups ("You said
(message 2): ..."), so a UI, the eval harness or a benchmark can be exercised end to end, history
included, without loading weights. Words stand in for tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from chatbot.backends.base import GenerationParams, ThreadedBackend
from chatbot.conversation import Message


class EchoBackend(ThreadedBackend):
    name: ClassVar[str] = "echo"

    def __init__(self, context_window: int = 2048) -> None:
        self.context_window = context_window

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(message["content"].split()) + 1 for message in messages)

    def generate(self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[str]:
        asked = [m["content"] for m in messages if m["role"] == "user"]
        said = "said:" if len(asked) == 1 else f"said (message {len(asked)}):"
        words = ["You", *said.split(), *asked[-1].split()][: params.max_new_tokens]
        for index, word in enumerate(words):
            if cancel.is_set():
                return
            yield word if index == 0 else f" {word}"

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "echo"}
