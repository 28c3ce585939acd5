"""``onnx``: ONNX Runtime GenAI, the fast default on CPU (int4 SmolLM2 decodes ~8x faster than
transformers fp32).

Decisions:
- The model directory comes from the registry (``tunedesk.prepare.ensure_onnx``): a registry name is
  converted once (GGUF -> transformers -> int4 ONNX) into ``$TUNEDESK_HOME``; an ONNX directory is
  used as it is.
- The chat template is the model's own (``tokenizer.apply_chat_template``, from the exported
  tokenizer files), so training, transformers and ONNX render conversations identically.
- Prefix reuse across turns: a conversation's next prompt starts with its previous prompt. We keep
  a few finished generators and rewind the best match to the end of the previous *prompt*, then
  prefill only the new part. Only prompt positions are reused: their KV came from batched prefill,
  which is bit-exact under chunking, whereas KV written by one-token decode steps differs slightly
  (another int4 kernel path). So reuse changes time to first token, never the answer. Seeded
  sampling gets a fresh generator, so a seed means the same thing every time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from chatbot.backends.base import GenerationParams, ThreadedBackend
from chatbot.conversation import Message
from tunedesk.errors import GenerationError
from tunedesk.prepare import ensure_onnx
from tunedesk.settings import Settings, default_home

# ChatML, for models that ship no chat template of their own.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class _Cached:
    generator: Any
    prompt: list[int]  # the tokens whose KV came from prefill
    options: tuple[tuple[str, Any], ...]


class OnnxBackend(ThreadedBackend):
    name: ClassVar[str] = "onnx"

    def __init__(
        self,
        model: str = "smollm2-135m",
        precision: str = "int4",
        context_window: int = 2048,
        home: Path | None = None,
        prefix_cache_size: int = 4,
    ) -> None:
        import onnxruntime_genai as og

        self._og = og
        self.model_ref = model
        self.path = ensure_onnx(model, home or default_home(), precision)
        self.precision = precision
        self._model = og.Model(str(self.path))
        self._tokenizer = og.Tokenizer(self._model)
        config = json.loads((self.path / "genai_config.json").read_text())
        self.context_window = min(context_window, int(config["model"]["context_length"]))
        self._eos = set(int(t) for t in self._tokenizer.eos_token_ids)
        self._template = None if (self.path / "chat_template.jinja").is_file() or _has_template(self.path) else FALLBACK_TEMPLATE
        self._prefix_cache_size = prefix_cache_size
        self._cache: list[_Cached] = []
        self.last_reused_tokens = 0  # prompt tokens whose KV the last request took from a cached generator
        self._cache_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_ref, "path": str(self.path), "precision": self.precision}

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        ensure_onnx(settings.model, settings.home, settings.precision, progress)

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text for ``messages``, ending with the assistant's turn header."""
        payload = json.dumps(list(messages))
        if self._template is None:
            return self._tokenizer.apply_chat_template(payload, add_generation_prompt=True)
        return self._tokenizer.apply_chat_template(payload, template_str=self._template, add_generation_prompt=True)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        return [int(t) for t in self._tokenizer.encode(self.render(messages))]

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.encode(messages))

    def generate(self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[str]:
        prompt = self.encode(messages)
        budget = min(params.max_new_tokens, self.context_window - len(prompt))
        if budget <= 0:
            raise GenerationError(f"prompt of {len(prompt)} tokens leaves no room in a {self.context_window}-token window")
        options = self._search_options(params)
        entry = self._checkout(prompt, options)
        stream = self._tokenizer.create_stream()
        produced = 0
        try:
            while produced < budget and not cancel.is_set():
                if entry.generator.is_done():
                    break
                entry.generator.generate_next_token()
                token = int(entry.generator.get_next_tokens()[0])
                produced += 1
                if token in self._eos:
                    break
                piece = stream.decode(token)
                if piece:
                    yield piece
        finally:
            self._checkin(entry)

    def _search_options(self, params: GenerationParams) -> tuple[tuple[str, Any], ...]:
        options: dict[str, Any] = {
            "max_length": self.context_window,
            "do_sample": not params.greedy,
            "repetition_penalty": params.repetition_penalty,
        }
        if not params.greedy:
            options.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
            if params.seed is not None:
                options["random_seed"] = params.seed
        return tuple(sorted(options.items()))

    def _checkout(self, prompt: list[int], options: tuple[tuple[str, Any], ...]) -> _Cached:
        """A generator whose state holds ``prompt``: a cached one rewound and extended, or a new one."""
        reusable = "random_seed" not in dict(options)
        best: _Cached | None = None
        keep = 0
        if reusable:
            with self._cache_lock:
                for candidate in self._cache:
                    if candidate.options != options:
                        continue
                    common = _common_prefix(candidate.prompt, prompt)
                    # leave at least two tokens to prefill: a one-token step takes the decode kernel path
                    common = min(common, len(prompt) - 2)
                    if common > keep:
                        best, keep = candidate, common
                if best is not None:
                    self._cache.remove(best)
        self.last_reused_tokens = keep if best is not None else 0
        if best is None:
            return self._checkout_fresh(prompt, options)
        best.generator.rewind_to(keep)
        best.generator.append_tokens(prompt[keep:])
        if best.generator.is_done():  # a rewound generator that still thinks it finished
            self.last_reused_tokens = 0
            return self._checkout_fresh(prompt, options)
        best.prompt = list(prompt)
        return best

    def _checkout_fresh(self, prompt: list[int], options: tuple[tuple[str, Any], ...]) -> _Cached:
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(**dict(options))
        entry = _Cached(self._og.Generator(self._model, params), list(prompt), options)
        entry.generator.append_tokens(prompt)
        return entry

    def _checkin(self, entry: _Cached) -> None:
        if "random_seed" in dict(entry.options) or self._prefix_cache_size <= 0:
            return
        with self._cache_lock:
            self._cache.insert(0, entry)
            del self._cache[self._prefix_cache_size :]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _has_template(path: Path) -> bool:
    config = path / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text())
