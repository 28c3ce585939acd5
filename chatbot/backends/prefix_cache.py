"""Keep finished ORT GenAI generators so the next turn of a conversation prefills only what is new.

Why: in a chat, turn n+1's prompt is turn n's prompt + the answer + the new question. Prefilling the
whole history again costs most of the time to first token on a CPU.

Decisions:
- Exact, not approximate. KV written by one-token decode steps differs slightly from KV written by a
  batched prefill (another int4 kernel path), and a batched prefill split into chunks is bit-exact.
  So when an answer is done, a background thread rewinds the generator to the end of the prompt and
  prefills the answer in one batch, while the person reads and types. It prefills the answer as the
  chat template will render it next turn (decoded text, re-encoded), not the sampled token ids,
  which need not be the tokenizer's own encoding of that text. The next turn then
  prefills only the new question, and gets the very answer a cold run would give.
- Several conversations at once: a small LRU of generators, matched by longest common token prefix
  (so a new conversation with the same system prompt reuses that too).
- At least two tokens are always prefilled: a one-token step would take the decode kernel path.
- A checked-out generator belongs to one request; a refreshing one is waited for, never shared.
- A generator is reused only under equal ``options``: everything it was built with, search options
  and the active LoRA adapter alike (the onnx backend puts ``("adapter", name)`` in them). KV
  computed under one adapter is never continued under another, nor under the base model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
Options = tuple[tuple[str, Any], ...]


@dataclass(eq=False)
class Entry:
    generator: Any
    options: Options
    prompt: list[int]  # tokens whose KV in ``generator`` came from batched prefill
    target: list[int] = field(default_factory=list)  # what ``prompt`` will be once the refresh is done
    ready: threading.Event = field(default_factory=threading.Event)
    failed: bool = False


class PrefixCache:
    def __init__(self, new_generator: Callable[[Options], Any], size: int = 4) -> None:
        self._new_generator = new_generator
        self.size = size
        self.entries: list[Entry] = []
        self._lock = threading.Lock()

    def checkout(self, prompt: list[int], options: Options, reusable: bool = True) -> tuple[Entry, int]:
        """A generator holding ``prompt`` (prefilled), and how many of its tokens were reused."""
        best = self._take_best(prompt, options) if reusable and self.size > 0 else None
        if best is not None:
            best.ready.wait()
            keep = min(_common_prefix(best.prompt, prompt), len(prompt) - 2)
            if not best.failed and keep > 0:
                best.generator.rewind_to(keep)
                best.generator.append_tokens(prompt[keep:])
                if not best.generator.is_done():
                    best.prompt = best.target = list(prompt)
                    return best, keep
        entry = Entry(self._new_generator(options), options, list(prompt), list(prompt))
        entry.generator.append_tokens(prompt)
        return entry, 0

    def checkin(self, entry: Entry, next_prompt: Callable[[], list[int]], reusable: bool = True) -> None:
        """Keep ``entry`` for later turns. ``next_prompt()`` gives the tokens the conversation will
        start with next turn (history + this answer, as the template renders it); they are prefilled
        in the background."""
        if not reusable or self.size <= 0:
            return
        entry.ready.clear()
        entry.target = entry.prompt
        with self._lock:
            self.entries.insert(0, entry)
            del self.entries[self.size :]
        threading.Thread(
            target=self._refresh, args=(entry, next_prompt), name="tunedesk-prefix-refresh", daemon=True
        ).start()

    def clear(self) -> None:
        """Forget every cached generator, once the background prefills still running have finished."""
        with self._lock:
            entries, self.entries = self.entries, []
        for entry in entries:
            entry.ready.wait()

    def _take_best(self, prompt: list[int], options: Options) -> Entry | None:
        best, keep = None, 0
        with self._lock:
            for candidate in self.entries:
                common = min(_common_prefix(candidate.target, prompt), len(prompt) - 2)
                if candidate.options == options and common > keep:
                    best, keep = candidate, common
            if best is not None:
                self.entries.remove(best)
        return best

    def _refresh(self, entry: Entry, next_prompt: Callable[[], list[int]]) -> None:
        try:
            target = next_prompt()
            keep = min(_common_prefix(entry.prompt, target), len(target) - 2)
            if keep > 0:
                entry.target = target
                entry.generator.rewind_to(keep)
                entry.generator.append_tokens(target[keep:])
                entry.prompt = list(target)
        except Exception as exc:  # e.g. the conversation reached max_length: just don't reuse it
            log.debug("prefix refresh failed: %s", exc)
            entry.failed = True
            with self._lock:
                if entry in self.entries:
                    self.entries.remove(entry)
        finally:
            entry.ready.set()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
