"""Perplexity of the reference answers: transformers' own loss on the tiny random Llama, through the harness."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from chatbot.backends import GenerationParams, load_backend
from eval.history import Delta, higher_is_better
from eval.metrics import MODEL_METRICS, MetricUnavailable, direction_of
from eval.perplexity import causal_lm, reference_perplexity, reference_tokens
from eval.suite import load_suite
from tunedesk.cli import app
from tunedesk.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TINY = "tiny-random-llama"
PARAMS = GenerationParams(max_new_tokens=32)
PROMPTS = [
    [
        {"role": "system", "content": "You are Harbor & Pine's support assistant."},
        {"role": "user", "content": "Where is my order?"},
    ],
    [
        {"role": "user", "content": "Can I return a jacket?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": "How long?"},
    ],
    [{"role": "user", "content": "Hi"}],
]
REFERENCES = ["Could you send me your order number?", "Returns are accepted within 30 days of delivery.", "Hello!"]


@pytest.fixture(scope="module")
def local(tiny_transformers: Path):
    return load_backend("local", load_settings(backend="local", model=TINY, device="cpu"))


def transformers_loss(model, tokenizer, messages, reference: str) -> tuple[float, int]:
    """transformers' own mean loss over the reference turn (labels -100 elsewhere), and how many tokens it covers."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": reference}], tokenize=True)[
        "input_ids"
    ]
    answer = full[len(prompt) :]
    answer = answer[: answer.index(tokenizer.eos_token_id) + 1]  # up to the end of turn, which the model generates
    labels = [-100] * len(prompt) + answer
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt + answer]), labels=torch.tensor([labels]))
    return float(out.loss), len(answer)


def test_perplexity_is_exp_of_transformers_loss_on_the_reference_tokens(local) -> None:
    score = reference_perplexity(local, PROMPTS, REFERENCES, PARAMS)
    losses = [transformers_loss(local.model, local.tokenizer, m, r) for m, r in zip(PROMPTS, REFERENCES, strict=True)]
    assert score.per_example == pytest.approx([math.exp(loss) for loss, _ in losses], rel=1e-4)
    corpus = math.exp(sum(loss * n for loss, n in losses) / sum(n for _, n in losses))  # token-weighted
    assert score.value == pytest.approx(corpus, rel=1e-4)
    assert score.value != pytest.approx(sum(score.per_example) / len(score.per_example), rel=1e-3)
    assert (score.name, score.direction, score.aggregation) == ("perplexity", "lower", "corpus")


def test_the_scored_tokens_are_the_reference_and_its_end_of_turn(local) -> None:
    prompt, answer = reference_tokens(causal_lm(local), PROMPTS[0], REFERENCES[0], PARAMS)
    assert prompt == local.encode(PROMPTS[0])  # the backend's own prompt encoding
    assert local.tokenizer.decode(answer) == REFERENCES[0] + local.tokenizer.eos_token


def test_backends_without_weights_say_why(tiny_onnx_fp32: Path) -> None:
    echo = load_backend("echo", load_settings(backend="echo"))
    with pytest.raises(MetricUnavailable, match="echo backend has no PyTorch weights"):
        reference_perplexity(echo, PROMPTS, REFERENCES, PARAMS)
    onnx = load_backend("onnx", load_settings(backend="onnx", model=TINY, precision="fp32"))
    with pytest.raises(MetricUnavailable, match="onnx backend has no PyTorch weights"):
        reference_perplexity(onnx, PROMPTS, REFERENCES, PARAMS)


def test_lower_is_better_in_the_registry_and_the_gate() -> None:
    assert MODEL_METRICS["perplexity"].direction == direction_of("perplexity") == "lower"
    assert not higher_is_better("perplexity") and higher_is_better("rougeL")
    assert Delta("local", "perplexity", 10.0, 12.0, None, 1.0).regressed
    assert not Delta("local", "perplexity", 10.0, 8.0, None, 1.0).regressed


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("support")
    prepare([ROOT / "data/samples/support/raw.csv"], out, PrepareConfig(system_prompt=None))
    return out / "test.jsonl"


def test_a_suite_scores_perplexity_on_local_and_notes_the_others(
    split: Path, tmp_path: Path, tiny_transformers
) -> None:
    suite = {
        "name": "ppl",
        "dataset": {"path": str(split), "turns": "first", "limit": 4},
        "backends": [
            {"name": "echo", "backend": "echo"},
            {"name": "tiny", "backend": "local", "settings": {"model": TINY, "device": "cpu"}},
        ],
        "generation": {"max_new_tokens": 8},
        "metrics": ["rouge", "perplexity"],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    assert load_suite(tmp_path / "suite.yaml").metrics == ["rouge", "perplexity"]
    result = CliRunner().invoke(app, ["eval", "run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "no perplexity for echo" in " ".join(result.stderr.split())
    directory = Path(result.stdout.strip())
    results = json.loads((directory / "results.json").read_text())
    tiny, echo = results["backends"]["tiny"], results["backends"]["echo"]
    assert tiny["metrics"]["perplexity"]["direction"] == "lower" and tiny["skipped_metrics"] == {}
    assert "perplexity" not in echo["metrics"] and "no PyTorch weights" in echo["skipped_metrics"]["perplexity"]

    rows = [json.loads(line) for line in (directory / "examples.jsonl").open()]
    tiny_rows = [r for r in rows if r["backend"] == "tiny"]
    backend = load_backend("local", load_settings(backend="local", model=TINY, device="cpu", max_new_tokens=8))
    system = load_settings().system_prompt
    prompts = [[{"role": "system", "content": system}, *r["prompt"]] if system else r["prompt"] for r in tiny_rows]
    expected = [
        math.exp(transformers_loss(backend.model, backend.tokenizer, m, r["reference"])[0])
        for m, r in zip(prompts, tiny_rows, strict=True)
    ]
    assert [r["scores"]["perplexity"] for r in tiny_rows] == pytest.approx(expected, rel=1e-4)
    assert "no perplexity for echo" in (directory / "report.html").read_text()
