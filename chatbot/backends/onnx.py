"""``onnx``: ONNX Runtime GenAI, the fast default on CPU (int4 SmolLM2 decodes ~8x faster than
transformers fp32).

Decisions:
- The model directory comes from the registry (``tunedesk.prepare.ensure_onnx``): a registry name is
  converted once (GGUF -> transformers -> int4 ONNX) into ``$TUNEDESK_HOME``; an ONNX directory is
  used as it is.
- The chat template is the model's own (``tokenizer.apply_chat_template``, from the exported
  tokenizer files), so training, transformers and ONNX render conversations identically.
- Without adapters, answers come from ``batching.BatchEngine``: plain onnxruntime on the same model file,
  every answer in progress decoded in one batch step (continuous batching on CPU, which ORT GenAI lacks),
  and prompt-prefix reuse across turns and conversations. ``max_concurrent_answers`` rows at most.
- With adapters, one ORT GenAI generator per answer (GenAI switches LoRA adapters per generator), with
  prefix reuse across turns (``prefix_cache.py``): the next turn prefills only the new question, and
  still gets the very answer a cold run would give. Seeded sampling always starts fresh.
- LoRA adapters per request: ``adapters`` (``TUNEDESK_ADAPTERS``) lists LoRA runs, or their
  ``.onnx_adapter`` files, exported with ``tunedesk model export-onnx RUN --adapter-only``. They
  must share one ONNX base (same base model, same adapted modules); the backend then loads that base
  (with LoRA weights as inputs, from the cache) instead of the plain model, and
  ``GenerationParams.adapter`` picks one per request (``None``: the base model). ``model`` must be
  the runs' base model (or that base's ONNX directory). Nothing is exported here: a missing or stale
  export is an error that says which command makes it. The prefix cache keys on the adapter.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from chatbot.backends.base import GenerationParams, GenerationStats, ThreadedBackend
from chatbot.backends.batching import BatchEngine, Sampling
from chatbot.backends.prefix_cache import Options, PrefixCache
from chatbot.conversation import Message
from tunedesk.errors import ConfigError, ModelNotFoundError
from tunedesk.models import MANIFEST, ONNX_ADAPTER_SUFFIX, models_dir, onnx_lora_artifact_name, resolve
from tunedesk.prepare import LORA_INPUT, check_precision, ensure_onnx, onnx_input_names
from tunedesk.settings import Settings, load_settings

# ChatML, for models that ship no chat template of their own.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class OnnxAdapter:
    """An exported LoRA adapter: its ``.onnx_adapter`` file and what its ``.json`` says it fits."""

    name: str
    file: Path
    base: str  # the model reference the run was trained from
    base_slug: str
    signature: str  # which modules it adapts: adapters with equal signatures share one ONNX base
    source: Path  # what was configured: the run directory or the file


def find_adapter(entry: Path | str) -> OnnxAdapter:
    """The exported adapter of a LoRA run directory (``<run>/onnx/*.onnx_adapter``), or an adapter file."""
    path = Path(entry).expanduser()
    if path.is_dir():
        found = sorted((path / "onnx").glob(f"*{ONNX_ADAPTER_SUFFIX}"))
        if not found:
            raise ConfigError(
                f"the LoRA run {path} has no exported ONNX adapter ({path / 'onnx'}/*{ONNX_ADAPTER_SUFFIX}); "
                f"export it with: tunedesk model export-onnx {path} --adapter-only"
            )
        if len(found) > 1:
            names = ", ".join(str(file) for file in found)
            raise ConfigError(f"{path / 'onnx'} holds several adapters; name the file you mean: {names}")
        file = found[0]
    elif path.is_file() and path.name.endswith(ONNX_ADAPTER_SUFFIX):
        file = path
    else:
        raise ConfigError(f"adapter {path} is neither a LoRA run directory nor an {ONNX_ADAPTER_SUFFIX} file")
    sidecar = file.with_name(file.name + ".json")
    try:
        info = json.loads(sidecar.read_text())
        adapter = OnnxAdapter(
            str(info["name"]), file, str(info["base"]), str(info["base_slug"]), str(info["signature"]), path
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{sidecar} is missing or unreadable ({exc}); re-export the adapter with "
            "tunedesk model export-onnx RUN --adapter-only"
        ) from exc
    run = Path(str(info.get("run") or path))
    if info.get("revision") and (run / MANIFEST).is_file():
        try:
            current = resolve(str(run)).revision
        except ModelNotFoundError:
            current = None
        if current is not None and current != info["revision"]:
            raise ConfigError(
                f"{file} is stale: the adapter of {run} changed after it was exported; re-export it with "
                f"tunedesk model export-onnx {run} --adapter-only"
            )
    return adapter


def onnx_model_for(model: str, home: Path, precision: str, adapters: Sequence[OnnxAdapter] = ()) -> Path:
    """The ONNX directory to load: ``model``'s own, or with adapters, the base they were exported for."""
    if not adapters:
        return ensure_onnx(model, home, precision)
    check_precision(precision)
    bases = {(adapter.base_slug, adapter.signature) for adapter in adapters}
    if len(bases) > 1:
        described = ", ".join(f"{a.name} (base {a.base}, modules {a.signature})" for a in adapters)
        raise ConfigError(f"the adapters must share one ONNX base (same base model, same adapted modules): {described}")
    first = adapters[0]
    source = resolve(model)
    if source.kind == "onnx-dir":
        assert source.path is not None
        return source.path  # the base itself; its inputs are checked when it is loaded
    if source.slug != first.base_slug:
        raise ConfigError(
            f"the adapters ({', '.join(a.name for a in adapters)}) were trained on '{first.base}', but the model "
            f"is '{model}': set TUNEDESK_MODEL (--model) to {first.base}"
        )
    base = models_dir(home) / first.base_slug / onnx_lora_artifact_name(precision, first.signature)
    if not (base / MANIFEST).is_file():
        raise ConfigError(
            f"no {precision} ONNX base with LoRA inputs for the adapter {first.name} in {base}; build it with: "
            f"tunedesk model export-onnx {first.source} --adapter-only --precision {precision}"
        )
    return base


class OnnxBackend(ThreadedBackend):
    """ORT GenAI on ``model`` at ``precision``.

    ``adapters``: LoRA run directories (or their ``.onnx_adapter`` files) exported with
    ``tunedesk model export-onnx RUN --adapter-only --precision P``; from settings,
    ``TUNEDESK_ADAPTERS=runs/a,runs/b``. Each is known by its run's name, and a request picks one with
    ``GenerationParams(adapter="a")``; ``adapter=None`` answers with the base model. With adapters,
    ``model`` is the runs' base (``tiny-random-llama``...) and the ONNX base with LoRA inputs that the
    export built for it is loaded. Unknown names, stale or missing exports and a base without LoRA
    inputs are ``ConfigError``s that say what to run."""

    name: ClassVar[str] = "onnx"

    def __init__(
        self,
        model: str = "smollm2-135m",
        precision: str = "int4",
        context_window: int = 2048,
        home: Path | None = None,
        prefix_cache_size: int = 4,
        adapters: Sequence[Path | str] = (),
        onnx_threads: int = 0,
        max_concurrent_answers: int = 16,
    ) -> None:
        import onnxruntime_genai as og

        self._og = og
        self.model_ref = model
        self.adapters: dict[str, OnnxAdapter] = {}
        for entry in adapters:
            adapter = find_adapter(entry)
            if adapter.name in self.adapters:
                raise ConfigError(
                    f"two adapters are named '{adapter.name}': {self.adapters[adapter.name].file}, {adapter.file}"
                )
            self.adapters[adapter.name] = adapter
        self.path = onnx_model_for(model, home or load_settings().home, precision, list(self.adapters.values()))
        self.precision = precision
        config = og.Config(str(self.path))
        if onnx_threads:  # one per process when several processes share the cores (TUNEDESK_WORKERS)
            threads = {"intra_op_num_threads": onnx_threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": threads}}}))
        self.threads = onnx_threads
        self._model = og.Model(config)
        self._adapters = self._load_adapters() if self.adapters else None
        self._tokenizer = og.Tokenizer(self._model)
        config = json.loads((self.path / "genai_config.json").read_text())
        self.context_window = min(context_window, int(config["model"]["context_length"]))
        self._eos = set(int(t) for t in self._tokenizer.eos_token_ids)
        self._template = (
            None if (self.path / "chat_template.jinja").is_file() or _has_template(self.path) else FALLBACK_TEMPLATE
        )
        self.engine: BatchEngine | None = None  # with adapters: one GenAI generator per answer, from the prefix cache
        self.prefix_cache: PrefixCache | None = None
        if self.adapters:
            self.prefix_cache = PrefixCache(self._new_generator, prefix_cache_size)
        else:
            self.engine = BatchEngine(self.path, max_concurrent_answers, onnx_threads, prefix_cache_size)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_ref,
            "path": str(self.path),
            "precision": self.precision,
            "adapters": {name: str(adapter.file) for name, adapter in self.adapters.items()},
        }

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        if not settings.adapters:
            ensure_onnx(settings.model, settings.home, settings.precision, progress)
            return
        onnx_model_for(settings.model, settings.home, settings.precision, [find_adapter(a) for a in settings.adapters])

    def _load_adapters(self) -> Any:
        """``og.Adapters`` holding every configured adapter, after checking the model can take them."""
        import onnxruntime as ort

        inputs = set(onnx_input_names(self.path))
        if not any(LORA_INPUT.search(name) for name in inputs):
            raise ConfigError(
                f"{self.path} has no LoRA adapter inputs, so it cannot run adapters; use the base exported by "
                "tunedesk model export-onnx RUN --adapter-only (or leave TUNEDESK_ADAPTERS unset)"
            )
        loaded = self._og.Adapters(self._model)
        for name, adapter in self.adapters.items():
            weights = set(ort.AdapterFormat.read_adapter(str(adapter.file)).get_parameters())
            unknown = sorted(weights - inputs)
            if unknown:
                raise ConfigError(
                    f"{adapter.file} has {len(unknown)} weights that {self.path} takes no input for "
                    f"(e.g. {unknown[0]}): it was exported for another base model"
                )
            loaded.load(str(adapter.file), name)
        return loaded

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
        if params.adapter is not None and params.adapter not in self.adapters:
            configured = ", ".join(self.adapters) or "none (set TUNEDESK_ADAPTERS)"
            raise ConfigError(f"unknown adapter '{params.adapter}'; this onnx backend has: {configured}")
        started = time.perf_counter()
        prompt = self.encode(messages)
        budget = self.answer_budget(prompt, params)
        if self.engine is not None:
            yield from self._batched(messages, prompt, budget, params, cancel, started)
            return
        assert self.prefix_cache is not None  # no batch engine: the adapters' path
        options = self._search_options(params)
        reusable = "random_seed" not in dict(options)  # a seed must mean the same thing every time
        entry, reused = self.prefix_cache.checkout(prompt, options, reusable)
        stats = GenerationStats(prompt_tokens=len(prompt), reused_tokens=reused)
        pieces: list[str] = []
        try:
            yield from self._detokenize(_generator_tokens(entry.generator, budget, cancel), stats, started, pieces)
        finally:
            stats.total_s = time.perf_counter() - started
            self.last_stats = stats
            history: list[Message] = [
                *messages,
                {"role": "assistant", "content": "".join(pieces)},
            ]  # what the UI stores
            self.prefix_cache.checkin(entry, lambda: self.encode(history, add_generation_prompt=False), reusable)

    def _batched(
        self,
        messages: Sequence[Message],
        prompt: list[int],
        budget: int,
        params: GenerationParams,
        cancel: threading.Event,
        started: float,
    ) -> Iterator[str]:
        """Generate through the batch engine: this request is one row among the answers in progress."""
        assert self.engine is not None
        sampling = Sampling(
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
            seed=params.seed,
        )
        request = self.engine.submit(prompt, budget, sampling)
        stats = GenerationStats(prompt_tokens=len(prompt))
        pieces: list[str] = []
        try:
            tokens = itertools.takewhile(lambda _: not cancel.is_set(), request)
            yield from self._detokenize(tokens, stats, started, pieces)
        finally:
            request.cancel()
            stats.reused_tokens = request.reused
            stats.total_s = time.perf_counter() - started
            self.last_stats = stats
        history: list[Message] = [*messages, {"role": "assistant", "content": "".join(pieces)}]
        self.engine.warm(self.encode(history, add_generation_prompt=False))  # the next turn starts from here

    def _detokenize(
        self, tokens: Iterator[int], stats: GenerationStats, started: float, pieces: list[str]
    ) -> Iterator[str]:
        """The text pieces of ``tokens`` up to the end of sequence (kept in ``pieces``), counted into ``stats``."""
        stream = self._tokenizer.create_stream()
        for token in tokens:
            stats.completion_tokens += 1
            if stats.completion_tokens == 1:
                stats.ttft_s = time.perf_counter() - started
            if token in self._eos:
                return
            piece = stream.decode(token)
            if piece:
                pieces.append(piece)
                yield piece

    def _new_generator(self, options: Options) -> Any:
        search = dict(options)
        adapter = search.pop("adapter", None)
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(**search)
        generator = self._og.Generator(self._model, params)
        if adapter is not None:
            generator.set_active_adapter(self._adapters, adapter)
        return generator

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
        if params.adapter is not None:
            options["adapter"] = params.adapter  # part of the prefix cache's key, not a search option
        return tuple(sorted(options.items()))


def _generator_tokens(generator: Any, budget: int, cancel: threading.Event) -> Iterator[int]:
    """Up to ``budget`` tokens from an ORT GenAI generator, none once ``cancel`` is set."""
    for _ in range(budget):
        if cancel.is_set() or generator.is_done():
            return
        generator.generate_next_token()
        yield int(generator.get_next_tokens()[0])


def _has_template(path: Path) -> bool:
    config = path / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text())
