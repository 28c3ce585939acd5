"""The CPU batch engine on the tiny random Llama (fp32 ONNX): rows of any length decoded together give the
answers they give alone; rows join, leave and fail independently; prefix reuse changes nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from chatbot.backends.batching import BatchEngine, DecoderLayout, Request, Sampling, pick
from tunedesk.errors import ConfigError, GenerationError

TINY = "tiny-random-llama"
GREEDY = Sampling()
QUESTIONS = [
    "How do I return a product?",
    "My parcel never arrived and the tracking page has said 'in transit' for twelve days. What now?",
    "Refund?",
    "Can I change the delivery address of order 5512 after it has been dispatched to the courier?",
]


@pytest.fixture(scope="module")
def backend(tiny_onnx_fp32: Path, shared_home: Path):
    from chatbot.backends.onnx import OnnxBackend

    return OnnxBackend(TINY, precision="fp32", home=shared_home, prefix_cache_size=0)


@pytest.fixture(scope="module")
def prompts(backend) -> list[list[int]]:
    return [backend.encode([{"role": "user", "content": question}]) for question in QUESTIONS]


def answer(request: Request) -> list[int]:
    return list(request)


def alone(engine: BatchEngine, prompt: list[int], budget: int = 24) -> list[int]:
    return answer(engine.submit(prompt, budget, GREEDY))


def test_rows_of_different_lengths_decode_together_as_they_would_alone(backend, prompts) -> None:
    engine = BatchEngine(backend.path, max_batch=8, prefix_cache_size=0)
    expected = [alone(engine, prompt) for prompt in prompts]
    assert len({len(prompt) for prompt in prompts}) == len(prompts)  # right padding is really exercised
    engine.steps = engine.rows_decoded = 0
    requests = [engine.submit(prompt, 24, GREEDY) for prompt in prompts]
    assert [answer(request) for request in requests] == expected
    assert engine.rows_decoded > 1.5 * engine.steps  # several rows per step, not one after the other


def test_rows_leave_early_or_cancelled_without_disturbing_the_others(backend, prompts) -> None:
    engine = BatchEngine(backend.path, max_batch=8, prefix_cache_size=0)
    expected = [alone(engine, prompt) for prompt in prompts]
    short = engine.submit(prompts[0], 3, GREEDY)
    cancelled = engine.submit(prompts[1], 500, GREEDY)
    others = [engine.submit(prompt, 24, GREEDY) for prompt in prompts[2:]]
    tokens = iter(cancelled)
    first_two = [next(tokens), next(tokens)]
    cancelled.cancel()
    assert answer(short) == expected[0][:3]
    assert first_two == expected[1][:2]
    assert len(list(tokens)) <= 2  # ends within a step or two of the flag
    assert [answer(request) for request in others] == expected[2:]


def test_prefix_reuse_prefills_only_what_is_new_and_changes_no_answer(backend, prompts) -> None:
    cached = BatchEngine(backend.path, prefix_cache_size=4)
    uncached = BatchEngine(backend.path, prefix_cache_size=0)
    first = prompts[1]
    assert answer(cached.submit(first, 8, GREEDY)) == alone(uncached, first, 8)
    longer = first + backend.encode([{"role": "user", "content": "And the refund?"}])
    request = cached.submit(longer, 16, GREEDY)
    assert answer(request) == alone(uncached, longer, 16)
    assert request.reused == len(first)
    warmed = longer + [7, 8, 9]  # a finished turn, prefilled while the engine is idle
    cached.warm(warmed)
    again = cached.submit(warmed + [10, 11], 4, GREEDY)
    expected = alone(uncached, warmed + [10, 11], 4)
    assert answer(again) == expected
    assert again.reused == len(warmed)
    cached.clear()
    cold = cached.submit(warmed + [10, 11], 4, GREEDY)
    assert answer(cold) == expected and cold.reused == 0


def test_a_failing_request_ends_with_an_error_and_the_engine_goes_on(backend, prompts) -> None:
    engine = BatchEngine(backend.path, prefix_cache_size=0)
    running = engine.submit(prompts[0], 24, GREEDY)
    broken = engine.submit([1, 2, 10**9], 4, GREEDY)  # a token id far outside the vocabulary
    with pytest.raises(GenerationError, match="generation failed"):
        answer(broken)
    assert len(answer(running)) == 24
    assert len(alone(engine, prompts[2], 4)) == 4


def test_close_ends_answers_in_progress_and_a_new_request_starts_it_again(backend, prompts) -> None:
    engine = BatchEngine(backend.path, prefix_cache_size=0)
    running = engine.submit(prompts[0], 10_000, GREEDY)
    next(iter(running))
    engine.close()
    with pytest.raises(GenerationError, match="shut down"):
        answer(running)
    assert len(alone(engine, prompts[0], 3)) == 3


def test_pick_follows_the_sampling_options() -> None:
    logits = np.array([1.0, 3.0, 2.5, -1.0], np.float32)
    assert pick(logits, [], GREEDY, None) == 1
    assert pick(logits, [1], Sampling(repetition_penalty=1.5), None) == 2  # 3/1.5 < 2.5
    assert pick(np.array([-1.0, -1.2], np.float32), [0], Sampling(repetition_penalty=1.5), None) == 1  # -1.5 < -1.2
    hot = Sampling(temperature=1.0, top_k=4, seed=3)
    draws = [pick(logits, [], hot, np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]  # a seed repeats
    rng = np.random.default_rng(0)
    assert {pick(logits, [], Sampling(temperature=2.0, top_k=1), rng) for _ in range(20)} == {1}
    assert {pick(logits, [], Sampling(temperature=2.0, top_p=0.01), rng) for _ in range(20)} == {1}
    assert {pick(logits, [], Sampling(temperature=5.0, top_k=4), rng) for _ in range(200)} == {0, 1, 2, 3}


def test_a_decoder_with_inputs_it_cannot_feed_is_refused(tmp_path: Path) -> None:
    decoder = {
        "filename": "model.onnx",
        "num_hidden_layers": 1,
        "num_key_value_heads": 1,
        "head_size": 8,
        "inputs": {"past_key_names": "past.%d.key", "past_value_names": "past.%d.value"},
        "outputs": {"present_key_names": "present.%d.key", "present_value_names": "present.%d.value"},
    }
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"decoder": decoder}}))
    names = ["input_ids", "attention_mask", "past.0.key", "past.0.value"]
    assert DecoderLayout.read(tmp_path, names).past == ["past.0.key", "past.0.value"]
    with pytest.raises(ConfigError, match="lora_A"):
        DecoderLayout.read(tmp_path, [*names, "layers.0.lora_A"])


def test_many_threads_asking_at_once_all_get_their_answer(backend, prompts) -> None:
    """The chat's shape: one thread per answer, all blocked on their own request."""
    engine = BatchEngine(backend.path, max_batch=4, prefix_cache_size=0)
    expected = alone(engine, prompts[3], 12)
    results: list[list[int]] = []

    def ask() -> None:
        results.append(alone(engine, prompts[3], 12))

    threads = [threading.Thread(target=ask) for _ in range(10)]  # more than max_batch: the rest wait their turn
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [expected] * 10
