"""tunedesk's metrics as local evaluate modules: each loads by path with the network cut, from evaluate's cache copy,
and computes exactly what tunedesk's own functions compute on the same support answers."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.checks import error_flags, load_cases, summarise_flags, task_completion
from eval.harness import BackendResult
from eval.hub import hub_unreachable_reason, load_metric
from eval.metrics import classification_scores, score_text
from eval.modules import local_modules
from tunedesk.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "eval/cases/support.yaml"
POLICY = ROOT / "data/samples/support/policy.md"

# (intent, question, answer, reference): first replies as the support bot gives them, good and bad.
CASES = [
    ("order_status", "Where is my order? It should be here by now.",
     "I'm sorry it hasn't arrived yet. Could you share your order number so I can check the tracking?",
     "Sorry to hear that! Can you give me your order number? I'll look it up right away."),
    ("returns", "Can I send back a jacket I bought two weeks ago?",
     "Yes, unused items can be returned within 30 days of delivery. I can email you a prepaid return label.",
     "Of course. Return items within 30 days of delivery; start under Orders > Return items and we'll email a label."),
    ("warranty", "My kettle stopped working after a year, is it covered?",
     "Every product has a lifetime warranty, so we will replace it.",
     "Yes, all products carry a 2-year warranty against manufacturing faults. Could you share your order number?"),
    ("shipping_delay", "My parcel is late, when will it come?",
     "Your parcel ORD-99812 will arrive tomorrow, see https://track.example.com/parcel for details.",
     "I'm sorry about the delay. Could you give me your order number so I can open a trace with the carrier?"),
    ("escalation_to_human", "I want to talk to a real person.",
     "I'm sorry, but I can't help with that.",
     "Of course, I'll hand you over to a colleague from our team. May I have your order number first?"),
    ("refund", "I returned my boots, where is my money?",
     "",
     "A refund is issued within 2 business days of the return reaching our warehouse."),
    ("account_access", "I can't sign in to my account.",
     "I've sent a reset link to jane.doe@example.com; the account unlocks after 15 minutes.",
     "I can send you a reset link. After too many failed sign-ins the account is locked for 15 minutes."),
    ("store_locations", "Do you have a store in Boston?",  # no rules for this intent: not checked
     "We are online-only, so there are no stores to visit.",
     "We're an online-only store, so there is no shop in Boston, but we ship there."),
]  # fmt: skip
INTENTS = [case[0] for case in CASES]
QUESTIONS = [case[1] for case in CASES]
ANSWERS = [case[2] for case in CASES]
REFERENCES = [case[3] for case in CASES]
SHIPPED = ("bleu", "chrf", "rouge", "semantic_similarity", "classification", "task_completion", "error_rate")


@pytest.fixture(scope="module")
def evaluate_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """evaluate's module copies and metric data in a temporary directory, not in ~/.cache/huggingface."""
    import evaluate

    root = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate.config, "HF_MODULES_CACHE", root / "modules")
        patch.setattr(evaluate.config, "HF_METRICS_CACHE", root / "metrics")
        yield root


@pytest.fixture
def offline(evaluate_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline flags set and every socket connection refused: a module that reached for the hub would fail."""
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network cut by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return evaluate_cache


def load(name: str) -> Any:
    import evaluate

    return evaluate.load(str(ROOT / "eval/modules" / name), keep_in_memory=True)


def test_every_metric_of_tunedesk_has_a_module() -> None:
    assert set(local_modules()) == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_module_loads_by_path_offline_from_evaluates_copy(
    name: str, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evaluate

    monkeypatch.chdir(ROOT)
    for path in (f"eval/modules/{name}", str(ROOT / "eval/modules" / name / f"{name}.py")):
        metric = evaluate.load(path, keep_in_memory=True)
        assert metric.name == name
        assert metric.description.strip() and metric.citation.strip() and "Returns:" in metric.inputs_description
        assert "predictions" in metric.features
    # evaluate runs its copy in the cache, which imports tunedesk by package name (installed, so importable anywhere)
    module_file = Path(type(metric).__module__.replace(".", "/") + ".py")
    assert (offline / "modules" / module_file).is_file()
    assert type(metric).__module__.startswith(f"evaluate_modules.metrics.{name}.")


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge", "semantic_similarity"])
def test_text_modules_give_score_texts_numbers(name: str, offline: Path) -> None:
    result = load(name).compute(predictions=ANSWERS, references=REFERENCES)
    expected = score_text([name], ANSWERS, REFERENCES)
    assert set(result) == {key for score in expected for key in (score, f"{score}_per_example")}
    for score in expected.values():
        assert result[score.name] == score.value
        assert result[f"{score.name}_per_example"] == score.per_example
    assert len(result[f"{next(iter(expected))}_per_example"]) == len(ANSWERS)


def test_task_completion_module_gives_the_checks_and_the_harness_numbers(offline: Path) -> None:
    metric = load("task_completion")
    result = metric.compute(predictions=ANSWERS, intents=INTENTS, cases=str(RULES))
    rules = load_cases(RULES)
    verdicts = [task_completion(a, rules[i]) if i in rules else None for a, i in zip(ANSWERS, INTENTS, strict=True)]
    assert result["passed"] == [v.passed if v else None for v in verdicts]
    assert result["failed_rules"] == [v.failed_rules if v else [] for v in verdicts]
    harness = BackendResult("echo", "echo", {}, generations=[], completion=result["passed"]).summary()
    assert result["task_completion"] == harness["task_completion"] == pytest.approx(3 / 7)
    assert result["task_completion_checked"] == harness["task_completion_checked"] == 7
    assert result["passed"] == [True, True, False, False, False, False, True, None]
    assert result["failed_rules"][2] == ["forbid: lifetime warranty"]
    assert metric.compute(predictions=ANSWERS, intents=INTENTS) == result  # the shipped rules by default
    assert metric.compute(predictions=["Hi!"], intents=[""])["task_completion"] is None  # nothing to check


def test_error_rate_module_gives_the_checks_numbers(offline: Path) -> None:
    policy = POLICY.read_text(encoding="utf-8")
    contexts = [question + "\n" + policy for question in QUESTIONS]
    metric = load("error_rate")
    result = metric.compute(predictions=ANSWERS, references=REFERENCES, contexts=contexts)
    flags = [error_flags(a, context=c, reference=r) for a, c, r in zip(ANSWERS, contexts, REFERENCES, strict=True)]
    assert result == {**summarise_flags(flags), "flags": flags}
    assert result["flags"] == [[], [], [], ["invented_order_number", "invented_link"], ["refusal"], ["empty"],
                               ["pii_echoed"], []]  # fmt: skip
    assert result["error_rate"] == pytest.approx(4 / 8)

    hit = [False] * 7 + [True]  # the last answer stopped at the token limit
    truncated = metric.compute(predictions=ANSWERS, references=REFERENCES, contexts=contexts, max_new_tokens_hit=hit)
    assert truncated["flags"][-1] == ["truncated"] and truncated["error_rate"] == pytest.approx(5 / 8)


def test_classification_module_gives_classification_scores(offline: Path) -> None:
    truth = ["positive", "negative", "neutral", "negative", "positive", "neutral"]
    predicted = ["positive", "negative", "negative", "negative", "neutral", "neutral"]
    metric = load("classification")
    labels = ["negative", "neutral", "positive"]
    assert metric.compute(predictions=predicted, references=truth, labels=labels) == classification_scores(
        truth, predicted, labels
    )
    assert metric.compute(predictions=predicted, references=truth)["labels"] == labels  # scikit-learn's default order


def test_bad_inputs_are_tunedesks_clear_errors(offline: Path, tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("refund:\n  requires: [[refund]]\n")
    with pytest.raises(ConfigError, match=r"rules.yaml: refund: requires: Extra inputs"):
        load("task_completion").compute(predictions=["Refunds take 2 days."], intents=["refund"], cases=str(bad))
    with pytest.raises(ConfigError, match="2 predictions but 1 max_new_tokens_hit"):
        load("error_rate").compute(predictions=["a", "b"], references=["a", "b"], contexts=["", ""],
                                   max_new_tokens_hit=[True])  # fmt: skip


def test_load_metric_gives_local_modules_and_refuses_an_unreachable_hub(offline: Path) -> None:
    metric = load_metric("task_completion", keep_in_memory=True)
    assert metric.compute(predictions=ANSWERS[:1], intents=INTENTS[:1])["passed"] == [True]
    with pytest.raises(ConfigError, match=r"'meteor' .* hub is unreachable \(HF_HUB_OFFLINE is set\)") as error:
        load_metric("meteor")
    assert all(name in str(error.value) for name in SHIPPED)


def test_hub_check_is_bounded_and_needs_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_EVALUATE_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert hub_unreachable_reason(endpoint=url, timeout=2) is None  # any answer counts (here 501)
    finally:
        server.shutdown()
        server.server_close()
    reason = hub_unreachable_reason(endpoint=url, timeout=0.5)  # the port is closed now
    assert reason is not None and reason.startswith(f"no answer from {url} within 0.5 s")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert hub_unreachable_reason(endpoint=url) == "HF_HUB_OFFLINE was set when huggingface_hub was imported"
