"""The chat service's HTTP API, over real HTTP to ``tunedesk chat``: tokens, roles, ratings in and out, metrics."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_ui_browser import UI, start_ui

from tunedesk import users
from tunedesk.settings import Settings


@pytest.fixture(scope="module")
def api(shared_home: Path) -> Iterator[tuple[UI, dict[str, str]]]:
    ui = start_ui(shared_home, TUNEDESK_BACKEND="echo")
    settings = Settings(home=shared_home, users_file=ui.state / "users.yaml")
    users.add(settings, "lead@example.com", "lead-password", "admin")
    users.add(settings, "judge", "judge-password", "agent")
    tokens = {name: users.new_token(settings, name) for name in ("lead@example.com", "judge")}
    yield ui, tokens
    ui.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_automated_rater_posts_and_an_admin_exports_csv(api) -> None:
    ui, tokens = api
    posted = httpx.post(
        ui.url + "/api/ratings",
        headers=bearer(tokens["judge"]),
        json={
            "message_id": "eval:nightly:7",
            "correctness": 2,
            "helpfulness": 3,
            "comment": "invents a 60-day window",
            "prompt": "How long do I have to return shoes?",
            "answer": "You have 60 days.",
            "backend": "onnx",
            "model": "smollm2-135m",
        },
    )
    assert posted.status_code == 201, posted.text
    again = httpx.post(
        ui.url + "/api/ratings",
        headers=bearer(tokens["judge"]),
        json={"message_id": "eval:nightly:7", "correctness": 1, "prompt": "p", "answer": "a"},
    )
    assert again.json()["supersedes"] == posted.json()["id"]

    exported = httpx.get(ui.url + "/api/ratings", params={"format": "csv"}, headers=bearer(tokens["lead@example.com"]))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["rater"], r["source"], r["correctness"], r["helpfulness"]) for r in rows] == [("judge", "api", "1", "")]
    history = httpx.get(
        ui.url + "/api/ratings",
        params={"history": "true", "rater": "judge"},
        headers=bearer(tokens["lead@example.com"]),
    )
    lines = [json.loads(line) for line in history.text.splitlines()]
    assert [line["correctness"] for line in lines] == [2, 1]
    assert lines[0]["comment"] == "invents a 60-day window" and lines[0]["answer"] == "You have 60 days."


def test_agents_cannot_export_and_strangers_cannot_do_anything(api) -> None:
    ui, tokens = api
    assert httpx.get(ui.url + "/api/ratings", headers=bearer(tokens["judge"])).status_code == 403
    assert httpx.get(ui.url + "/api/ratings", headers=bearer("td_forged")).status_code == 401
    assert httpx.get(ui.url + "/api/ratings?format=csv").status_code == 401
    assert httpx.post(ui.url + "/api/ratings", json={"message_id": "m", "naturalness": 3}).status_code == 401


def test_bad_ratings_get_a_reason_that_names_the_field(api) -> None:
    ui, tokens = api
    bad = httpx.post(
        ui.url + "/api/ratings", headers=bearer(tokens["judge"]), json={"message_id": "m", "naturalness": 9}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "naturalness"
    unknown = httpx.post(
        ui.url + "/api/ratings", headers=bearer(tokens["judge"]), json={"message_id": "nope", "naturalness": 3}
    )
    assert unknown.status_code == 404 and "no such answer" in unknown.json()["detail"]


def test_metrics_and_health(api) -> None:
    ui, tokens = api
    httpx.post(
        ui.url + "/api/ratings",
        headers=bearer(tokens["judge"]),
        json={"message_id": "eval:x", "naturalness": 5, "prompt": "p", "answer": "a"},
    )
    metrics = httpx.get(ui.url + "/metrics", headers=bearer(tokens["judge"]))
    assert metrics.status_code == 200
    # OpenTelemetry instruments, read by the Prometheus exporter
    assert re.search(
        r'tunedesk_ratings_total\{backend="unknown",field="naturalness",[^}]*score="5"\} 1\.0', metrics.text
    )
    assert 'service_name="tunedesk-chat"' in metrics.text
    health = httpx.get(ui.url + "/healthz").json()
    assert health == {"status": "ok", "database": "ok", "schema": "0005", "backend": "echo", "model": "smollm2-135m"}


def test_the_admin_page_and_the_outcomes_export_are_for_admins(api) -> None:
    from sqlalchemy import create_engine

    from chatbot import store

    ui, tokens = api
    engine = create_engine(f"sqlite:///{ui.state / 'chat.db'}")
    store.record_survey(engine, "t7", "customer@example.com", store.SurveyIn(resolved=False, csat=2, comment="slow"))
    store.record_escalation(engine, "t7", "customer@example.com", "user_request")
    engine.dispose()
    lead, judge = bearer(tokens["lead@example.com"]), bearer(tokens["judge"])

    page = httpx.get(ui.url + "/admin", headers=lead)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (
        "<svg" in page.text
        and "Escalations to a human" in page.text
        and "<tr><th>escalations</th><td>1</td></tr>" in page.text
    )
    assert httpx.get(ui.url + "/admin", headers=judge).status_code == 403
    assert httpx.get(ui.url + "/admin").status_code == 401

    exported = httpx.get(ui.url + "/api/outcomes", params={"format": "csv", "kind": "survey"}, headers=lead)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["thread_id"], r["resolved"], r["csat"], r["comment"]) for r in rows] == [("t7", "0", "2", "slow")]
    lines = httpx.get(ui.url + "/api/outcomes", headers=lead).text.splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["survey", "escalation"]
    assert httpx.get(ui.url + "/api/outcomes", headers=judge).status_code == 403
