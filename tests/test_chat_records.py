"""The chat's records without a server: migrations, answers and ratings with history, users and tokens."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, text

from chatbot import store
from tunedesk import users
from tunedesk.db import current_revision, downgrade, migrate
from tunedesk.errors import ConfigError
from tunedesk.settings import Settings


def answer(message_id: str = "m1", **changes) -> store.Answer:
    fields = dict(
        message_id=message_id,
        run_id=f"run-{message_id}",
        thread_id="t1",
        user="alice",
        profile=None,
        backend="onnx",
        model="smollm2-135m",
        prompt="Where is my order?",
        answer="Please send me your order number.",
        ttft_s=0.1,
        total_s=0.8,
        tokens=9,
    )
    return store.Answer(**{**fields, **changes})


# ---- migrations -----------------------------------------------------------------------------------------------
def test_a_fresh_database_gets_every_table_at_the_newest_revision(records) -> None:
    tables = set(inspect(records).get_table_names())
    assert {"users", "threads", "steps", "elements", "feedbacks", "ratings", "chat_answers", "chat_outcomes"} <= tables
    assert {"azure_fine_tune_jobs", "eval_runs", "eval_scores", "eval_generations"} <= tables
    step_columns = {c["name"] for c in inspect(records).get_columns("steps")}
    assert {"autoCollapse", "icon", "defaultOpen", "command", "modes"} <= step_columns
    assert current_revision(records) == "0005"


def test_a_database_from_before_migrations_keeps_its_rows(tmp_path: Path) -> None:
    """0.1 stores created their own tables; upgrading stamps them and adds the rest, losing nothing."""
    from eval.history import metadata as history_metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    history_metadata.create_all(engine)  # what History() did before migrations
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO eval_runs VALUES ('r1', 'nightly', '2026-11-01 00:00:00', '/runs/r1')"))
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM eval_runs")).scalars().all() == ["r1"]
    assert current_revision(engine) == "0005"
    assert "ratings" in inspect(engine).get_table_names()


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.db'}")
    migrate(engine)
    downgrade(engine, "0001")
    assert "ratings" not in inspect(engine).get_table_names()
    assert current_revision(engine) == "0001"
    migrate(engine)
    assert "ratings" in inspect(engine).get_table_names()


# ---- ratings --------------------------------------------------------------------------------------------------
def test_a_changed_rating_supersedes_and_history_keeps_both(records) -> None:
    store.record_answer(records, answer())
    first = store.record_rating(records, store.RatingIn(message_id="m1", naturalness=4, correctness=5), "alice", "chat")
    second = store.record_rating(records, store.RatingIn(message_id="m1", helpfulness=2), "alice", "chat")
    other = store.record_rating(records, store.RatingIn(message_id="m1", naturalness=1), "bob", "review")
    thumbs = store.record_rating(records, store.RatingIn(message_id="m1", kind="thumbs", thumbs=0), "alice", "chat")
    assert second["supersedes"] == first["id"]
    assert other["supersedes"] is None and thumbs["supersedes"] is None  # another rater, another kind

    current = store.ratings(records)
    assert [r["id"] for r in current] == [second["id"], other["id"], thumbs["id"]]
    assert [r["id"] for r in store.ratings(records, store.RatingFilter(history=True))] == [
        first["id"],
        second["id"],
        other["id"],
        thumbs["id"],
    ]
    assert store.current_scores(records, ["m1"], "alice")["m1"]["helpfulness"] == 2
    # the snapshot of what was judged
    assert (current[0]["prompt"], current[0]["backend"], current[0]["model"]) == (
        "Where is my order?",
        "onnx",
        "smollm2-135m",
    )


def test_thumbs_given_for_the_run_step_land_on_its_answer(records) -> None:
    store.record_answer(records, answer())
    row = store.record_rating(records, store.RatingIn(message_id="run-m1", kind="thumbs", thumbs=1), "a", "chat")
    assert row["message_id"] == "m1"


def test_ratings_of_unknown_answers_and_empty_ratings_are_refused(records) -> None:
    with pytest.raises(store.RatingError, match="'nope': no such answer"):
        store.record_rating(records, store.RatingIn(message_id="nope", naturalness=3), "alice", "chat")
    with pytest.raises(ValidationError, match="at least one of naturalness"):
        store.RatingIn(message_id="m1")
    with pytest.raises(ValidationError, match="less than or equal to 5"):
        store.RatingIn(message_id="m1", correctness=6)
    with pytest.raises(ValidationError, match="thumbs rating needs thumbs"):
        store.RatingIn(message_id="m1", kind="thumbs")
    assert store.ratings(records, store.RatingFilter(history=True)) == []
    # an automated rater may judge an answer the chat never gave, if it says what it judged
    row = store.record_rating(
        records,
        store.RatingIn(message_id="eval:r1:42", correctness=2, prompt="q", answer="a", backend="azure"),
        "judge",
        "api",
    )
    assert (row["prompt"], row["backend"], row["thread_id"]) == ("q", "azure", None)


def test_filters_and_both_export_formats(records) -> None:
    store.record_answer(records, answer("m1"))
    store.record_answer(records, answer("m2", backend="echo", model="echo"))
    store.record_rating(
        records, store.RatingIn(message_id="m1", naturalness=5, comment='says "hi", twice'), "a", "chat"
    )
    store.record_rating(records, store.RatingIn(message_id="m2", naturalness=1), "b", "chat")
    only_echo = store.ratings(records, store.RatingFilter(backend="echo"))
    assert [r["message_id"] for r in only_echo] == ["m2"]
    assert [r["rater"] for r in store.ratings(records, store.RatingFilter(rater="a"))] == ["a"]

    rows = store.ratings(records)
    parsed = list(csv.DictReader(io.StringIO(store.to_csv(rows))))
    assert [p["naturalness"] for p in parsed] == ["5", "1"]
    assert parsed[0]["comment"] == 'says "hi", twice'
    assert list(parsed[0]) == store.EXPORT_COLUMNS
    lines = [json.loads(line) for line in store.to_jsonl(rows).splitlines()]
    assert lines[1]["backend"] == "echo" and lines[0]["created_at"].endswith("+00:00")
    since = rows[1]["created_at"]
    assert [r["message_id"] for r in store.ratings(records, store.RatingFilter(since=since))] == ["m2"]


def test_csv_exports_defuse_spreadsheet_formulas_and_jsonl_keeps_the_text(records) -> None:
    store.record_answer(records, answer("m1", prompt='=HYPERLINK("http://evil.example","refund")', answer="-1 day"))
    store.record_rating(records, store.RatingIn(message_id="m1", naturalness=3, comment="@admin fine"), "alice", "chat")
    rows = store.ratings(records)
    exported = next(csv.DictReader(io.StringIO(store.to_csv(rows))))
    assert exported["prompt"] == '\'=HYPERLINK("http://evil.example","refund")'
    assert (exported["answer"], exported["comment"], exported["naturalness"]) == ("'-1 day", "'@admin fine", "3")
    assert json.loads(store.to_jsonl(rows))["prompt"].startswith("=HYPERLINK")


def test_the_database_refuses_a_score_outside_one_to_five(records) -> None:
    """The check constraints hold even for a writer that skips RatingIn."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), records.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ratings (id, created_at, rater, source, kind, message_id, naturalness) "
                "VALUES ('x', '2026-01-01', 'a', 'chat', 'scores', 'm', 9)"
            )
        )


# ---- how conversations ended ------------------------------------------------------------------------------------
def test_a_survey_names_the_answer_it_followed_and_a_second_one_supersedes_it(records) -> None:
    store.record_answer(records, answer("m1"))
    store.record_answer(records, answer("m2", backend="azure", model="ft:gpt-4o-mini"))
    first = store.record_survey(records, "t1", "alice", store.SurveyIn(resolved=False, csat=2))
    second = store.record_survey(records, "t1", "alice", store.SurveyIn(resolved=True, csat=4, comment=" thanks "))
    assert (second["message_id"], second["backend"], second["supersedes"]) == ("m2", "azure", first["id"])
    store.record_survey(records, "t1", "bob", store.SurveyIn(csat=5))  # another person's survey stands beside it
    current = store.outcomes(records, kind="survey")
    assert [(r["user"], r["resolved"], r["csat"], r["comment"]) for r in current] == [
        ("alice", 1, 4, "thanks"),
        ("bob", None, 5, None),
    ]
    assert len(store.outcomes(records, kind="survey", history=True)) == 3


def test_an_empty_survey_and_an_unknown_escalation_reason_are_refused(records) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(ValidationError, match="resolved"):
        store.SurveyIn(comment="no answer given")
    with pytest.raises(ValidationError, match="csat"):
        store.SurveyIn(csat=6)
    escalated = store.record_escalation(records, "t9", "carol", "user_request")
    assert (escalated["kind"], escalated["reason"], escalated["message_id"]) == ("escalation", "user_request", None)
    with pytest.raises(IntegrityError), records.begin() as conn:  # the database holds the rule for any writer
        conn.execute(
            text(
                "INSERT INTO chat_outcomes (id, created_at, kind, thread_id, user, reason) "
                "VALUES ('x', '2026-01-01', 'escalation', 't', 'a', 'bored')"
            )
        )


def test_the_admin_page_counts_the_last_24_hours_hour_by_hour(records) -> None:
    import numpy as np

    from chatbot import dashboard

    def at(table: str, column: str, key: str, when: str) -> None:
        with records.begin() as conn:
            conn.execute(
                text(f"UPDATE {table} SET created_at = :when WHERE {column} = :key"), {"when": when, "key": key}
            )

    for message_id, total, error, when in [
        ("m1", 1.0, None, "2026-11-23 11:05:00"),
        ("m2", 2.0, None, "2026-11-23 11:20:00"),
        ("m3", 9.0, "TimeoutError", "2026-11-23 11:40:00"),
        ("m4", 5.0, None, "2026-11-23 12:10:00"),
        ("old", 1.0, None, "2026-11-22 12:59:00"),  # just before the window
    ]:
        store.record_answer(records, answer(message_id, total_s=total, error=error))
        at("chat_answers", "message_id", message_id, when)
    for message_id, rater, up in [("m1", "a", 1), ("m2", "a", 1), ("m2", "b", 0)]:
        row = store.record_rating(
            records, store.RatingIn(message_id=message_id, kind="thumbs", thumbs=up), rater, "chat"
        )
        at("ratings", "id", row["id"], "2026-11-23 11:30:00")
    for user, resolved, csat in [("a", True, 4), ("b", False, 2)]:
        row = store.record_survey(records, "t1", user, store.SurveyIn(resolved=resolved, csat=csat))
        at("chat_outcomes", "id", row["id"], "2026-11-23 11:50:00")
    row = store.record_escalation(records, "t1", "a", "user_request")
    at("chat_outcomes", "id", row["id"], "2026-11-23 12:15:00")

    data = dashboard.last_24_hours(records, now=datetime(2026, 11, 23, 12, 30, tzinfo=UTC))
    assert data.hours[0] == datetime(2026, 11, 22, 13, tzinfo=UTC) and len(data.hours) == 24
    assert data.answers[-2:] == [3, 1] and sum(data.answers) == 4
    assert data.p95_latency_s[-2] == pytest.approx(np.percentile([1.0, 2.0], 95))  # the failed answer is left out
    assert data.error_rate[-2:] == [pytest.approx(1 / 3), 0.0] and data.error_rate[0] is None
    assert data.thumbs_up_ratio[-2] == pytest.approx(2 / 3)
    assert (data.csat[-2], data.resolution_rate[-2]) == (3.0, 0.5)
    assert data.escalations["user_request"][-1] == 1 and sum(data.escalations["bot_unsure"]) == 0
    assert data.day == {
        "answers": 4,
        "p95_latency_s": pytest.approx(np.percentile([1.0, 2.0, 5.0], 95)),
        "error_rate": 0.25,
        "thumbs_up_ratio": pytest.approx(2 / 3),
        "csat": 3.0,
        "resolution_rate": 0.5,
        "escalations": 1,
    }
    html = dashboard.page(data, "lead <admin>")
    assert html.count("<svg") == 1 and "Resolution rate" in html and "lead &lt;admin&gt;" in html
    assert "<tr><th>answers</th><td>4</td></tr>" in html and "<tr><th>resolved</th><td>50.0%</td></tr>" in html


# ---- users ----------------------------------------------------------------------------------------------------
def test_users_are_argon2_hashes_in_a_private_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert users.add(settings, "alice@example.com", "s3cret-enough", "agent") is True
    assert users.add(settings, "alice@example.com", "another-secret", "admin") is False
    path = users.users_file(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = path.read_text()
    assert "another-secret" not in content and "$argon2id$" in content
    assert users.check_password(settings, "alice@example.com", "another-secret") == users.Signed(
        name="alice@example.com", role="admin"
    )
    assert users.check_password(settings, "alice@example.com", "s3cret-enough") is None
    assert users.check_password(settings, "mallory", "another-secret") is None
    with pytest.raises(ConfigError, match="at least 8"):
        users.add(settings, "bob", "short", "agent")
    users.remove(settings, "alice@example.com")
    assert users.all_users(settings) == {}


def test_api_tokens_are_shown_once_and_kept_as_hashes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    users.add(settings, "judge", "a-long-password", "agent")
    token = users.new_token(settings, "judge", label="nightly")
    assert token.startswith("td_") and token not in users.users_file(settings).read_text()
    assert users.check_token(settings, token) == users.Signed(name="judge", role="agent")
    assert users.check_token(settings, token + "x") is None
    assert users.check_token(settings, "not-a-token") is None
    with pytest.raises(ConfigError, match="no user 'ghost'"):
        users.new_token(settings, "ghost")


def test_a_malformed_users_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    settings = Settings(home=tmp_path, users_file=path)
    path.write_text("users:\n  alice:\n    role: boss\n")
    with pytest.raises(ConfigError, match=rf"{path}: user 'alice', field role"):
        users.all_users(settings)
    path.write_text("users: [\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        users.all_users(settings)


def test_users_from_the_environment_sign_in_too(tmp_path: Path, monkeypatch) -> None:
    hashed = users.hash_password("from-a-secret-store")
    monkeypatch.setenv("TUNEDESK_USERS", json.dumps({"ops": {"role": "admin", "password": hashed}}))
    from tunedesk.settings import load_settings

    settings = load_settings(home=tmp_path)
    assert users.check_password(settings, "ops", "from-a-secret-store") == users.Signed(name="ops", role="admin")


def test_the_first_start_creates_one_admin_and_the_auth_secret_once(tmp_path: Path, monkeypatch) -> None:
    settings = Settings(home=tmp_path)
    where = users.ensure_first_admin(settings)
    assert where is not None and stat.S_IMODE(os.stat(where).st_mode) == 0o600
    password = where.read_text().strip()
    assert users.check_password(settings, "admin", password) == users.Signed(name="admin", role="admin")
    assert users.ensure_first_admin(settings) is None  # never again, never a second password

    monkeypatch.delenv("CHAINLIT_AUTH_SECRET", raising=False)
    users.ensure_auth_secret(settings)
    secret = os.environ["CHAINLIT_AUTH_SECRET"]
    monkeypatch.delenv("CHAINLIT_AUTH_SECRET")
    users.ensure_auth_secret(settings)
    assert os.environ["CHAINLIT_AUTH_SECRET"] == secret and len(secret) >= 48
    assert stat.S_IMODE(os.stat(tmp_path / "chainlit-auth-secret").st_mode) == 0o600


# ---- feedback -> next fine-tune ---------------------------------------------------------------------------------
def rated_thread(records) -> None:
    store.record_answer(
        records, answer("m1", prompt="Hi, my order has not arrived.", answer="Sorry! What is the order number?")
    )
    store.record_answer(records, answer("m2", prompt="It is 12345.", answer="You can return it within 60 days."))
    store.record_answer(
        records, answer("m3", thread_id="t2", prompt="Hello?", answer="Sorry, something went wrong", error="unexpected")
    )
    correction = "Thanks! Order 12345 ships tomorrow; write to help@shop.example if it does not arrive."
    store.record_rating(records, store.RatingIn(message_id="m2", correctness=1, correction=correction), "alice", "chat")
    store.record_rating(records, store.RatingIn(message_id="m2", correctness=2, correction=correction), "bob", "review")
    store.record_rating(
        records, store.RatingIn(message_id="m1", naturalness=5, correctness=5, helpfulness=5), "alice", "chat"
    )
    store.record_rating(
        records, store.RatingIn(message_id="m3", helpfulness=1, correction="Hello! How can I help?"), "bob", "chat"
    )


def test_corrections_become_sft_and_dpo_with_context_provenance_and_no_pii(
    records, tmp_path: Path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from tunedesk.cli import app

    rated_thread(records)
    monkeypatch.setenv("TUNEDESK_DATABASE_URL", str(records.url))
    result = CliRunner().invoke(
        app,
        [
            "data",
            "export-feedback",
            "--out",
            str(tmp_path / "fb"),
            "--system-prompt",
            "Be kind.",
            "--approved-min",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    sft = [json.loads(line) for line in (tmp_path / "fb" / "sft.jsonl").read_text().splitlines()]
    meta = [json.loads(line) for line in (tmp_path / "fb" / "sft.meta.jsonl").read_text().splitlines()]
    dpo = [json.loads(line) for line in (tmp_path / "fb" / "dpo.jsonl").read_text().splitlines()]
    # one SFT example per distinct correction (two raters wrote the same), one for the failed answer, one approved
    assert [(m["why"], m["message_id"]) for m in meta] == [
        ("correction", "m2"),
        ("approved", "m1"),
        ("correction", "m3"),
    ]
    corrected = sft[0]["messages"]
    assert [m["role"] for m in corrected] == ["system", "user", "assistant", "user", "assistant"]
    assert corrected[1]["content"] == "Hi, my order has not arrived."  # the thread before the rated answer
    assert "help@shop.example" not in corrected[-1]["content"] and "[EMAIL]" in corrected[-1]["content"]
    assert meta[0]["raters"] == ["alice", "bob"] and len(meta[0]["rating_ids"]) == 2
    assert meta[0]["message_id"] == "m2" and meta[0]["model"] == "smollm2-135m"
    assert sft[1]["messages"][-1]["content"] == "Sorry! What is the order number?"
    # DPO: the correction over the bot's answer; none for the answer that was an error message
    assert len(dpo) == 1
    assert dpo[0]["non_preferred_output"][0]["content"] == "You can return it within 60 days."
    assert dpo[0]["preferred_output"][0]["content"] == corrected[-1]["content"]
    assert dpo[0]["input"]["messages"] == corrected[:-1]
    summary = json.loads((tmp_path / "fb" / "summary.json").read_text())
    assert summary["pii_redacted"]["EMAIL"] >= 1 and summary["counts"]["dpo_skipped"] == 1


def test_feedback_from_an_exported_file_and_its_errors(records, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunedesk.cli import app

    rated_thread(records)
    exported = tmp_path / "ratings.jsonl"
    exported.write_text(store.to_jsonl(store.ratings(records)))
    result = CliRunner().invoke(
        app, ["data", "export-feedback", "--ratings", str(exported), "--out", str(tmp_path / "fb")]
    )
    assert result.exit_code == 0, result.output
    dpo = (tmp_path / "fb" / "dpo.jsonl").read_text().splitlines()
    assert len(dpo) == 2  # without the database, the failed answer is not known to be one

    lines = exported.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["message_id"]
    exported.write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    result = CliRunner().invoke(
        app, ["data", "export-feedback", "--ratings", str(exported), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert f"{exported}:2: field message_id is missing" in result.output
    assert not (tmp_path / "x").exists()


# ---- review queue ---------------------------------------------------------------------------------------------
def eval_run(tmp_path: Path) -> Path:
    run = tmp_path / "20261123T020000-support-nightly"
    run.mkdir()
    rows = [
        {
            "backend": "smollm2",
            "id": f"e{i}",
            "prompt": [{"role": "user", "content": f"question {i}"}],
            "answer": f"answer {i}",
        }
        for i in range(3)
    ]
    rows.append(
        {"backend": "echo", "id": "e0", "prompt": [{"role": "user", "content": "question 0"}], "answer": "You said"}
    )
    rows.append(
        {
            "backend": "echo",
            "id": "e9",
            "prompt": [{"role": "user", "content": "q"}],
            "answer": "",
            "generation_error": "x",
        }
    )
    (run / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"backends": {"smollm2": {"description": {"backend": "onnx", "model": "smollm2-135m"}}, "echo": {}}}
    (run / "results.json").write_text(json.dumps(results))
    return run


def rate_item(records, item_id: str, rater: str, score: int = 4):
    from chatbot import review

    item = review.get_item(records, item_id)
    rating = store.RatingIn(
        message_id=item_id, helpfulness=score, prompt=item.prompt, answer=item.answer, backend=item.backend
    )
    return store.record_rating(records, rating, rater, "review")


def test_a_review_batch_is_shared_out_until_each_answer_has_enough_raters(records, tmp_path: Path) -> None:
    from chatbot import review

    items = review.items_from_eval(eval_run(tmp_path))
    assert len(items) == 4  # the failed generation is not there to judge
    assert {(i["backend"], i["model"]) for i in items} == {("smollm2", "smollm2-135m"), ("echo", None)}
    assert review.add_batch(records, "nightly", "run", items, ratings_per_item=2, limit=3, seed=1) == 3
    with pytest.raises(ConfigError, match="'nightly' exists"):
        review.add_batch(records, "nightly", "run", items, ratings_per_item=2)

    first = review.next_item(records, "nightly", "alice")
    assert (first.done, first.total, first.item.position) == (0, 3, 1)
    rate_item(records, first.item.id, "alice")
    assert review.next_item(records, "nightly", "alice").item.position == 2  # alice moves on
    assert review.next_item(records, "nightly", "bob").item.position == 1  # bob still rates the first
    rate_item(records, first.item.id, "bob")
    carol = review.next_item(records, "nightly", "carol")
    assert carol.item.position == 2  # the first has its two raters
    for rater in ("alice", "bob"):
        while (step := review.next_item(records, "nightly", rater)).item is not None:
            rate_item(records, step.item.id, rater)
    assert review.next_item(records, "nightly", "carol").item is None
    done = review.next_item(records, "nightly", "alice")
    assert (done.done, done.total) == (3, 3)
    [summary] = review.batches(records)
    assert (summary["items"], summary["complete"], summary["ratings"]) == (3, 3, 6)
    assert review.open_batch(records, "carol") is None
    exported = store.ratings(records, store.RatingFilter(source="review"))
    assert len(exported) == 6 and all(r["prompt"].startswith("question") for r in exported)


def test_review_items_from_chats_carry_their_thread(records) -> None:
    from chatbot import review

    store.record_answer(records, answer("m1", prompt="first", answer="one"))
    store.record_answer(records, answer("m2", prompt="second", answer="two"))
    store.record_answer(records, answer("m3", prompt="broken", answer="Sorry", error="unexpected"))
    items = review.items_from_chats(records)
    assert [i["prompt"] for i in items] == ["first", "second"]
    assert items[1]["context"] == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "one"}]
    assert items[1]["origin"] == "chat:m2"


def test_an_eval_directory_without_examples_is_a_clear_error(tmp_path: Path) -> None:
    from chatbot import review

    with pytest.raises(ConfigError, match="no examples.jsonl"):
        review.items_from_eval(tmp_path)
    (tmp_path / "examples.jsonl").write_text('{"backend": "x"}\n')
    with pytest.raises(ConfigError, match=r"examples.jsonl:1: not an eval example row"):
        review.items_from_eval(tmp_path)
