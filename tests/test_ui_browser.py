"""The chat UI in a real Chromium: ``tunedesk chat`` serves, a question gets a streamed answer."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(home: Path, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    tunedesk = Path(sys.executable).parent / "tunedesk"
    process = subprocess.Popen(
        [str(tunedesk), "chat", "--port", str(port)],
        env={**os.environ, "TUNEDESK_HOME": str(home), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tunedesk chat exited: {process.stdout.read() if process.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise TimeoutError("the chat UI did not come up within 90 s")


@pytest.fixture(scope="module")
def echo_ui(shared_home: Path) -> Iterator[str]:
    process, url = start_ui(shared_home, TUNEDESK_BACKEND="echo", TUNEDESK_CONTEXT_WINDOW="400")
    yield url
    process.terminate()
    process.wait(timeout=20)


def ask(page, text: str) -> None:
    """Type into the composer and send, once the socket is up (the send button is enabled then)."""
    composer = page.locator("#chat-input")
    composer.wait_for(timeout=30_000)
    composer.fill(text)
    submit = page.locator("#chat-submit")
    submit.wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#chat-submit').disabled", timeout=30_000)
    submit.click()


def test_question_gets_an_answer_and_follow_ups_work(chromium_browser, echo_ui: str) -> None:
    page = chromium_browser.new_page()
    page.goto(echo_ui)
    ask(page, "Where is my parcel?")
    page.get_by_text("You said: Where is my parcel?").wait_for(timeout=30_000)
    ask(page, "It was due on Monday.")
    # the second answer saw the history; the first exchange is still on the page
    page.get_by_text("You said (message 2): It was due on Monday.").wait_for(timeout=30_000)
    assert page.get_by_text("You said: Where is my parcel?").count() == 1
    page.close()


def test_generation_failure_is_a_message_not_a_traceback(chromium_browser, echo_ui: str) -> None:
    page = chromium_browser.new_page()
    page.goto(echo_ui)
    ask(page, "refund " * 200)  # more than the 400-token window minus max_new_tokens
    page.get_by_text("Sorry, I could not answer that").wait_for(timeout=30_000)
    assert "Traceback" not in page.content()
    page.close()


def test_starters_offer_support_questions(chromium_browser, echo_ui: str) -> None:
    page = chromium_browser.new_page()
    page.goto(echo_ui)
    page.get_by_text("Return a product").click(timeout=30_000)
    page.get_by_text("You said: How do I return a product I bought last week?").wait_for(timeout=30_000)
    page.close()


def test_onnx_backend_streams_into_the_page(chromium_browser, shared_home: Path, tiny_onnx_fp32: Path) -> None:
    process, url = start_ui(
        shared_home,
        TUNEDESK_BACKEND="onnx",
        TUNEDESK_MODEL="tiny-random-llama",
        TUNEDESK_PRECISION="fp32",
        TUNEDESK_MAX_NEW_TOKENS="12",
    )
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
        page = chromium_browser.new_page()
        page.goto(url)
        ask(page, "Hello there")
        # compare letters and digits only: the page renders the answer as markdown
        page.wait_for_function(
            "(wanted) => document.body.innerText.replace(/[^\\p{L}\\p{N}]/gu, '').includes(wanted)",
            arg=re.sub(r"[\W_]", "", expected),
            timeout=60_000,
        )
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
