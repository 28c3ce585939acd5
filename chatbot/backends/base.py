"""The Backend seam: one small protocol that the chat UI, the eval harness and the benchmarks share.

Decisions:
- A backend streams text pieces for a list of chat messages (``{"role", "content"}`` dicts, the
  OpenAI/Azure shape that the fine-tune JSONL uses) with typed generation parameters.
- Capability flags (``can_stream``, ``needs_key``) instead of a class hierarchy.
- Local engines are synchronous and CPU-bound. ``ThreadedBackend`` runs their token loop in a worker
  thread and hands pieces to the event loop, so the UI stays responsive; closing the async
  iterator (the user pressed stop, the client went away) tells the worker to stop at the next token.
- Every backend that knows its tokenizer fits the conversation to its context window before
  generating: oldest turns go first, the system prompt and the newest message never do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from chatbot.conversation import Message, fit_to_window
from tunedesk.errors import GenerationError, TunedeskError
from tunedesk.settings import Settings


class GenerationParams(BaseModel):
    """How to decode. ``temperature == 0`` means greedy. ``adapter`` names one of the LoRA adapters a
    backend was configured with (the onnx backend switches per request); ``None`` is the base model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=1)
    repetition_penalty: float = Field(1.0, ge=1.0, le=2.0)
    seed: int | None = None
    adapter: str | None = Field(default=None, min_length=1)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class GenerationStats:
    """What the last request cost: filled in by backends that can measure it."""

    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV cache came from an earlier request
    completion_tokens: int = 0
    ttft_s: float = 0.0  # from the call to the first generated token
    total_s: float = 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        decode_time = self.total_s - self.ttft_s
        return (self.completion_tokens - 1) / decode_time if self.completion_tokens > 1 and decode_time > 0 else 0.0


@runtime_checkable
class Backend(Protocol):
    """What every backend offers."""

    name: ClassVar[str]
    can_stream: ClassVar[bool]
    needs_key: ClassVar[bool]

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[str]: ...

    async def complete(self, messages: Sequence[Message], params: GenerationParams) -> str: ...

    def describe(self) -> dict[str, Any]: ...

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        """Make what loading needs (a converted model...) ahead of time; a no-op when nothing is needed."""


class ThreadedBackend:
    """Base for in-process engines: implement ``count_tokens`` and ``generate`` (sync, token by token)."""

    name: ClassVar[str] = "threaded"
    can_stream: ClassVar[bool] = True
    needs_key: ClassVar[bool] = False
    context_window: int = 2048
    last_stats: GenerationStats | None = None

    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Prompt token ids for ``messages``, with the model's chat template."""
        raise NotImplementedError

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.encode(messages))

    def answer_budget(self, prompt: Sequence[int], params: GenerationParams) -> int:
        """How many tokens the answer may take: ``max_new_tokens``, or less near the window's end."""
        budget = min(params.max_new_tokens, self.context_window - len(prompt))
        if budget <= 0:
            raise GenerationError(
                f"prompt of {len(prompt)} tokens leaves no room in a {self.context_window}-token window"
            )
        return budget

    def generate(self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[str]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        return None

    def fit(self, messages: Sequence[Message], params: GenerationParams) -> list[Message]:
        budget = self.context_window - params.max_new_tokens
        return fit_to_window(messages, self.count_tokens, budget)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[str]:
        fitted = self.fit(messages, params)
        return iterate_in_thread(lambda cancel: self.generate(fitted, params, cancel))

    async def complete(self, messages: Sequence[Message], params: GenerationParams) -> str:
        return "".join([piece async for piece in self.stream(messages, params)])

    def complete_sync(self, messages: Sequence[Message], params: GenerationParams) -> str:
        """The whole answer, from synchronous code (CLI, benchmarks)."""
        return "".join(self.generate(self.fit(messages, params), params, threading.Event()))


_DONE = object()


async def iterate_in_thread(produce: Any) -> AsyncIterator[str]:
    """Run ``produce(cancel_event)`` (a sync iterator of str) in a worker thread; yield its items."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            cancel.set()

    def work() -> None:
        try:
            for piece in produce(cancel):
                if cancel.is_set():
                    break
                put(piece)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(None, exc)
            return
        put(_DONE)

    threading.Thread(target=work, name="tunedesk-generate", daemon=True).start()
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                if isinstance(error, TunedeskError):
                    raise error
                raise GenerationError(f"generation failed: {type(error).__name__}: {error}") from error
            if item is _DONE:
                return
            yield item
    finally:
        cancel.set()
