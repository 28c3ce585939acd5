"""Human ratings in the harness: every number is scipy's or krippendorff's own on the same inputs.

The database is a temporary SQLite file filled through the chat store's own writers (answers, ratings,
surveys, escalations) and the review queue's, exactly as the chat UI fills it.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import krippendorff
import numpy as np
import pytest
import yaml
from scipy import stats
from sqlalchemy import select, update
from typer.testing import CliRunner

from chatbot import review, store
from eval.human import AXES, human_report, iso_week, krippendorff_alpha, mean_interval
from tunedesk.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units example with
# missing values (the krippendorff package's docstring uses it too): nominal alpha .743, ordinal .815.
PUBLISHED = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def answer(message_id: str, thread_id: str = "t1", backend: str = "onnx", model: str = "smollm2-135m", **changes):
    return store.Answer(
        message_id=message_id,
        run_id=f"run-{message_id}",
        thread_id=thread_id,
        user="customer",
        profile=None,
        backend=backend,
        model=model,
        prompt=changes.pop("prompt", f"question {message_id}"),
        answer=changes.pop("answer", f"answer {message_id}"),
        **changes,
    )


def rate(engine, message_id: str, rater: str, **scores) -> None:
    store.record_rating(engine, store.RatingIn(message_id=message_id, **scores), rater, "chat")


def t_interval(values: list[float]) -> tuple[float, float]:
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    return float(low), float(high)


# ---- means, intervals, thumbs -------------------------------------------------------------------------------
def test_means_and_intervals_are_scipys_over_answers(records) -> None:
    rng = random.Random(3)
    expected: dict[str, dict[str, list[float]]] = {"onnx": {a: [] for a in AXES}, "azure": {a: [] for a in AXES}}
    for backend in expected:
        for number in range(6):
            message_id = f"{backend}-{number}"
            store.record_answer(records, answer(message_id, thread_id=message_id, backend=backend, model=backend))
            given = {axis: [] for axis in AXES}
            for rater in ("ana", "bo", "cy")[: 1 + number % 3]:
                scores = {axis: rng.randint(1, 5) for axis in AXES}
                rate(records, message_id, rater, **scores)
                for axis, value in scores.items():
                    given[axis].append(value)
            for axis in AXES:
                expected[backend][axis].append(float(np.mean(given[axis])))  # each answer's raters averaged
    rate(records, "onnx-0", "ana", naturalness=1, correctness=1, helpfulness=1)  # a changed mind counts once
    expected["onnx"] = {axis: [1.0, *values[1:]] for axis, values in expected["onnx"].items()}

    found = human_report(records)
    assert [(m.backend, m.model) for m in found.by_model] == [("azure", "azure"), ("onnx", "onnx")]
    for entry in found.by_model:
        for axis in AXES:
            values, mean = expected[entry.backend][axis], entry.axes[axis]
            low, high = t_interval(values)
            assert (mean.n, mean.ratings) == (6, 12)
            assert mean.mean == pytest.approx(np.mean(values))
            assert (mean.ci_low, mean.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_thumbs_share_has_scipys_wilson_interval(records) -> None:
    for number in range(10):
        store.record_answer(records, answer(f"m{number}"))
        store.record_rating(
            records, store.RatingIn(message_id=f"m{number}", kind="thumbs", thumbs=int(number < 7)), "ana", "chat"
        )
    thumbs = human_report(records).by_model[0].thumbs
    interval = stats.binomtest(7, 10).proportion_ci(0.95, method="wilson")
    assert (thumbs.n, thumbs.up, thumbs.ratio) == (10, 7, 0.7)
    assert (thumbs.ci_low, thumbs.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    # and it is the Wilson score interval as published: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z, p, n = stats.norm.ppf(0.975), 0.7, 10
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    assert (thumbs.ci_low, thumbs.ci_high) == (pytest.approx(centre - half), pytest.approx(centre + half))


def test_intervals_where_there_is_no_spread_or_one_answer() -> None:
    assert mean_interval([]) == (None, None, None)
    assert mean_interval([4.0]) == (4.0, None, None)
    assert mean_interval([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
    values = [2.0, 5.0, 4.0, 4.5]
    assert mean_interval(values)[1:] == pytest.approx(t_interval(values))


# ---- agreement ----------------------------------------------------------------------------------------------
def test_alpha_reproduces_krippendorffs_published_example(records) -> None:
    for unit in range(12):
        store.record_answer(records, answer(f"u{unit}", thread_id=f"u{unit}"))
    for coder, values in enumerate(PUBLISHED):
        for unit, value in enumerate(values):
            if value is not None:
                rate(records, f"u{unit}", f"coder{coder}", correctness=value)

    found = human_report(records).agreement
    matrix = np.array([[np.nan if v is None else v for v in row] for row in PUBLISHED], dtype=float)
    assert round(krippendorff.alpha(matrix, level_of_measurement="nominal"), 3) == 0.743  # the published data
    assert round(found["correctness"].alpha, 3) == 0.815  # the published ordinal value
    assert found["correctness"].alpha == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, value_domain=[1, 2, 3, 4, 5], level_of_measurement="ordinal")
    )
    assert (found["correctness"].units, found["correctness"].raters) == (11, 4)  # unit 12 has one coder only
    assert found["naturalness"].alpha is None and "found 0" in (found["naturalness"].reason or "")


def test_alpha_needs_shared_answers_and_some_spread() -> None:
    one_shared = krippendorff_alpha({"a": {"x": 4, "y": 5}, "b": {"x": 3}})
    assert one_shared.alpha is None and one_shared.reason == "needs 2+ answers rated by 2+ raters, found 1"
    same = krippendorff_alpha({"a": {"x": 4, "y": 4}, "b": {"x": 4, "y": 4}})
    assert same.alpha is None and "same value" in (same.reason or "")


# ---- live outcomes ------------------------------------------------------------------------------------------
def test_live_outcomes_per_backend_and_week(records) -> None:
    for thread, backend in [("t1", "onnx"), ("t2", "onnx"), ("t3", "onnx"), ("t4", "azure"), ("old", "onnx")]:
        store.record_answer(records, answer(f"{thread}-a", thread_id=thread, backend=backend))
        store.record_answer(records, answer(f"{thread}-b", thread_id=thread, backend=backend))
    store.record_survey(records, "t1", "customer", store.SurveyIn(resolved=True, csat=5))
    store.record_survey(records, "t2", "customer", store.SurveyIn(resolved=False, csat=2))
    store.record_survey(records, "t2", "customer", store.SurveyIn(resolved=False, csat=1))  # changed: counts once
    store.record_survey(records, "t3", "customer", store.SurveyIn(csat=4))  # did not say whether resolved
    store.record_escalation(records, "t2", "customer", "user_request")
    store.record_escalation(records, "t3", "customer", "bot_unsure")
    store.record_escalation(records, "t4", "customer", "bot_unsure")
    store.record_escalation(records, "nobody-answered", "customer", "user_request")
    three_weeks_ago = datetime.now(UTC) - timedelta(weeks=3)
    with records.begin() as conn:
        conn.execute(
            update(store.answers_table)
            .where(store.answers_table.c.thread_id == "old")
            .values(created_at=three_weeks_ago)
        )

    weeks = {(w.backend, w.week): w for w in human_report(records).outcomes}
    this_week, earlier = iso_week(datetime.now(UTC)), iso_week(three_weeks_ago)
    assert set(weeks) == {("onnx", this_week), ("azure", this_week), ("onnx", earlier)}
    onnx = weeks[("onnx", this_week)]
    assert (onnx.conversations, onnx.surveys, onnx.csat_n, onnx.resolved_n, onnx.escalated) == (3, 3, 3, 2, 2)
    assert onnx.csat_mean == pytest.approx(np.mean([5, 1, 4]))
    assert onnx.resolution_rate == 0.5 and onnx.escalation_rate == pytest.approx(2 / 3)
    assert onnx.reasons == {"user_request": 1, "bot_unsure": 1}
    azure = weeks[("azure", this_week)]
    assert (azure.conversations, azure.surveys, azure.csat_mean, azure.escalation_rate) == (1, 0, None, 1.0)
    assert weeks[("onnx", earlier)].conversations == 1

    recent = human_report(records, since=datetime.now(UTC) - timedelta(days=1)).outcomes
    assert {(w.backend, w.week) for w in recent} == {("onnx", this_week), ("azure", this_week)}


# ---- an eval run, its review batch, and the CLI -------------------------------------------------------------
@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("support")
    prepare([ROOT / "data/samples/support/raw.csv"], out, PrepareConfig(system_prompt=None))
    return out / "test.jsonl"


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.stderr


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The database the CLI uses (TUNEDESK_DATABASE_URL), for this test alone."""
    from tunedesk.db import engine
    from tunedesk.settings import load_settings

    monkeypatch.setenv("TUNEDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return engine(load_settings())


def eval_run(split: Path, tmp_path: Path) -> Path:
    suite = {
        "name": "human",
        "dataset": {"path": str(split), "turns": "first", "limit": 8},
        "cases": str(ROOT / "eval/cases/support.yaml"),
        "backends": [
            {"name": "echo", "backend": "echo"},
            {"name": "terse", "backend": "echo", "settings": {"max_new_tokens": 4}},
        ],
        "generation": {"max_new_tokens": 40},
        "metrics": ["bleu", "chrf", "rouge"],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    return Path(run_cli("eval", "run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "runs")).strip())


def test_ratings_of_a_runs_review_batch_correlate_with_its_metrics(split: Path, tmp_path: Path, database) -> None:
    directory = eval_run(split, tmp_path)
    rows = [json.loads(line) for line in (directory / "examples.jsonl").open()]
    review.add_batch(database, "nightly", str(directory), review.items_from_eval(directory), ratings_per_item=3)
    with database.connect() as conn:
        items = [dict(r) for r in conn.execute(select(review.items_table)).mappings()]
    rng = random.Random(7)
    best = max(r["scores"]["rougeL"] for r in rows)
    human: dict[tuple[str, str], dict[str, dict[str, int]]] = {}  # (backend, example id) -> axis -> rater -> score
    for item in items:  # as the chat's rate action stores a review rating: the item's snapshot, source review
        example_id = item["origin"].removeprefix(f"eval:{directory.name}:")
        row = next(r for r in rows if r["id"] == example_id and r["backend"] == item["backend"])
        for rater in ("ana", "bo", "cy")[: rng.randint(2, 3)]:
            level = 1 + round(4 * row["scores"]["rougeL"] / best)  # people roughly agree with ROUGE-L, plus noise
            scores = {axis: min(5, max(1, level + rng.choice([-1, 0, 0, 1]))) for axis in AXES}
            rating = store.RatingIn(message_id=item["id"], prompt=item["prompt"], answer=item["answer"],
                                    backend=item["backend"], model=item["model"], **scores)  # fmt: skip
            store.record_rating(database, rating, rater, "review")
            for axis, value in scores.items():
                human.setdefault((row["backend"], row["id"]), {}).setdefault(axis, {})[rater] = value
    # a chat answer identical to one of the run's answers is matched by its text; another one is not
    chat_row = rows[0]
    question = chat_row["prompt"][-1]["content"]
    store.record_answer(database, answer("c1", prompt=question, answer=chat_row["answer"], backend=chat_row["backend"]))
    store.record_answer(database, answer("c2"))
    rate(database, "c1", "dee", correctness=2)
    rate(database, "c2", "dee", correctness=5)
    human[(chat_row["backend"], chat_row["id"])]["correctness"]["dee"] = 2

    found = json.loads(run_cli("eval", "human", "--run", str(directory), "--json"))
    rated = sum(1 for r in store.ratings(database) if r["source"] == "review")
    assert found["matched"] == {"origin": rated, "exact": 1, "unmatched": 1}
    assert found["run"] == directory.name and found["ratings"] == rated + 1
    assert [(m["backend"], m["model"]) for m in found["by_model"]] == [("echo", "echo"), ("terse", "echo")]
    for entry in found["by_model"]:
        for axis in AXES:
            means = [float(np.mean(list(v[axis].values()))) for (b, _), v in human.items() if b == entry["backend"]]
            low, high = t_interval(means)
            got = entry["axes"][axis]
            assert got["n"] == len(means) and got["mean"] == pytest.approx(np.mean(means))
            assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low), pytest.approx(high))

    by_key = {(r["backend"], r["id"]): r for r in rows}
    correlations = {(c["metric"], c["axis"]): c for c in found["correlations"]}
    for metric in ("rougeL", "chrf", "bleu"):
        for axis in AXES:
            keys = sorted(human)
            automatic = [by_key[k]["scores"][metric] for k in keys]
            people = [float(np.mean(list(human[k][axis].values()))) for k in keys]
            rho, tau = stats.spearmanr(automatic, people), stats.kendalltau(automatic, people)
            got = correlations[(metric, axis)]
            assert got["n"] == len(keys) and got["reason"] is None
            assert got["spearman"] == pytest.approx(rho.statistic) and got["spearman_p"] == pytest.approx(rho.pvalue)
            assert got["kendall"] == pytest.approx(tau.statistic) and got["kendall_p"] == pytest.approx(tau.pvalue)
    assert correlations[("rougeL", "correctness")]["spearman"] > 0.5

    for axis in AXES:  # alpha over the run's answers, from the same reliability matrix
        raters = ["ana", "bo", "cy", "dee"]
        units = [k for k in sorted(human) if len(human[k][axis]) >= 2]
        matrix = np.full((len(raters), len(units)), np.nan)
        for column, key in enumerate(units):
            for rater, value in human[key][axis].items():
                matrix[raters.index(rater), column] = value
        expected = krippendorff.alpha(
            reliability_data=matrix, value_domain=[1, 2, 3, 4, 5], level_of_measurement="ordinal"
        )
        assert found["agreement"][axis]["alpha"] == pytest.approx(expected)

    page = run_cli("eval", "report", str(directory)).strip()
    html = Path(page).read_text()
    assert "Human ratings" in html and "Krippendorff" in html and "Spearman" in html
    assert html.count("data:image/png;base64,") >= 2  # the score distributions and the human means
    table = run_cli("eval", "human", "--run", directory.name)  # a run id from the history works too
    assert "Human ratings" in table and "terse" in table


def test_human_command_without_a_run_and_its_errors(database) -> None:
    store.record_answer(database, answer("m1"))
    rate(database, "m1", "ana", naturalness=4, correctness=5)
    rate(database, "m1", "bo", naturalness=2, correctness=4)
    store.record_survey(database, "t1", "customer", store.SurveyIn(resolved=True, csat=4))
    found = json.loads(run_cli("eval", "human", "--json"))
    assert found["ratings"] == 2 and found["run"] is None and found["matched"] == {}
    (model,) = found["by_model"]
    assert model["axes"]["naturalness"] == {"n": 1, "ratings": 2, "mean": 3.0, "ci_low": None, "ci_high": None}
    assert found["outcomes"][0]["csat_mean"] == 4.0 and found["outcomes"][0]["resolution_rate"] == 1.0
    assert found["correlations"] == [] and found["agreement"]["naturalness"]["alpha"] is None
    later = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert json.loads(run_cli("eval", "human", "--since", later, "--json"))["by_model"] == []
    assert "Live outcomes" in run_cli("eval", "human")

    error = run_cli("eval", "human", "--run", "no-such-run", code=1)
    assert "error: no run 'no-such-run' in the history" in " ".join(error.split())
