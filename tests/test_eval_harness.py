"""The evaluation harness: suites, checks, cached generation, reports, history and the regression gate.

The end-to-end tests run the real CLI on a small prepared split of the support sample, with the echo
backend, the tiny ONNX model and the azure backend talking to the emulator over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from eval.checks import CaseRules, error_flags, is_repetitive, load_cases, task_completion
from eval.harness import load_examples
from eval.history import paired_bootstrap
from eval.suite import Suite, load_suite
from tunedesk.azure_emulator import EmulatorConfig, run_emulator
from tunedesk.cli import app
from tunedesk.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("support")
    prepare([ROOT / "data/samples/support/raw.csv"], out, PrepareConfig(system_prompt=None))
    return out / "test.jsonl"


def write_suite(path: Path, split: Path, backends: list[dict], **extra) -> Path:
    suite = {
        "name": extra.pop("name", "mini"),
        "dataset": {"path": str(split), "turns": "first", "limit": 8},
        "cases": str(ROOT / "eval/cases/support.yaml"),
        "policy": str(ROOT / "data/samples/support/policy.md"),
        "backends": backends,
        "generation": {"max_new_tokens": 24, "seed": 1},
        "metrics": ["bleu", "chrf", "rouge"],
        **extra,
    }
    path.write_text(yaml.safe_dump(suite))
    return path


def run_cli(*args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout, result.stderr


# ---- suites and cases ----------------------------------------------------------------------------------
def test_every_shipped_suite_loads_and_names_its_command() -> None:
    suites = sorted((ROOT / "eval/suites").glob("*.yaml"))
    assert suites
    for path in suites:
        suite = load_suite(path)
        assert path.read_text().startswith(f"# tunedesk eval run eval/suites/{path.name}")
        if isinstance(suite, Suite) and suite.cases:
            assert load_cases(ROOT / suite.cases)


def test_suite_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {path: t.jsonl}\nbackends: [{name: a, backend: echo}]\nmetrics: [bleurt]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: metrics: unknown bleurt"):
        load_suite(bad)
    bad.write_text("name: x\ndataset: {path: t.jsonl, turns: middle}\nbackends: []\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: dataset.turns: .*backends: "):
        load_suite(bad)


def test_task_completion_rules() -> None:
    rules = CaseRules(require=[["order (number|id)", "which order"]], forbid=["arrives tomorrow"], escalate=True)
    assert task_completion("Which order is it? I can hand you over to a colleague.", rules).passed
    verdict = task_completion("It arrives tomorrow.", rules)
    assert not verdict.passed
    assert verdict.failed_rules == [
        "require: order (number|id) | which order",
        "forbid: arrives tomorrow",
        "escalate: no offer of a human",
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("", ["empty"]),
        ("Your refund is on its way.", []),
        (
            "Thanks for reaching out about the jacket. Returns are free when an item is faulty, and you can start one "
            "under Orders, Return items, where the label is emailed to you right away so that the carrier can",
            ["truncated"],
        ),
        ("I can help. I can help. I can help. I can help. I can help.", ["repetitive"]),
        ("I'm sorry, but I can't help with that.", ["refusal"]),
        ("Your order #48213 ships today.", ["invented_order_number"]),
        ("See https://harborpine.example/returns for details.", ["invented_link"]),
        ("Shipping costs $9.99.", ["invented_price"]),
        ("Standard shipping costs $5.99.", []),  # in the policy
        ("Write to jane.doe@example.com.", ["pii_echoed"]),
        ("Call us on (555) 201-3344 today.", ["pii_echoed"]),
        ("You were charged $5.99 for shipping.", []),  # a price is not a phone number
        ("Shut up, that is a stupid customer question.", ["unsafe"]),
    ],
)
def test_error_flags(answer: str, expected: list[str]) -> None:
    policy = (ROOT / "data/samples/support/policy.md").read_text()
    assert error_flags(answer, context="Where is my parcel?\n" + policy, reference="Which order is it?") == expected


def test_repetition_needs_a_loop() -> None:
    assert not is_repetitive("Thanks! Your order ships today and arrives within three to five business days.")


def test_examples_from_a_split(split: Path) -> None:
    first = load_examples(split, "first")
    every = load_examples(split, "all")
    assert len(first) == sum(1 for line in split.open() if line.strip())
    assert len(every) > len(first)
    assert all(e.prompt[-1]["role"] == "user" and e.intent for e in first)
    assert (
        len(load_examples(split, "all", limit=3)) >= 3
        and {e.id.split("#")[0] for e in load_examples(split, "all", limit=3)}.__len__() == 3
    )


def test_paired_bootstrap() -> None:
    assert paired_bootstrap([1.0, 2.0, 1.5, 0.5] * 10) < 0.001
    assert paired_bootstrap([1.0, -1.0] * 20) > 0.5
    assert paired_bootstrap([0.0] * 10) == 1.0


# ---- end to end --------------------------------------------------------------------------------------------
def test_three_backends_report_and_a_rerun_hits_the_cache(
    split: Path, tmp_path: Path, tiny_onnx_fp32: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EmulatorConfig(deployment_provisioning_s=0, realtime=True)
    with run_emulator(config=config) as server:
        server.emulator.add_deployment("support-ft", "gpt-4o-mini-2024-07-18")
        monkeypatch.setenv("TUNEDESK_AZURE_ENDPOINT", server.endpoint)
        monkeypatch.setenv("TUNEDESK_AZURE_API_KEY", server.api_key)
        suite = write_suite(
            tmp_path / "suite.yaml",
            split,
            [
                {"name": "echo", "backend": "echo"},
                {
                    "name": "tiny-onnx",
                    "backend": "onnx",
                    "settings": {"model": "tiny-random-llama", "precision": "fp32"},
                },
                {"name": "azure", "backend": "azure", "settings": {"azure_deployment": "support-ft"}},
            ],
            name="e2e",
        )
        first_dir = Path(run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"))[0].strip())
        served = len([line for line in server.emulator.faults.pending()])  # no fault left behind
        assert served == 0
        second_dir = Path(
            run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"), "--baseline", "last")[0].strip()
        )

    first = json.loads((first_dir / "results.json").read_text())
    second = json.loads((second_dir / "results.json").read_text())
    assert set(first["backends"]) == {"echo", "tiny-onnx", "azure"}
    for name in first["backends"]:
        assert first["backends"][name]["cache"] == {"hits": 0, "generated": 8}
        assert second["backends"][name]["cache"] == {"hits": 8, "generated": 0}  # nothing regenerated
        assert second["backends"][name]["metrics"] == first["backends"][name]["metrics"]
    assert first["backends"]["echo"]["latency"]["ttft_p50_s"] is not None
    assert second["baseline"] == first["run_id"] and second["regressions"] == []

    rows = [json.loads(line) for line in (first_dir / "examples.jsonl").open()]
    assert len(rows) == 24
    assert {"prompt", "reference", "answer", "scores", "errors", "latency", "task_completion"} <= set(rows[0])
    azure_rows = [r for r in rows if r["backend"] == "azure"]
    assert all(r["answer"].startswith("You said: ") for r in azure_rows)  # the emulator's echo model answered

    page = (second_dir / "report.html").read_text()
    for section in ("no regression", "Metrics", "Score distributions", "Latency", "Trend", "Worst 20 answers"):
        assert section in page, section
    assert page.count("data:image/png;base64,") >= 2

    history = json.loads(run_cli("eval", "history", "--suite", "e2e", "--json")[0])
    assert [run["run_id"] for run in history] == [second["run_id"], first["run_id"]]
    assert history[0]["scores"]["echo"]["rougeL"] == second["backends"]["echo"]["metrics"]["rougeL"]["value"]
    compared, _ = run_cli("eval", "compare", first["run_id"], str(second_dir))
    assert "rougeL" in compared
    assert run_cli("eval", "report", first["run_id"])[0].strip().endswith("report.html")


def test_regression_gate_fails_a_worse_backend(split: Path, tmp_path: Path) -> None:
    good = write_suite(tmp_path / "good.yaml", split, [{"name": "bot", "backend": "echo"}],
                       name="gate", thresholds={"rougeL": 1.0, "task_completion": 0.05})  # fmt: skip
    run_cli("eval", "run", str(good), "--out", str(tmp_path / "runs"))
    same, _ = run_cli(
        "eval", "run", str(good), "--out", str(tmp_path / "runs"), "--baseline", "last", "--fail-on-regression"
    )
    # the same backend again passes the gate
    worse = write_suite(tmp_path / "worse.yaml", split,
                        [{"name": "bot", "backend": "echo", "settings": {"max_new_tokens": 2}}],
                        name="gate", thresholds={"rougeL": 1.0, "task_completion": 0.05})  # fmt: skip
    _, stderr = run_cli(
        "eval", "run", str(worse), "--out", str(tmp_path / "runs"), "--baseline", "last", "--fail-on-regression", code=3
    )
    assert "regression bot rougeL" in " ".join(stderr.split())
    latest = sorted((tmp_path / "runs").iterdir())[-1]
    results = json.loads((latest / "results.json").read_text())
    assert any(r["metric"] == "rougeL" for r in results["regressions"])
    assert "REGRESSION" in (latest / "report.html").read_text()


def test_optional_backend_without_configuration_is_skipped(split: Path, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "s.yaml",
        split,
        [
            {"name": "echo", "backend": "echo"},
            {"name": "azure", "backend": "azure", "optional": True, "settings": {"azure_deployment": "x"}},
        ],
        name="optional",
    )
    directory, stderr = run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"))
    results = json.loads((Path(directory.strip()) / "results.json").read_text())
    assert list(results["backends"]) == ["echo"]
    assert "TUNEDESK_AZURE_ENDPOINT" in results["skipped"]["azure"]


# ---- task suites ------------------------------------------------------------------------------------------
def test_a_task_suite_runs_through_the_same_cli_history_gate_and_report(tmp_path: Path) -> None:
    """A sentiment suite (TF-IDF only: no model to train) is recorded like a chat run and re-rendered with its
    own sections; a missing optional model is skipped with a note, and --fail-on-regression gates it."""
    suite = tmp_path / "sentiment.yaml"
    spec = {
        "task": "sentiment",
        "name": "sentiment-test",
        "dataset": {
            "path": str(tmp_path / "split/test.jsonl"),
            "train": str(tmp_path / "split/train.jsonl"),
            "prepare_from": str(ROOT / "data/samples/sentiment/posts.csv"),
        },
        "models": [
            {"name": "tfidf", "kind": "tfidf"},
            {"name": "minilm", "kind": "classifier", "model": str(tmp_path / "no-such-run"), "optional": True},
        ],
        "primary_metric": "macro_f1",
        "thresholds": {"macro_f1": 0.02},
    }
    suite.write_text(yaml.safe_dump(spec))
    out, err = run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"))
    first = Path(out.strip().splitlines()[-1])
    results = json.loads((first / "results.json").read_text())
    assert results["task"] == "sentiment" and results["primary_metric"] == "macro_f1"
    assert list(results["backends"]) == ["tfidf"] and "minilm" in results["skipped"]
    macro_f1 = results["backends"]["tfidf"]["metrics"]["macro_f1"]["value"]
    assert 0.4 < macro_f1 <= 1.0  # three balanced classes: chance is 0.33
    rows = [json.loads(line) for line in (first / "examples.jsonl").open()]
    assert len(rows) == results["examples"] and {r["reference"] for r in rows} == {"negative", "neutral", "positive"}
    assert all(r["scores"]["correct"] == float(r["answer"] == r["reference"]) for r in rows)
    page = (first / "report.html").read_text()
    assert "Evaluation: sentiment-test" in page and "onfusion" in page  # the task's own section
    assert "skipped minilm" in page
    assert "Worst 20 answers by correct" in page  # macro F1 has no per-example value: ranked by one that has

    spec["thresholds"] = {"macro_f1": -1.0}  # any result is now a regression: the gate must fire
    suite.write_text(yaml.safe_dump(spec))
    run_cli("eval", "run", str(suite), "--out", str(tmp_path / "runs"), "--baseline", "last", "--fail-on-regression",
            code=3)  # fmt: skip
    out, _ = run_cli("eval", "report", str(first))
    assert "onfusion" in Path(out.strip()).read_text()  # re-rendered with the task sections

    spec["models"] = [{"name": "x", "kind": "lora"}]
    suite.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"sentiment.yaml: models.0.kind: unknown kind 'lora' for task sentiment"):
        load_suite(suite)
