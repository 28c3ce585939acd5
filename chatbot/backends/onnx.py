"""``onnx``: ONNX Runtime GenAI, the fast default on CPU (int4 SmolLM2 decodes ~8x faster than
transformers fp32).

Decisions:
- The model directory comes from the registry (``tunedesk.prepare.ensure_onnx``): a registry name is
  converted once (GGUF -> transformers -> int4 ONNX) into ``$TUNEDESK_HOME``; an ONNX directory is
  used as it is.
- The chat template is the model's own (``tokenizer.apply_chat_template``, from the exported
  tokenizer files), so training, transformers and ONNX render conversations identically.
- Prefix reuse across turns (``prefix_cache.py``): the next turn prefills only the new question,
  and still gets the very answer a cold run would give. Seeded sampling always starts fresh.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from chatbot.backends.base import GenerationParams, GenerationStats, ThreadedBackend
from chatbot.backends.prefix_cache import Options, PrefixCache
from chatbot.conversation import Message
from tunedesk.prepare import ensure_onnx
from tunedesk.settings import Settings, load_settings

# ChatML, for models that ship no chat template of their own.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


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
        self.path = ensure_onnx(model, home or load_settings().home, precision)
        self.precision = precision
        self._model = og.Model(str(self.path))
        self._tokenizer = og.Tokenizer(self._model)
        config = json.loads((self.path / "genai_config.json").read_text())
        self.context_window = min(context_window, int(config["model"]["context_length"]))
        self._eos = set(int(t) for t in self._tokenizer.eos_token_ids)
        self._template = (
            None if (self.path / "chat_template.jinja").is_file() or _has_template(self.path) else FALLBACK_TEMPLATE
        )
        self.prefix_cache = PrefixCache(self._new_generator, prefix_cache_size)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_ref,
            "path": str(self.path),
            "precision": self.precision,
        }

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        ensure_onnx(settings.model, settings.home, settings.precision, progress)

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages``, by default ending with the assistant's turn header."""
        payload = json.dumps(list(messages))
        if self._template is None:
            return self._tokenizer.apply_chat_template(payload, add_generation_prompt=add_generation_prompt)
        return self._tokenizer.apply_chat_template(
            payload, template_str=self._template, add_generation_prompt=add_generation_prompt
        )

    def encode(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
        return [int(t) for t in self._tokenizer.encode(self.render(messages, add_generation_prompt))]

    def generate(self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[str]:
        started = time.perf_counter()
        prompt = self.encode(messages)
        budget = self.answer_budget(prompt, params)
        options = self._search_options(params)
        reusable = "random_seed" not in dict(options)  # a seed must mean the same thing every time
        entry, reused = self.prefix_cache.checkout(prompt, options, reusable)
        stats = GenerationStats(prompt_tokens=len(prompt), reused_tokens=reused)
        stream = self._tokenizer.create_stream()
        pieces: list[str] = []
        try:
            while stats.completion_tokens < budget and not cancel.is_set():
                if entry.generator.is_done():
                    break
                entry.generator.generate_next_token()
                token = int(entry.generator.get_next_tokens()[0])
                stats.completion_tokens += 1
                if stats.completion_tokens == 1:
                    stats.ttft_s = time.perf_counter() - started
                if token in self._eos:
                    break
                piece = stream.decode(token)
                if piece:
                    pieces.append(piece)
                    yield piece
        finally:
            stats.total_s = time.perf_counter() - started
            self.last_stats = stats
            history: list[Message] = [
                *messages,
                {"role": "assistant", "content": "".join(pieces)},
            ]  # what the UI stores
            self.prefix_cache.checkin(entry, lambda: self.encode(history, add_generation_prompt=False), reusable)

    def _new_generator(self, options: Options) -> Any:
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(**dict(options))
        return self._og.Generator(self._model, params)

    def _search_options(self, params: GenerationParams) -> Options:
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


def _has_template(path: Path) -> bool:
    config = path / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text())
