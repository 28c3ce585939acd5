"""Backends on the tiny random Llama (real SmolLM2 tokenizer and chat template, 2 layers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatbot.backends import BACKENDS, GenerationParams, backend_class, load_backend
from chatbot.backends.echo import EchoBackend
from chatbot.conversation import Message, respond
from tunedesk.errors import ConfigError, ContextOverflowError
from tunedesk.settings import load_settings

TINY = "tiny-random-llama"
GREEDY = GenerationParams(max_new_tokens=24, repetition_penalty=1.0)
QUESTION: list[Message] = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "How do I return a product?"},
]


async def collect(backend, messages, params=GREEDY) -> list[str]:
    return [piece async for piece in backend.stream(messages, params)]


@pytest.fixture(scope="module")
def onnx_fp32(tiny_onnx_fp32: Path, shared_home: Path):
    from chatbot.backends.onnx import OnnxBackend

    return OnnxBackend(TINY, precision="fp32", home=shared_home)


@pytest.fixture(scope="module")
def local(tiny_transformers: Path, shared_home: Path):
    from chatbot.backends.local import LocalBackend

    return LocalBackend(TINY, device="cpu", home=shared_home)


async def test_echo_streams_word_by_word() -> None:
    pieces = await collect(EchoBackend(), QUESTION, GenerationParams(max_new_tokens=4))
    assert pieces == ["You", " said:", " How", " do"]


def test_every_registered_backend_follows_the_protocol() -> None:
    for name in BACKENDS:
        cls = backend_class(name)
        assert cls.name == name
        for method in ("stream", "complete", "describe", "prepare"):
            assert callable(getattr(cls, method)), (name, method)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="onnx, local, azure, echo"):
        load_backend("gpt5", load_settings())


def test_backends_load_once_per_configuration() -> None:
    settings = load_settings(backend="echo")
    assert load_backend("echo", settings) is load_backend("echo", settings)
    assert load_backend("echo", load_settings(context_window=512)) is not load_backend("echo", settings)


async def test_onnx_streams_and_greedy_is_deterministic(onnx_fp32) -> None:
    first = await collect(onnx_fp32, QUESTION)
    second = await collect(onnx_fp32, QUESTION)
    assert len(first) > 5 and "".join(first).strip()
    assert first == second


async def test_onnx_fp32_matches_transformers_greedy(onnx_fp32, local) -> None:
    """The exported model answers exactly as the PyTorch one: same template, same tokens."""
    assert onnx_fp32.encode(QUESTION) == local.encode(QUESTION)
    onnx_answer = "".join(await collect(onnx_fp32, QUESTION))
    torch_answer = "".join(await collect(local, QUESTION))
    assert onnx_answer == torch_answer
    for backend in (onnx_fp32, local):  # both count what they did the same way
        stats = backend.last_stats
        assert stats.prompt_tokens == backend.count_tokens(QUESTION)
        assert stats.completion_tokens == GREEDY.max_new_tokens  # a random model never says EOS this early
        assert 0 < stats.ttft_s < stats.total_s and stats.decode_tokens_per_s > 0


async def test_prefix_reuse_changes_speed_not_answers(tiny_onnx_fp32: Path, shared_home: Path) -> None:
    """Turn n+1 prefills only its new question (the answer was prefilled in the background), and
    every answer equals the one a backend without any cache gives."""
    from chatbot.backends.onnx import OnnxBackend

    cached = OnnxBackend(TINY, precision="fp32", home=shared_home)
    uncached = OnnxBackend(TINY, precision="fp32", home=shared_home, prefix_cache_size=0)
    history = list(QUESTION)
    new_tokens = 0  # tokens the latest turn added to the conversation
    for turn in range(4):
        answer = "".join(await collect(cached, history))
        stats = cached.last_stats
        assert answer == "".join(await collect(uncached, history)), f"turn {turn}"
        assert uncached.last_stats.reused_tokens == 0
        if turn == 0:
            assert stats.reused_tokens == 0
        else:  # everything but the turn's new tokens (<|im_end|>, the question, the headers) was reused
            assert stats.prompt_tokens - stats.reused_tokens <= new_tokens + 4, (turn, stats)
        question = f"And what about order {turn}?"
        before = cached.count_tokens(history + [{"role": "assistant", "content": answer}])
        history += [{"role": "assistant", "content": answer}, {"role": "user", "content": question}]
        new_tokens = cached.count_tokens(history) - before


async def test_a_new_conversation_reuses_the_shared_system_prompt(tiny_onnx_fp32: Path, shared_home: Path) -> None:
    from chatbot.backends.onnx import OnnxBackend

    backend = OnnxBackend(TINY, precision="fp32", home=shared_home)
    await collect(backend, QUESTION)
    other: list[Message] = [QUESTION[0], {"role": "user", "content": "Where is my order?"}]
    await collect(backend, other)
    system_tokens = backend.count_tokens([QUESTION[0]])
    assert backend.last_stats.reused_tokens >= system_tokens - 4


async def test_sampling_with_a_seed_repeats_and_differs_from_greedy(onnx_fp32) -> None:
    sampled = GenerationParams(max_new_tokens=24, temperature=1.5, top_k=1000, top_p=1.0, seed=7)
    first = "".join(await collect(onnx_fp32, QUESTION, sampled))
    assert first == "".join(await collect(onnx_fp32, QUESTION, sampled))
    assert first != "".join(await collect(onnx_fp32, QUESTION))


async def test_max_new_tokens_bounds_the_answer(onnx_fp32) -> None:
    tokens = onnx_fp32._tokenizer.encode(
        "".join(await collect(onnx_fp32, QUESTION, GenerationParams(max_new_tokens=5)))
    )
    assert 1 <= len(tokens) <= 6  # one token can decode into text that re-encodes as two


async def test_context_window_trims_oldest_turns_never_the_system_prompt(
    tiny_onnx_fp32: Path, shared_home: Path
) -> None:
    from chatbot.backends.onnx import OnnxBackend

    small = OnnxBackend(TINY, precision="fp32", home=shared_home, context_window=160)
    long_history: list[Message] = [{"role": "system", "content": "You are a support agent."}]
    for i in range(12):
        long_history += [
            {"role": "user", "content": f"My order number {i} is late again."},
            {"role": "assistant", "content": f"Sorry about order {i}, let me check."},
        ]
    long_history.append({"role": "user", "content": "Any news?"})
    params = GenerationParams(max_new_tokens=16)
    fitted = small.fit(long_history, params)
    assert fitted[0] == long_history[0] and fitted[-1] == long_history[-1]
    assert small.count_tokens(fitted) <= 160 - 16 < small.count_tokens(long_history)
    assert len(await collect(small, long_history, params)) > 0

    huge: list[Message] = [{"role": "user", "content": "word " * 400}]
    with pytest.raises(ContextOverflowError):
        await collect(small, huge, params)


async def test_closing_the_stream_cancels_the_worker() -> None:
    """The thread bridge: closing the async stream sets the producer's cancel flag."""
    import threading

    from chatbot.backends.base import iterate_in_thread

    stopped = threading.Event()

    def produce(cancel: threading.Event):
        try:
            while not cancel.is_set():
                yield "x"
                cancel.wait(0.001)
        finally:
            stopped.set()

    stream = iterate_in_thread(produce)
    assert [await anext(stream), await anext(stream)] == ["x", "x"]
    await stream.aclose()
    assert await asyncio.to_thread(stopped.wait, 10), "the producer was not told to stop"


def test_onnx_generation_stops_at_the_next_token_once_cancelled(onnx_fp32) -> None:
    import threading

    cancel = threading.Event()
    pieces = onnx_fp32.generate(QUESTION, GenerationParams(max_new_tokens=500, repetition_penalty=1.0), cancel)
    next(pieces), next(pieces)
    cancel.set()
    assert list(pieces) == []  # nothing after the flag, not even one more token
    assert onnx_fp32.last_stats.completion_tokens <= 3


async def test_respond_requires_a_user_turn_last() -> None:
    with pytest.raises(ValueError):
        async for _ in respond(EchoBackend(), [{"role": "assistant", "content": "hi"}], GREEDY, "sys"):
            pass


async def test_local_backend_applies_a_lora_adapter(
    local, tiny_transformers: Path, tmp_path: Path, shared_home: Path
) -> None:
    """An adapter changes the answer, and the backend's answer is the peft model's own greedy output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatbot.backends.local import LocalBackend

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_transformers)
    peft_model = get_peft_model(
        base, LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")

    adapted = LocalBackend(TINY, adapter=tmp_path / "adapter", device="cpu", home=shared_home)
    answer = "".join(await collect(adapted, QUESTION))
    assert answer != "".join(await collect(local, QUESTION))

    tokenizer = AutoTokenizer.from_pretrained(tiny_transformers)
    ids = torch.tensor([adapted.encode(QUESTION)])
    expected = peft_model.eval().generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False
    )
    assert answer == tokenizer.decode(expected[0, ids.shape[1] :], skip_special_tokens=True)


def test_adapter_directory_is_checked(tiny_transformers: Path, tmp_path: Path, shared_home: Path) -> None:
    from chatbot.backends.local import LocalBackend

    with pytest.raises(ConfigError, match="adapter_config.json"):
        LocalBackend(TINY, adapter=tmp_path, device="cpu", home=shared_home)


def test_backends_built_directly_use_tunedesk_home(tiny_onnx_fp32: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot.backends.onnx import OnnxBackend

    assert OnnxBackend(TINY, precision="fp32").path == tiny_onnx_fp32  # TUNEDESK_HOME, not ~/.cache


def test_asking_for_cuda_without_a_gpu_says_so(tiny_transformers: Path, shared_home: Path) -> None:
    import torch

    from chatbot.backends.local import LocalBackend

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        LocalBackend(TINY, device="cuda", home=shared_home)


@pytest.mark.gpu
async def test_local_backend_runs_in_bf16_on_cuda(tiny_transformers: Path, shared_home: Path) -> None:
    import torch

    from chatbot.backends.local import LocalBackend

    backend = LocalBackend(TINY, device="auto", home=shared_home)
    assert backend.device == "cuda" and backend.dtype == torch.bfloat16
    assert next(backend.model.parameters()).is_cuda
    assert "".join(await collect(backend, QUESTION)).strip()
    assert backend.last_stats.completion_tokens == GREEDY.max_new_tokens
