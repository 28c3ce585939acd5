"""Perplexity of the reference answers under a backend's own model: how surprised the model is by what the
agents actually replied.

Decisions:
- Only a backend that holds a PyTorch causal LM in this process can be scored: it has ``model`` (a
  ``torch.nn.Module``), ``tokenizer`` (with a chat template) and ``encode``/``fit`` (today ``local``,
  with or without a LoRA adapter). ONNX Runtime GenAI, Azure and echo have no such weights here; they
  raise ``MetricUnavailable`` with the reason, which the run records. The check is by capability, not by
  backend name, and never imports torch for a backend that did not.
- The prompt is what the backend itself would feed the model: the harness's messages (system prompt
  included), trimmed by the backend's ``fit`` with the suite's generation params, then the backend's
  ``encode`` (chat template with the generation prompt).
- The scored tokens are the reference as the chat template renders a finished assistant turn after that
  prompt, up to and including the end-of-turn token: exactly what the model would have to generate to
  give this answer and stop. Template text after the end of turn (a newline) is never generated, so it
  is not scored. A template that renders the prompt differently once the turn is finished is refused.
- Per example, perplexity is exp(mean NLL of those tokens); the corpus value is
  exp(total NLL / total tokens), token-weighted (lm-evaluation-harness's ``perplexity`` on tokens). Log
  probabilities come from the model's logits in float32, one example per forward pass (no padding, so
  no batch effects). An answer that would overflow the context window is scored on the tokens that fit.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatbot.backends import Backend, GenerationParams
from chatbot.conversation import Message
from eval.metrics import MetricUnavailable, Score


@dataclass(frozen=True)
class CausalLM:
    """What scoring needs from a backend: its module, tokenizer, device and prompt encoding."""

    backend: Any
    model: Any
    tokenizer: Any
    device: str
    context_window: int


def causal_lm(backend: Backend) -> CausalLM:
    """The PyTorch model behind ``backend``, or ``MetricUnavailable`` saying why there is none."""
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    torch = sys.modules.get("torch")  # a backend with PyTorch weights imported it; the others never pay for it
    if (
        torch is None
        or not isinstance(model, torch.nn.Module)
        or not hasattr(tokenizer, "apply_chat_template")
        or not hasattr(backend, "encode")
    ):
        raise MetricUnavailable(
            f"the {backend.name} backend has no PyTorch weights in this process; perplexity needs the model's "
            "logits (use the local backend with the same model)"
        )
    device = str(getattr(backend, "device", None) or next(model.parameters()).device)
    window = int(getattr(backend, "context_window", 0) or getattr(model.config, "max_position_embeddings", 2048))
    return CausalLM(backend, model, tokenizer, device, window)


def _ids(encoded: Any) -> list[int]:
    if hasattr(encoded, "input_ids") or isinstance(encoded, dict):  # transformers 5 returns a BatchEncoding
        encoded = encoded["input_ids"]
    return [int(i) for i in encoded]


def _end_of_turn_ids(lm: CausalLM) -> set[int]:
    ids = {lm.tokenizer.eos_token_id}
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {int(i) for i in ids if i is not None}


def reference_tokens(
    lm: CausalLM, messages: Sequence[Message], reference: str, params: GenerationParams
) -> tuple[list[int], list[int]]:
    """(prompt ids, scored reference ids) for ``reference`` as the answer to ``messages``."""
    fitted = lm.backend.fit(messages, params) if hasattr(lm.backend, "fit") else list(messages)
    prompt = _ids(lm.backend.encode(fitted))
    turns = [{"role": m["role"], "content": m["content"]} for m in fitted]
    full = _ids(lm.tokenizer.apply_chat_template([*turns, {"role": "assistant", "content": reference}], tokenize=True))
    if full[: len(prompt)] != prompt:
        raise MetricUnavailable(
            "the chat template renders the prompt differently once the assistant turn is finished; "
            "cannot tell the reference's tokens apart"
        )
    answer = full[len(prompt) :]
    ends = _end_of_turn_ids(lm)
    stop = next((i for i, token in enumerate(answer) if token in ends), None)
    if stop is not None:
        answer = answer[: stop + 1]  # the end of turn is generated; template text after it is not
    room = max(lm.context_window - len(prompt), 0)
    return prompt, answer[:room]


def answer_nll(lm: CausalLM, prompt: Sequence[int], answer: Sequence[int]) -> float:
    """Summed negative log-likelihood (nats) of ``answer`` following ``prompt``."""
    import torch

    if not answer:
        return 0.0
    input_ids = torch.tensor([[*prompt, *answer]], device=lm.device)
    with torch.inference_mode():
        logits = lm.model(input_ids=input_ids).logits[0].float()
    # the logits at position i predict token i + 1: the answer's tokens are predicted from len(prompt) - 1 on
    predicting = logits[len(prompt) - 1 : len(prompt) + len(answer) - 1]
    targets = torch.tensor(list(answer), device=logits.device)
    return float(torch.nn.functional.cross_entropy(predicting, targets, reduction="sum"))


def reference_perplexity(
    backend: Backend, prompts: Sequence[Sequence[Message]], references: Sequence[str], params: GenerationParams
) -> Score:
    """Per-example and corpus (token-weighted) perplexity of ``references`` given ``prompts`` under ``backend``."""
    lm = causal_lm(backend)
    per_example: list[float] = []
    total_nll, total_tokens = 0.0, 0
    for messages, reference in zip(prompts, references, strict=True):
        prompt, answer = reference_tokens(lm, messages, reference, params)
        if not prompt or not answer:
            raise MetricUnavailable("a prompt or reference has no tokens to score (empty, or no room in the window)")
        nll = answer_nll(lm, prompt, answer)
        per_example.append(math.exp(nll / len(answer)))
        total_nll += nll
        total_tokens += len(answer)
    corpus = math.exp(total_nll / total_tokens) if total_tokens else float("nan")
    return Score("perplexity", corpus, per_example, "lower", "corpus")
