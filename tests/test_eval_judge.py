"""The LLM judge: prompt, strict verdicts, one retry, judge errors, kappa, caching, suite config.

The judge under test is the real ``azure`` backend talking over HTTP to the Azure OpenAI emulator, whose
``responder`` is told what to answer: a verdict computed from the case it was sent, or a malformed reply.
The ``echo`` backend, which can never reply with JSON, is a judge whose every answer is a judge error.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from chatbot.backends import load_backend
from eval.checks import CaseRules
from eval.harness import Example, GenerationCache
from eval.judge import (
    ASK,
    JUDGE_ERROR,
    Judgement,
    VerdictError,
    agreement,
    case_text,
    judge_cases,
    judge_messages,
    judge_params,
    load_rubric,
    parse_verdict,
    policy_passages,
)
from eval.suite import JudgeSpec, load_suite
from tunedesk.azure_emulator import RunningEmulator, run_emulator
from tunedesk.cli import app
from tunedesk.errors import ConfigError
from tunedesk.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
POLICY = (ROOT / "data/samples/support/policy.md").read_text()
runner = CliRunner()
Responder = Callable[[list[dict[str, Any]], str], str]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("support")
    prepare([ROOT / "data/samples/support/raw.csv"], out, PrepareConfig(system_prompt=None))
    return out / "test.jsonl"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """The emulator on 127.0.0.1, with the azure backend's settings pointing at it."""
    with run_emulator() as server:
        monkeypatch.setenv("TUNEDESK_AZURE_ENDPOINT", server.endpoint)
        monkeypatch.setenv("TUNEDESK_AZURE_API_KEY", server.api_key)
        yield server


def answering(server: RunningEmulator, reply: Callable[[str], str]) -> list[list[dict[str, Any]]]:
    """Make the emulated model answer ``reply(user message)``; returns the list of requests it gets."""
    seen: list[list[dict[str, Any]]] = []

    def responder(messages: list[dict[str, Any]], deployment: str) -> str:
        seen.append(messages)
        return reply(messages[-1]["content"])

    server.emulator.responder = responder
    return seen


def tagged(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.DOTALL)
    assert found, f"no <{tag}> in the judge's prompt"
    return found.group(1)


def grade_by_order_word(prompt: str) -> str:
    """A deterministic judge: an answer that mentions an order completes the task."""
    completed = "order" in tagged(prompt, "candidate_answer").lower()
    reason = "asks about the order" if completed else "never asks for the order"
    return json.dumps({"completed": completed, "score": 4 if completed else 2, "reason": reason})


def example(**overrides: Any) -> Example:
    values: dict[str, Any] = {
        "id": "c-1#1",
        "intent": "returns",
        "prompt": [
            {"role": "user", "content": "Hi, I bought a tent."},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Can I still return it?"},
        ],
        "reference": "Yes, within 30 days of delivery. Which order is it?",
    }
    return Example(**{**values, **overrides})


RETURNS = CaseRules(
    require=[["which order", "30 days"]],
    forbid=["in (a|our) store"],
    escalate=False,
    description="Asks for the order or explains the 30-day return.",
    policy=["Returns and exchanges"],
)


def ask_judge(
    backend_name: str, cases: list[str], tmp_cache: GenerationCache, **settings_given: Any
) -> tuple[list[Judgement], list[bool]]:
    settings = load_settings(
        backend=backend_name, azure_deployment="gpt-4o-mini", context_window=131_072, **settings_given
    )
    backend = load_backend(backend_name, settings)
    params = judge_params(JudgeSpec(backend=backend_name))
    rubric = load_rubric()
    return asyncio.run(judge_cases(backend, "judge:test", rubric, cases, params, tmp_cache, concurrency=2))


@pytest.fixture
def cache() -> GenerationCache:
    from tunedesk.db import engine

    return GenerationCache(engine(load_settings()))


# ---- verdicts ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    [
        '{"completed": true, "score": 5, "reason": "asks for the order number"}',
        '  ```json\n{"completed": true, "score": 5, "reason": "asks for the\\n order   number"}\n```\n',
    ],
)
def test_a_well_formed_verdict_parses(reply: str) -> None:
    verdict = parse_verdict(reply)
    assert (verdict.completed, verdict.score, verdict.reason) == (True, 5, "asks for the order number")


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("", "empty"),
        ("Completed, 4/5: fine.", "not JSON"),
        ('Here you go: {"completed": true, "score": 4, "reason": "ok"}', "not JSON"),
        ('["completed", true]', "not an object"),
        ('{"completed": "yes", "score": 4, "reason": "ok"}', "completed:"),
        ('{"completed": true, "score": "4", "reason": "ok"}', "score:"),
        ('{"completed": true, "score": 6, "reason": "ok"}', "score: Input should be less than or equal to 5"),
        ('{"completed": true, "score": 4.5, "reason": "ok"}', "score:"),
        ('{"completed": true, "score": 4}', "reason: Field required"),
        ('{"completed": true, "score": 4, "reason": "  "}', "reason:"),
        ('{"completed": true, "score": 4, "reason": "ok", "confidence": 0.9}', "confidence: Extra inputs"),
    ],
)
def test_anything_else_is_not_a_verdict(reply: str, problem: str) -> None:
    with pytest.raises(VerdictError, match=re.escape(problem)):
        parse_verdict(reply)


# ---- the prompt --------------------------------------------------------------------------------------------
def test_the_prompt_carries_the_case_and_the_published_rubric() -> None:
    passages = policy_passages(POLICY, RETURNS, "", 8000, "returns")
    messages = judge_messages(load_rubric(), case_text(example(), "Which order is it?", RETURNS, passages))
    system, user = messages[0]["content"], messages[1]["content"]
    assert system.startswith("# Harbor & Pine support answer rubric") and "<!--" not in system
    assert "## Score from 1 to 5" in system
    assert tagged(user, "conversation").endswith("Agent: Hello! How can I help?\n\nCustomer: Can I still return it?")
    assert tagged(user, "reference_answer") == example().reference
    rules = tagged(user, "case_rules")
    for part in ("Asks for the order or explains", "- which order | 30 days", "- in (a|our) store",
                 "Escalation to a human expected: no", "Policy sections to follow: Returns and exchanges"):  # fmt: skip
        assert part in rules, part
    policy = tagged(user, "policy")
    assert policy.startswith("## Returns and exchanges") and "**30 days**" in policy and "## Refunds" not in policy
    assert tagged(user, "candidate_answer") == "Which order is it?"
    assert user.endswith(ASK)


def test_policy_passages() -> None:
    assert policy_passages(POLICY, None, "anything", 100_000, None) == POLICY.strip()  # it fits: all of it
    short = policy_passages(POLICY, None, "my card was declined, the payment failed twice", 1500, None)
    assert short.startswith("## Payment failures") and len(short) <= 1500  # the closest section, within budget
    assert "## Returns and exchanges" not in short
    assert policy_passages("", RETURNS, "x", 10, "returns") == ""
    with pytest.raises(ConfigError, match=r"cases: returns: policy: no section Gift wrap in the policy; it has"):
        policy_passages(POLICY, CaseRules(policy=["Gift wrap"]), "", 8000, "returns")


def test_a_rubric_that_cannot_be_read_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"judge.rubric: cannot read .*missing.md"):
        load_rubric(tmp_path / "missing.md")
    notes_only = tmp_path / "notes.md"
    notes_only.write_text("<!-- just a note -->\n")
    with pytest.raises(ConfigError, match=r"judge.rubric: .*notes.md has no instructions"):
        load_rubric(notes_only)


# ---- asking the judge --------------------------------------------------------------------------------------
def test_a_well_formed_verdict_is_stored_and_cached(emulator: RunningEmulator, cache: GenerationCache) -> None:
    seen = answering(emulator, grade_by_order_word)
    cases = [case_text(example(), answer, RETURNS, "") for answer in ("Which order is it?", "Sure, come by our store.")]
    judgements, cached = ask_judge("azure", cases, cache)
    assert [(j.completed, j.score, j.reason, j.error, j.retried) for j in judgements] == [
        (True, 4, "asks about the order", None, False),
        (False, 2, "never asks for the order", None, False),
    ]
    assert cached == [False, False] and len(seen) == 2
    assert seen[0][0]["role"] == "system" and seen[0][0]["content"] == load_rubric().text
    again, cached = ask_judge("azure", cases, cache)
    assert again == judgements and cached == [True, True] and len(seen) == 2  # nothing asked twice


def test_a_malformed_reply_is_asked_once_more_then_is_a_judge_error(
    emulator: RunningEmulator, cache: GenerationCache
) -> None:
    seen = answering(emulator, lambda prompt: "Looks fine to me, 4/5.")
    case = case_text(example(), "Which order is it?", RETURNS, "")
    [judgement], cached = ask_judge("azure", [case], cache)
    assert judgement.error == JUDGE_ERROR and judgement.retried
    assert judgement.raw == "Looks fine to me, 4/5." and judgement.reason.startswith("not JSON")
    assert (judgement.completed, judgement.score) == (None, None)  # nothing guessed
    assert len(seen) == 2 and cached == [False, False]
    retry = seen[1][-1]["content"]
    assert retry.startswith(case)  # the case again, in the same message as the reminder
    assert "<your_previous_reply>\nLooks fine to me, 4/5.\n</your_previous_reply>" in retry
    assert "That reply could not be read as a verdict: not JSON" in retry and retry.endswith(ASK)

    # a judge that gets it right the second time gives a verdict, marked as retried
    replies = iter(["sure!", '{"completed": false, "score": 1, "reason": "no order asked"}'])
    answering(emulator, lambda prompt: next(replies))
    other = case_text(example(id="c-2#1"), "We have a store nearby.", RETURNS, "")
    [judgement], _ = ask_judge("azure", [other], cache)
    assert (judgement.completed, judgement.score, judgement.error, judgement.retried) == (False, 1, None, True)


def test_a_failed_judge_call_is_a_judge_error(emulator: RunningEmulator, cache: GenerationCache) -> None:
    answering(emulator, grade_by_order_word)
    emulator.faults.add("server_error", times=100)
    case = case_text(example(), "Which order?", RETURNS, "")
    [judgement], cached = ask_judge("azure", [case], cache, azure_max_retries=0)
    emulator.faults.clear()
    assert judgement.error == JUDGE_ERROR and not judgement.retried and "AzureError" in judgement.reason
    assert cached == [False]


# ---- agreement ---------------------------------------------------------------------------------------------
def test_kappa_is_scikit_learns_over_the_cases_both_graded() -> None:
    rng = random.Random(7)
    for _ in range(20):
        rules = [rng.choice([True, False, None]) for _ in range(40)]
        verdicts = [rng.choice([True, False, True, None]) for _ in range(40)]
        both = [(r, j) for r, j in zip(rules, verdicts, strict=True) if r is not None and j is not None]
        found = agreement(rules, verdicts)
        assert found.cases == len(both)
        assert found.kappa == pytest.approx(cohen_kappa_score([r for r, _ in both], [j for _, j in both]))
    assert agreement([True, False, True], [True, False, False]).kappa == pytest.approx(
        cohen_kappa_score([True, False, True], [True, False, False])
    )
    same = agreement([True, True, None], [True, True, False])
    assert same.kappa is None and same.cases == 2 and "one and the same label" in (same.note or "")
    assert agreement([True, None], [True, True]).kappa is None


# ---- suites ------------------------------------------------------------------------------------------------
def write_suite(path: Path, split: Path, judge: dict[str, Any], **extra: Any) -> Path:
    suite = {
        "name": extra.pop("name", "judged"),
        "dataset": {"path": str(split), "turns": "first", "limit": 8},
        "cases": str(ROOT / "eval/cases/support.yaml"),
        "policy": str(ROOT / "data/samples/support/policy.md"),
        "backends": [
            {"name": "echo", "backend": "echo"},
            {"name": "terse", "backend": "echo", "settings": {"max_new_tokens": 3}},
        ],
        "generation": {"max_new_tokens": 40, "seed": 1},
        "metrics": ["chrf"],
        "judge": judge,
        **extra,
    }
    path.write_text(yaml.safe_dump(suite))
    return path


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output if code else result.stdout.strip()


def test_a_judged_suite_runs_end_to_end_and_a_rerun_judges_nothing(
    split: Path, tmp_path: Path, emulator: RunningEmulator
) -> None:
    seen = answering(emulator, grade_by_order_word)
    judge = {"backend": "azure", "settings": {"azure_deployment": "gpt-4o-mini"}, "backends": ["echo"]}
    suite = write_suite(tmp_path / "suite.yaml", split, judge)
    first = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs")))
    assert len(seen) == 8  # the echo backend's 8 answers, not terse's
    second = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs")))
    assert len(seen) == 8  # the re-run asked the judge nothing

    results = json.loads((first / "results.json").read_text())
    rows = [json.loads(line) for line in (first / "examples.jsonl").open()]
    echo_rows = [r for r in rows if r["backend"] == "echo"]
    judged = results["backends"]["echo"]["judge"]
    verdicts = [r["judge"]["completed"] for r in echo_rows]
    assert all(r["judge"] is None for r in rows if r["backend"] == "terse")
    assert "judge" not in results["backends"]["terse"]
    for row in echo_rows:
        said = "order" in row["answer"].lower()
        assert row["judge"] == {
            "completed": said,
            "score": 4 if said else 2,
            "reason": "asks about the order" if said else "never asks for the order",
            "error": None,
            "raw": None,
            "retried": False,
        }
        assert row["scores"]["judge_score"] == row["judge"]["score"]
    assert judged["completion_rate"] == pytest.approx(sum(verdicts) / 8)
    assert judged["mean_score"] == pytest.approx(sum(r["judge"]["score"] for r in echo_rows) / 8)
    assert results["backends"]["echo"]["metrics"]["judge_score"]["value"] == pytest.approx(judged["mean_score"])
    assert judged["cache"] == {"hits": 0, "generated": 8} and judged["judge_errors"] == 0
    rules = [r["task_completion"] for r in echo_rows]
    both = [(r, j) for r, j in zip(rules, verdicts, strict=True) if r is not None]
    assert judged["kappa_cases"] == len(both)
    if len({v for pair in both for v in pair}) == 2:
        assert judged["kappa_vs_rules"] == pytest.approx(cohen_kappa_score(*zip(*both, strict=True)))
    else:
        assert judged["kappa_vs_rules"] is None and judged["kappa_note"]
    assert results["judge"]["backend"] == "azure" and results["judge"]["backends"] == ["echo"]
    assert results["judge"]["rubric"].endswith("eval/rubrics/support.md")

    again = json.loads((second / "results.json").read_text())
    assert again["backends"]["echo"]["judge"]["cache"] == {"hits": 8, "generated": 0}
    assert again["backends"]["echo"]["judge"]["completion_rate"] == judged["completion_rate"]
    page = (second / "report.html").read_text()
    assert "<h2>LLM judge</h2>" in page and "eval/rubrics/support.md" in page and "<th>judge</th>" in page


def test_an_echo_judge_gives_judge_errors_not_a_crash(split: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", split, {"backend": "echo"}, name="echo-judged")
    first = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs")))
    results = json.loads((first / "results.json").read_text())
    for name in ("echo", "terse"):
        judged = results["backends"][name]["judge"]
        assert judged["judge_errors"] == judged["retried"] == 8
        assert judged["completion_rate"] is None and judged["mean_score"] is None
        assert judged["cache"] == {"hits": 0, "generated": 16}  # each case asked twice
        assert "judge_score" not in results["backends"][name]["metrics"]
    row = json.loads((first / "examples.jsonl").open().readline())
    assert row["judge"]["error"] == JUDGE_ERROR and row["judge"]["raw"].startswith("You said: Grade the candidate")
    second = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs")))
    again = json.loads((second / "results.json").read_text())
    assert again["backends"]["echo"]["judge"]["cache"] == {"hits": 16, "generated": 0}  # retries cached too
    assert "judge error" in (second / "report.html").read_text()
    third = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"), "--no-judge"))
    assert "judge" not in json.loads((third / "results.json").read_text())


def test_an_unconfigured_judge_fails_the_run_unless_optional(split: Path, tmp_path: Path) -> None:
    judge = {"backend": "azure", "settings": {"azure_deployment": "gpt-4o-mini"}}
    suite = write_suite(tmp_path / "suite.yaml", split, judge, name="needs-judge")
    output = run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"), code=1)
    assert "judge (azure):" in output and "TUNEDESK_AZURE_ENDPOINT" in output
    suite = write_suite(tmp_path / "suite.yaml", split, {**judge, "optional": True}, name="maybe-judge")
    directory = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs")))
    results = json.loads((directory / "results.json").read_text())
    assert "TUNEDESK_AZURE_ENDPOINT" in results["skipped"]["judge (azure)"] and "judge" not in results
    typo = {**judge, "optional": True, "settings": {"azure_deploymnt": "gpt-4o-mini"}}
    suite = write_suite(tmp_path / "suite.yaml", split, typo, name="typo-judge")
    output = run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"), code=1)
    assert "judge.settings: invalid settings" in output and "azure_deploymnt" in output  # optional or not


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"backend": "gpt5"}, r"bad.yaml: judge.backend: unknown backend 'gpt5'; choose one of: onnx, local"),
        ({"backend": "echo", "backends": ["echo", "nope"]}, r"bad.yaml: judge.backends: no backend named nope"),
        ({"backend": "echo", "rubrik": "x.md"}, r"bad.yaml: judge.rubrik: Extra inputs are not permitted"),
        ({"backend": "echo", "max_new_tokens": 4}, r"bad.yaml: judge.max_new_tokens: Input should be greater"),
        ({"backend": "echo", "settings": {"temperature": 0.7}}, r"bad.yaml: judge.settings: .*temperature: the judge"),
        ({"settings": {}}, r"bad.yaml: judge.backend: Field required"),
    ],
)
def test_a_bad_judge_config_names_the_field(tmp_path: Path, judge: dict[str, Any], message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "dataset": {"path": "t.jsonl"},
                                   "backends": [{"name": "echo", "backend": "echo"}], "judge": judge}))  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        load_suite(bad)


def test_the_nightly_suites_judge_example_loads(tmp_path: Path) -> None:
    text = (ROOT / "eval/suites/support-nightly.yaml").read_text()
    assert load_suite(ROOT / "eval/suites/support-nightly.yaml").judge is None  # the nightly needs no judge model
    start = text.index("# judge:\n")
    example_lines = [line.removeprefix("# ") for line in text[start:].splitlines()]
    uncommented = tmp_path / "nightly-judged.yaml"
    uncommented.write_text(text[:start] + "\n".join(example_lines) + "\n")
    judge = load_suite(uncommented).judge
    assert judge is not None and judge.backend == "azure" and judge.optional
    assert judge.rubric is not None and load_rubric(ROOT / judge.rubric).text
