"""Template parity: a fine-tune answers the same wherever it runs.

The most common complaint about fine-tuning stacks is a merged or exported model answering differently
from the trained one, because the chat template drifted between training and serving. Here one run of our
recipe is fed the same golden conversations through the training template, transformers + adapter (the
``local`` backend on the run), the merged model, the merged ONNX model and the adapter on a shared ONNX
base; the prompts must be identical token for token, and so must the greedy answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatbot.backends import GenerationParams
from chatbot.backends.local import LocalBackend
from chatbot.backends.onnx import OnnxBackend
from chatbot.conversation import Message
from finetune.lora import IGNORE, TrainConfig, render, tokenize_conversation, train

TINY = "tiny-random-llama"
GOLDEN: list[list[Message]] = [
    [
        {"role": "system", "content": "You are a support assistant for an online store."},
        {"role": "user", "content": "Where is my order 4136385? It was due Monday."},
    ],
    [
        {"role": "system", "content": "You are a support assistant for an online store."},
        {"role": "user", "content": "hi, can i return shoes i wore once??"},
        {"role": "assistant", "content": "Hi! Unworn items can be returned within 30 days. Were they worn outside?"},
        {"role": "user", "content": "only inside, on carpet 🙂"},
    ],
    [  # no system message: the template's own default must appear everywhere alike
        {"role": "user", "content": "Do you ship to Canada & how much does it cost?"},
    ],
]
GREEDY = GenerationParams(max_new_tokens=12, repetition_penalty=1.0)


def training_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(16):
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You are a support assistant for an online store."},
                    {"role": "user", "content": f"Where is order {5000 + i}?"},
                    {"role": "assistant", "content": f"Order {5000 + i} left our warehouse today."},
                ]
            }
        )
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, shared_home: Path, tiny_transformers: Path) -> Path:
    folder = tmp_path_factory.mktemp("parity")
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in training_rows()))
    config = TrainConfig(
        model=TINY, train=data, output=folder / "run", rank=4, alpha=8, learning_rate=5e-3, max_steps=6, batch_size=4
    )
    train(config, progress=False)
    return folder / "run"


@pytest.fixture(scope="module")
def engines(run: Path, shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from finetune.export import export_adapter, merge

    merged = merge(run, tmp_path_factory.mktemp("merged") / "model", home=shared_home)
    exported = export_adapter(run, precision="fp32", home=shared_home)
    shared_base = OnnxBackend(model=TINY, precision="fp32", home=shared_home, adapters=[run])
    return {  # name -> (backend, how to ask it)
        "transformers + adapter": (LocalBackend(model=str(run), device="cpu", home=shared_home), GREEDY),
        "merged transformers": (LocalBackend(model=str(merged), device="cpu", home=shared_home), GREEDY),
        "merged ONNX": (OnnxBackend(model=str(run), precision="fp32", home=shared_home), GREEDY),
        "adapter on the ONNX base": (shared_base, GREEDY.model_copy(update={"adapter": exported.name})),
    }


def test_every_engine_sends_the_training_template_prompt(run: Path, engines: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
    for conversation in GOLDEN:
        # what the recipe trained on: the tokens before the answer it learned to give
        earlier = [{**m, "weight": 0} if m["role"] == "assistant" else m for m in conversation]
        answered = [*earlier, {"role": "assistant", "content": "Sure."}]
        example = tokenize_conversation(tokenizer, answered)
        trained_prompt = example.input_ids[: example.labels.index(next(x for x in example.labels if x != IGNORE))]
        assert tokenizer.decode(trained_prompt) == render(tokenizer, conversation, add_generation_prompt=True)
        for name, (engine, _) in engines.items():
            assert engine.encode(conversation) == trained_prompt, (name, conversation[-1]["content"])


def test_every_engine_gives_the_same_greedy_answer(engines: dict[str, Any]) -> None:
    import threading

    for conversation in GOLDEN:
        answers = {}
        for name, (engine, params) in engines.items():
            answers[name] = "".join(engine.generate(conversation, params, threading.Event()))
        assert len(set(answers.values())) == 1, answers
        assert answers["merged ONNX"].strip(), answers  # not vacuously equal
    base = engines["adapter on the ONNX base"][0]
    plain = "".join(base.generate(GOLDEN[-1], GREEDY, threading.Event()))
    assert plain != answers["merged ONNX"]  # the adapter changes the answer: the comparison can fail
