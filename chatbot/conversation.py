"""A conversation as backends see it: a system prompt, then alternating user/assistant messages.

Decisions:
- Messages are plain ``{"role": ..., "content": ...}`` dicts: the shape of the chat JSONL that the
  data stage writes and both fine-tune paths read, so nothing converts between stages.
- Trimming to a context window drops the oldest whole turns first. The system prompt and the newest
  message are never dropped; if they alone do not fit, that is an error the user sees, not a
  silently truncated question.
- ``respond`` is the one function the chat UI calls (history in, text pieces out); it holds no
  Chainlit objects, so it is tested without a browser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypedDict

from tunedesk.errors import ContextOverflowError

if TYPE_CHECKING:
    from chatbot.backends.base import Backend, GenerationParams

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


def with_system_prompt(history: Sequence[Message], system_prompt: str | None) -> list[Message]:
    """History with ``system_prompt`` first (replacing any system message already there)."""
    turns = [message for message in history if message["role"] != "system"]
    if not system_prompt:
        return list(history)
    return [{"role": "system", "content": system_prompt}, *turns]


def fit_to_window(
    messages: Sequence[Message], count_tokens: Callable[[Sequence[Message]], int], budget: int
) -> list[Message]:
    """Drop the oldest non-system turns until ``count_tokens(messages) <= budget``."""
    fitted = list(messages)
    if count_tokens(fitted) <= budget:
        return fitted
    system = [m for m in fitted if m["role"] == "system"]
    turns = [m for m in fitted if m["role"] != "system"]
    while len(turns) > 1:
        turns.pop(0)
        while len(turns) > 1 and turns[0]["role"] != "user":  # never start on an assistant reply
            turns.pop(0)
        if count_tokens([*system, *turns]) <= budget:
            return [*system, *turns]
    needed = count_tokens([*system, *turns])
    raise ContextOverflowError(
        f"the system prompt and the latest message take {needed} tokens, but only {budget} fit "
        "(context window minus max_new_tokens); shorten the message or raise TUNEDESK_CONTEXT_WINDOW"
    )


async def respond(
    backend: Backend, history: Sequence[Message], params: GenerationParams, system_prompt: str | None
) -> AsyncIterator[str]:
    """Stream the assistant's next answer to ``history`` (which ends with the user's message)."""
    if not history or history[-1]["role"] != "user":
        raise ValueError("history must end with a user message")
    async for piece in backend.stream(with_system_prompt(history, system_prompt), params):
        yield piece
