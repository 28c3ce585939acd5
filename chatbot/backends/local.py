"""``local``: a transformers causal LM, optionally with a peft LoRA adapter; CUDA when present.

Decisions:
- The reference implementation: what the fine-tuned model does in PyTorch is what the ONNX export
  must reproduce, so this backend stays plain ``model.generate`` with the model's chat template.
- A LoRA run (``model="runs/x"``) loads as its base model plus the unmerged peft adapter, as
  ``adapter=`` does, never the registry's merged copy: the reference is base + adapter. The tokenizer
  is the adapter directory's own when the trainer saved one there, else the base's.
- bf16 on CUDA, fp32 on CPU. ``device="auto"`` picks CUDA when ``torch.cuda.is_available()``.
- Streaming through ``TextIteratorStreamer``; ``generate`` runs in its own thread and a stopping
  criterion watches the cancel flag, so closing the stream stops the GPU/CPU work too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from chatbot.backends.base import GenerationParams, GenerationStats, ThreadedBackend
from chatbot.conversation import Message
from tunedesk.errors import ConfigError, GenerationError
from tunedesk.models import resolve
from tunedesk.prepare import ensure_transformers
from tunedesk.settings import Settings, load_settings


class LocalBackend(ThreadedBackend):
    name: ClassVar[str] = "local"

    def __init__(
        self,
        model: str = "smollm2-135m",
        adapter: Path | None = None,
        device: str = "auto",
        context_window: int = 2048,
        home: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use device=cpu or auto")
        self.device = device
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model_ref = model
        base, adapter, self.adapter_name = _base_and_adapter(model, adapter)
        self.path = ensure_transformers(base, home or load_settings().home)
        has_tokenizer = adapter is not None and (Path(adapter) / "tokenizer_config.json").is_file()
        self.tokenizer = AutoTokenizer.from_pretrained(adapter if has_tokenizer else self.path)
        loaded: Any = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
        self.adapter = adapter
        if adapter is not None:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").is_file():
                raise ConfigError(f"adapter {adapter} has no adapter_config.json: is it a peft LoRA directory?")
            loaded = PeftModel.from_pretrained(loaded, str(adapter))
        self.model = loaded.to(device).eval()
        limit = getattr(self.model.config, "max_position_embeddings", None) or context_window
        self.context_window = min(context_window, int(limit))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_ref,
            "path": str(self.path),
            "adapter": str(self.adapter) if self.adapter else None,
            "adapter_name": self.adapter_name,
            "device": self.device,
        }

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        base, _, _ = _base_and_adapter(settings.model, settings.adapter)
        ensure_transformers(base, settings.home, progress)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        encoded: Any = self.tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages], add_generation_prompt=True, tokenize=True
        )
        if hasattr(encoded, "input_ids"):  # transformers 5 returns a BatchEncoding
            encoded = encoded["input_ids"]
        return list(encoded)

    def generate(self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancel.is_set()

        if params.adapter is not None and params.adapter != self.adapter_name:
            loaded = f"only '{self.adapter_name}'" if self.adapter_name else "none"
            raise ConfigError(f"unknown adapter '{params.adapter}'; this local backend has {loaded}")
        started = time.perf_counter()
        prompt = self.encode(messages)
        budget = self.answer_budget(prompt, params)
        input_ids = torch.tensor([prompt], device=self.device)
        stats = GenerationStats(prompt_tokens=len(prompt))

        class _CountingStreamer(TextIteratorStreamer):
            def put(self, value: Any) -> None:
                if not (self.skip_prompt and self.next_tokens_are_prompt):
                    stats.completion_tokens += int(value.numel())
                    if not stats.ttft_s:
                        stats.ttft_s = time.perf_counter() - started
                super().put(value)

        streamer = _CountingStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": budget,
            "do_sample": not params.greedy,
            "repetition_penalty": params.repetition_penalty,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Cancelled()]),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if not params.greedy:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the consuming thread below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="tunedesk-local-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            cancel.set()
            worker.join()
            stats.total_s = time.perf_counter() - started
            self.last_stats = stats
        if failure:
            raise GenerationError(f"transformers generation failed: {failure[0]}") from failure[0]


def _base_and_adapter(model: str, adapter: Path | None) -> tuple[str, Path | None, str | None]:
    """(base model ref, adapter dir, adapter name): a LoRA run is its base plus its own adapter."""
    source = resolve(model)
    if source.kind != "lora-dir":
        return model, adapter, Path(adapter).name if adapter is not None else None
    if adapter is not None:
        raise ConfigError(f"{model} is a LoRA run with its own adapter; do not also set an adapter ({adapter})")
    assert source.base is not None
    return source.base, source.adapter, source.name
