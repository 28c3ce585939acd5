"""The chat UI in a real Chromium: ``tunedesk chat`` serves, an agent signs in, asks, rates and resumes.

Every server gets its own database and users file, so the rows a test asserts on are its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.browser
AGENT, PASSWORD = "agent@example.com", "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class UI:
    process: subprocess.Popen
    url: str
    state: Path  # this server's database and users file

    def rows(self, query: str) -> list[dict]:
        engine = create_engine(f"sqlite:///{self.state / 'chat.db'}")
        try:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(text(query)).mappings()]
        finally:
            engine.dispose()

    def wait_rows(self, query: str, timeout_s: float = 30.0) -> list[dict]:
        """The rows once there are any: an answer is stored after its last token reaches the page."""
        deadline = time.monotonic() + timeout_s
        while not (found := self.rows(query)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def start_ui(home: Path, **env: str) -> UI:
    """``tunedesk chat`` on a free port, with a fresh database and one agent; returns once it is healthy."""
    from tunedesk import users
    from tunedesk.settings import Settings

    state = Path(tempfile.mkdtemp(prefix="tunedesk-ui-"))
    users.add(Settings(home=home, users_file=state / "users.yaml"), AGENT, PASSWORD, "agent")
    port = free_port()
    tunedesk = Path(sys.executable).parent / "tunedesk"
    process = subprocess.Popen(
        [str(tunedesk), "chat", "--port", str(port)],
        env={
            **os.environ,
            "TUNEDESK_HOME": str(home),
            "TUNEDESK_DATABASE_URL": f"sqlite:///{state / 'chat.db'}",
            "TUNEDESK_USERS_FILE": str(state / "users.yaml"),
            **env,
        },
        # a file, not a pipe: nobody reads a pipe while the tests run, and a full one (64 KiB of access
        # logs) blocks the server's next log write, which froze a whole module of tests
        stdout=(state / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tunedesk chat exited: {(state / 'server.log').read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return UI(process, url, state)
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise TimeoutError("the chat UI did not come up within 90 s")


def signed_in_page(browser, ui: UI):
    page = browser.new_page()
    page.goto(ui.url)
    page.locator("#email").fill(AGENT)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.locator("#chat-input").wait_for(timeout=30_000)
    return page


def ask(page, text: str) -> None:
    """Type into the composer and send, once the socket is up (the send button is enabled then)."""
    composer = page.locator("#chat-input")
    composer.wait_for(timeout=30_000)
    composer.fill(text)
    submit = page.locator("#chat-submit")
    submit.wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#chat-submit').disabled", timeout=30_000)
    submit.click()


def rate(page, naturalness: int, correctness: int, helpfulness: int, index: int = -1) -> None:
    """Pick scores in the ``index``-th rating widget, save, and wait for the server's acknowledgement."""
    widget = page.locator("[data-rating-for]").nth(index)
    for field, score in (("naturalness", naturalness), ("correctness", correctness), ("helpfulness", helpfulness)):
        widget.get_by_label(f"{field} {score}", exact=True).click()
    widget.get_by_role("button", name="Save rating").click()
    widget.get_by_role("status").filter(has_text="Saved").wait_for(timeout=15_000)


@pytest.fixture(scope="module")
def echo_ui(shared_home: Path) -> Iterator[UI]:
    # messages up to 20,000 characters: the context-overflow test sends a longer one than the 4,000 default
    ui = start_ui(
        shared_home, TUNEDESK_BACKEND="echo", TUNEDESK_CONTEXT_WINDOW="1500", TUNEDESK_MAX_MESSAGE_CHARS="20000"
    )
    yield ui
    ui.stop()


def test_nothing_but_health_and_login_without_signing_in(chromium_browser, echo_ui: UI) -> None:
    page = chromium_browser.new_page()
    page.goto(echo_ui.url)
    page.wait_for_url(re.compile(r"/login$"), timeout=30_000)
    page.close()
    with urllib.request.urlopen(echo_ui.url + "/healthz") as response:
        assert json.load(response)["status"] == "ok"
    for path, body in [
        ("/api/ratings", None),
        ("/api/ratings?format=csv", None),
        ("/api/ratings", b'{"message_id": "x", "kind": "thumbs", "thumbs": 1}'),
        ("/metrics", None),
        ("/user", None),
        ("/project/threads", b'{"pagination": {"first": 20}, "filter": {}}'),
    ]:
        request = urllib.request.Request(echo_ui.url + path, data=body, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 401, path


def test_a_signed_in_session_reaches_the_api_with_its_current_role(chromium_browser, echo_ui: UI) -> None:
    from tunedesk import users
    from tunedesk.settings import Settings

    page = signed_in_page(chromium_browser, echo_ui)
    assert page.request.get(echo_ui.url + "/metrics").status == 200
    assert page.request.get(echo_ui.url + "/api/ratings").status == 403  # an agent may not export
    assert page.request.get(echo_ui.url + "/admin").status == 403
    assert page.get_by_role("link", name="Dashboard").get_attribute("href") == "/admin"
    settings = Settings(users_file=echo_ui.state / "users.yaml")
    users.add(settings, AGENT, PASSWORD, "admin")  # promoted: the same session may now export
    try:
        assert page.request.get(echo_ui.url + "/api/ratings?format=csv").status == 200
        assert "Support chat: the last 24 hours" in page.request.get(echo_ui.url + "/admin").text()
    finally:
        users.add(settings, AGENT, PASSWORD, "agent")
    page.close()


def test_wrong_password_is_refused(chromium_browser, echo_ui: UI) -> None:
    page = chromium_browser.new_page()
    page.goto(echo_ui.url)
    page.locator("#email").fill(AGENT)
    page.locator("#password").fill("not the password")
    page.locator("button[type=submit]").click()
    page.wait_for_timeout(1_000)
    assert page.locator("#chat-input").count() == 0
    assert page.url.endswith("/login")
    page.close()


def answered(page, count: int) -> None:
    """Wait until ``count`` answers are complete: the rating widget comes after the last streamed piece."""
    page.locator("[data-rating-for]").nth(count - 1).wait_for(timeout=120_000)


def agent_session(browser, ui: UI, screenshots: Path) -> dict[str, list[dict]]:
    """The issue's browser test: sign in, ask, thumbs-up with a comment, 4/5/3, reload, resume, rows.

    Returns the thread's rows (answers, ratings of the first answer, Chainlit's feedbacks and steps)."""
    page = signed_in_page(browser, ui)
    ask(page, "Where is my parcel?")
    answered(page, 1)
    page.locator("button:has(svg.lucide-thumbs-up)").first.click()
    page.get_by_placeholder("Your feedback...").fill("Clear and polite.")
    page.get_by_role("button", name="Submit feedback").click()
    rate(page, 4, 5, 3)
    page.screenshot(path=str(screenshots / "rated.png"), full_page=True)

    thread_url = page.url  # /thread/<id> once the first message is stored
    assert "/thread/" in thread_url
    page.reload()
    answered(page, 1)
    first_widget = page.locator("[data-rating-for]").first
    assert first_widget.get_by_label("naturalness 4", exact=True).get_attribute("aria-checked") == "true"
    ask(page, "It was due on Monday.")  # the resumed conversation goes on
    answered(page, 2)
    rate(page, 2, 2, 2, index=1)
    first_widget.get_by_label("helpfulness 5", exact=True).click()  # a rater changes their mind
    first_widget.get_by_role("button", name="Save rating").click()
    first_widget.get_by_role("status").filter(has_text="Saved").wait_for(timeout=15_000)
    page.screenshot(path=str(screenshots / "resumed.png"), full_page=True)
    page.close()

    thread = thread_url.rsplit("/", 1)[-1]
    answers = ui.rows(f"SELECT * FROM chat_answers WHERE thread_id = '{thread}' ORDER BY created_at")
    first = answers[0]
    return {
        "answers": answers,
        "ratings": ui.rows(f"SELECT * FROM ratings WHERE message_id = '{first['message_id']}' ORDER BY created_at"),
        # Chainlit gives thumbs for the run step that holds the answer
        "feedbacks": ui.rows(f"SELECT * FROM feedbacks WHERE \"forId\" = '{first['run_id']}'"),
        "steps": ui.rows(f"SELECT type, output FROM steps WHERE \"threadId\" = '{thread}' AND type LIKE '%message'"),
    }


def assert_session_stored(rows: dict[str, list[dict]], backend: str) -> None:
    answers = rows["answers"]
    assert [a["prompt"] for a in answers] == ["Where is my parcel?", "It was due on Monday."]
    assert all(a["backend"] == backend and a["user"] == AGENT and a["answer"].strip() for a in answers)
    thumbs = [r for r in rows["ratings"] if r["kind"] == "thumbs"]
    scores = [r for r in rows["ratings"] if r["kind"] == "scores"]
    assert [(r["thumbs"], r["comment"], r["rater"]) for r in thumbs] == [(1, "Clear and polite.", AGENT)]
    assert [(r["naturalness"], r["correctness"], r["helpfulness"]) for r in scores] == [(4, 5, 3), (4, 5, 5)]
    assert scores[1]["supersedes"] == scores[0]["id"]  # the change is kept as history
    assert scores[0]["answer"] == answers[0]["answer"] and scores[0]["model"] == answers[0]["model"]
    assert [(f["value"], f["comment"]) for f in rows["feedbacks"]] == [(1, "Clear and polite.")]
    assert sorted(s["type"] for s in rows["steps"]) == ["assistant_message"] * 2 + ["user_message"] * 2


def test_sign_in_ask_rate_resume_and_the_rows_are_stored(chromium_browser, echo_ui: UI, tmp_path: Path) -> None:
    rows = agent_session(chromium_browser, echo_ui, tmp_path)
    assert_session_stored(rows, "echo")
    # the resumed conversation still had its history: echo numbers the user's messages
    assert rows["answers"][1]["answer"] == "You said (message 2): It was due on Monday."


@pytest.mark.slow
def test_the_same_session_on_smollm2_onnx(chromium_browser, shared_home: Path, tmp_path: Path) -> None:
    ui = start_ui(shared_home, TUNEDESK_BACKEND="onnx", TUNEDESK_MODEL="smollm2-135m", TUNEDESK_MAX_NEW_TOKENS="48")
    try:
        rows = agent_session(chromium_browser, ui, tmp_path)
    finally:
        ui.stop()
    assert_session_stored(rows, "onnx")
    assert rows["answers"][0]["model"] == "smollm2-135m" and rows["answers"][0]["tokens"] > 5


def test_the_review_queue_walks_an_agent_through_a_batch_blind(chromium_browser, echo_ui: UI) -> None:
    from chatbot import review

    items = [
        {
            "context": [],
            "prompt": "Can I return shoes?",
            "answer": answer,
            "backend": backend,
            "model": model,
            "origin": o,
        }
        for answer, backend, model, o in [
            ("Yes, within 30 days, unworn.", "smollm2-ft", "support-ft-v3", "eval:r:1"),
            ("No.", "baseline-bot", "gpt-4o-mini", "eval:r:2"),
        ]
    ]
    engine = create_engine(f"sqlite:///{echo_ui.state / 'chat.db'}")
    review.add_batch(engine, "nightly-1123", "test", items, ratings_per_item=1)
    engine.dispose()

    page = signed_in_page(chromium_browser, echo_ui)
    page.locator("#chat-profiles").click()
    page.get_by_role("option", name="Review").click()
    page.get_by_text("1 of 2").wait_for(timeout=30_000)
    rate(page, 5, 5, 4)
    page.get_by_text("2 of 2").wait_for(timeout=30_000)
    rate(page, 3, 1, 1)
    page.get_by_text("Batch nightly-1123 is done: you rated 2 of 2").wait_for(timeout=30_000)
    for hidden in ("smollm2-ft", "baseline-bot", "support-ft-v3", "gpt-4o-mini"):
        assert hidden not in page.content()
    page.close()

    stored = echo_ui.rows("SELECT backend, model, correctness, source, rater FROM ratings WHERE source = 'review'")
    assert sorted((r["backend"], r["model"], r["correctness"]) for r in stored) == [
        ("baseline-bot", "gpt-4o-mini", 1),
        ("smollm2-ft", "support-ft-v3", 5),
    ]
    assert {r["rater"] for r in stored} == {AGENT}


def test_generation_failure_is_a_message_not_a_traceback(chromium_browser, echo_ui: UI) -> None:
    page = signed_in_page(chromium_browser, echo_ui)
    ask(page, "refund " * 1300)  # more than the 1500-token window minus max_new_tokens
    page.get_by_text("Sorry, I could not answer that").wait_for(timeout=30_000)
    assert "Traceback" not in page.content()
    page.close()
    errors = echo_ui.rows("SELECT error FROM chat_answers WHERE error IS NOT NULL")
    assert {"ContextOverflowError"} <= {row["error"] for row in errors}


def test_chat_settings_change_this_conversation_only(chromium_browser, echo_ui: UI) -> None:
    """Longest answer at its minimum (16 tokens): echo stops after 16 words, in this conversation only."""
    long_question = " ".join(f"word{i}" for i in range(40))
    page = signed_in_page(chromium_browser, echo_ui)
    page.locator("#chat-settings-open-modal").click()
    page.locator("[role=dialog] [role=slider]").nth(1).focus()
    page.keyboard.press("Home")
    page.locator("[role=dialog] #confirm").click()
    ask(page, long_question)
    answered(page, 1)
    page.close()
    other = signed_in_page(chromium_browser, echo_ui)
    ask(other, long_question)
    answered(other, 1)
    other.close()
    rows = echo_ui.rows(f"SELECT tokens FROM chat_answers WHERE prompt = '{long_question}' ORDER BY created_at")
    assert [r["tokens"] for r in rows] == [16, 42]  # "You", "said:" and 40 words under the default 256


def test_starters_offer_support_questions(chromium_browser, echo_ui: UI) -> None:
    page = signed_in_page(chromium_browser, echo_ui)
    page.get_by_text("Return a product").click(timeout=30_000)
    page.get_by_text("You said: How do I return a product I bought last week?").wait_for(timeout=30_000)
    page.close()


def test_policy_sources_survey_and_hand_over_are_shown_and_stored(chromium_browser, echo_ui: UI) -> None:
    """A policy question shows its sections; "End chat" asks the survey; asking for a person hands over."""
    page = signed_in_page(chromium_browser, echo_ui)
    ask(page, "How long does a refund take?")
    answered(page, 1)
    sources = page.locator("[data-policy-sources]").first
    sources.get_by_text("Refunds").first.click()  # opens the section's text
    sources.get_by_text("2 business days").first.wait_for(timeout=10_000)
    page.get_by_role("button", name="End chat").click()
    survey = page.locator("[data-survey]")
    survey.get_by_label("resolved yes", exact=True).click()
    survey.get_by_label("satisfaction 4", exact=True).click()
    survey.get_by_label("survey comment").fill("Quick and clear.")
    survey.get_by_role("button", name="Send").click()
    survey.get_by_role("status").filter(has_text="Thank you").wait_for(timeout=15_000)
    ask(page, "Can I talk to a human please?")
    page.get_by_text("passing this conversation to a colleague").wait_for(timeout=30_000)
    thread = page.url.rsplit("/", 1)[-1]
    page.reload()  # the sent survey shows as sent when the thread is resumed
    page.locator("[data-survey]").get_by_role("status").filter(has_text="Thank you").wait_for(timeout=30_000)
    page.close()

    answer = echo_ui.rows(f"SELECT message_id, sources FROM chat_answers WHERE thread_id = '{thread}'")
    assert [s["section"] for s in json.loads(answer[0]["sources"])][0] == "Refunds"
    outcomes = echo_ui.rows(
        f"SELECT kind, resolved, csat, comment, reason, message_id, backend FROM chat_outcomes "
        f"WHERE thread_id = '{thread}' ORDER BY created_at"
    )
    assert outcomes == [
        {"kind": "survey", "resolved": 1, "csat": 4, "comment": "Quick and clear.", "reason": None,
         "message_id": answer[0]["message_id"], "backend": "echo"},
        {"kind": "escalation", "resolved": None, "csat": None, "comment": None, "reason": "user_request",
         "message_id": answer[0]["message_id"], "backend": "echo"},
    ]  # fmt: skip


class Ingestion:
    """A local stand-in for Application Insights' ingestion endpoint: it keeps every telemetry item posted."""

    def __init__(self) -> None:
        import gzip
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.items: list[dict] = []
        items = self.items

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                text = body.decode()
                posted = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
                items.extend(posted)
                reply = json.dumps({"itemsReceived": len(posted), "itemsAccepted": len(posted), "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, kind: str) -> list[dict]:
        return [item for item in self.items if item.get("data", {}).get("baseType") == kind]


def test_turns_are_traced_and_measured_into_application_insights(chromium_browser, shared_home: Path) -> None:
    """With APPLICATIONINSIGHTS_CONNECTION_STRING set, each turn's span and the chat metrics reach the ingestion
    endpoint (azure-monitor-opentelemetry, exporting for real over HTTP to a local endpoint)."""
    ingestion = Ingestion()
    ui = start_ui(
        shared_home,
        TUNEDESK_BACKEND="echo",
        APPLICATIONINSIGHTS_CONNECTION_STRING=(
            f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={ingestion.url}"
        ),
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",  # no statsbeat calls to Microsoft's own endpoint
        OTEL_TRACES_SAMPLER="always_on",  # the distro's default keeps at most 5 traces/s: a page load is more
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
    )
    try:
        page = signed_in_page(chromium_browser, ui)
        ask(page, "Where is my parcel?")
        answered(page, 1)
        page.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            turns = [
                item
                for item in ingestion.named("RemoteDependencyData")
                if item["data"]["baseData"]["name"] == "chat echo"
            ]
            answers = [
                m for item in ingestion.named("MetricData") for m in item["data"]["baseData"]["metrics"]
                if m["name"] == "tunedesk.answers"
            ]  # fmt: skip
            if turns and answers:
                break
            time.sleep(0.5)
    finally:
        ui.stop()
        ingestion.server.shutdown()
    assert turns, f"no chat span among {len(ingestion.items)} items"
    properties = turns[0]["data"]["baseData"]["properties"]
    assert properties["gen_ai.provider.name"] == "echo" and properties["gen_ai.request.model"] == "smollm2-135m"
    assert "Where is my parcel" not in json.dumps(ingestion.items)  # what customers type stays out of telemetry
    assert answers and answers[0]["value"] >= 1


def test_a_killed_server_loses_no_acknowledged_rating(chromium_browser, shared_home: Path) -> None:
    """SIGKILL right after "Saved" appears: the rating is in the database when the server is gone."""
    ui = start_ui(shared_home, TUNEDESK_BACKEND="echo")
    try:
        page = signed_in_page(chromium_browser, ui)
        ask(page, "Can I pay by invoice?")
        page.get_by_text("You said: Can I pay by invoice?").wait_for(timeout=30_000)
        rate(page, 5, 4, 4)
        os.kill(ui.process.pid, signal.SIGKILL)
        ui.process.wait(timeout=10)
        page.close()
    finally:
        ui.stop()
    stored = ui.rows("SELECT naturalness, correctness, helpfulness, prompt FROM ratings WHERE kind = 'scores'")
    assert stored == [{"naturalness": 5, "correctness": 4, "helpfulness": 4, "prompt": "Can I pay by invoice?"}]


def test_an_admin_switches_this_conversation_to_onnx_and_it_streams_into_the_page(
    chromium_browser, shared_home: Path, tiny_onnx_fp32: Path
) -> None:
    """The server answers with echo; an admin picks the onnx backend and a model for one conversation.

    An agent is not offered the choice."""
    from tunedesk import users
    from tunedesk.settings import Settings

    ui = start_ui(
        shared_home, TUNEDESK_BACKEND="echo", TUNEDESK_PRECISION="fp32", TUNEDESK_MAX_NEW_TOKENS="12",
        TUNEDESK_GROUNDING="false",
    )  # fmt: skip
    users.add(Settings(users_file=ui.state / "users.yaml"), "lead@example.com", PASSWORD, "admin")
    try:
        from chatbot.backends import GenerationParams
        from chatbot.backends.onnx import OnnxBackend
        from chatbot.conversation import with_system_prompt
        from tunedesk.settings import DEFAULT_SYSTEM_PROMPT

        backend = OnnxBackend("tiny-random-llama", precision="fp32", home=shared_home)
        expected = backend.complete_sync(
            with_system_prompt([{"role": "user", "content": "Hello there"}], DEFAULT_SYSTEM_PROMPT),
            GenerationParams(max_new_tokens=12, repetition_penalty=1.1),
        )
        agent = signed_in_page(chromium_browser, ui)
        agent.locator("#chat-settings-open-modal").click()
        agent.locator("[role=dialog] [role=slider]").first.wait_for(timeout=15_000)
        assert agent.locator("[role=dialog] #backend").count() == 0
        agent.close()

        page = chromium_browser.new_page()
        page.goto(ui.url)
        page.locator("#email").fill("lead@example.com")
        page.locator("#password").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.locator("#chat-settings-open-modal").click()
        page.locator("[role=dialog] #backend").click()
        page.get_by_role("option", name="onnx").click()
        page.locator("[role=dialog] #model").fill("tiny-random-llama")
        page.locator("[role=dialog] #confirm").click()
        ask(page, "Hello there")
        # compare letters and digits only: the page renders the answer as markdown
        page.wait_for_function(
            "(wanted) => document.body.innerText.replace(/[^\\p{L}\\p{N}]/gu, '').includes(wanted)",
            arg=re.sub(r"[\W_]", "", expected),
            timeout=60_000,
        )
        rows = ui.wait_rows("SELECT user, backend, model FROM chat_answers WHERE prompt = 'Hello there'")
        page.close()
    finally:
        ui.stop()
    assert rows == [{"user": "lead@example.com", "backend": "onnx", "model": "tiny-random-llama"}]


def test_the_caption_profile_takes_a_photo_upload_and_captions_it(chromium_browser, shared_home: Path) -> None:
    """Uploads are on in the Caption profile only; an uploaded photo is captioned and the answer is stored."""
    from test_captioning import TINY, recipe

    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist")
    from PIL import Image

    run = Path(tempfile.mkdtemp(prefix="tunedesk-captioner-")) / "run"
    recipe.train(recipe.CaptionConfig.model_validate({"output": run, **TINY}), progress=False, log=lambda line: None)
    photo = run.parent / "boot.png"
    Image.new("L", (60, 40), 230).save(photo)
    ui = start_ui(shared_home, TUNEDESK_BACKEND="echo", TUNEDESK_CAPTIONING_MODEL=str(run))
    try:
        page = signed_in_page(chromium_browser, ui)
        assert page.locator("#upload-button-input").count() == 0  # Support: no uploads
        page.locator("#chat-profiles").click()
        page.get_by_role("option").filter(has_text="Caption").first.click()
        page.get_by_text("Attach a product photo").wait_for(timeout=30_000)
        page.locator("#upload-button-input").set_input_files(str(photo))
        ask(page, "caption this")
        rows = ui.wait_rows("SELECT profile, backend, model, answer, error FROM chat_answers", timeout_s=60)
        page.close()
    finally:
        ui.stop()
    assert len(rows) == 1
    assert rows[0] | {"answer": ""} == {
        "profile": "Caption", "backend": "caption", "model": str(run), "answer": "", "error": None,
    }  # fmt: skip
    assert rows[0]["answer"].strip()
