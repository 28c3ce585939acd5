"""The line in front of a backend (chatbot.admission), and the chat service under concurrent socket.io sessions."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest

from chatbot.admission import Line, LineFull

ROOT = Path(__file__).resolve().parent.parent


async def hold(line: Line, name: str, log: list[str], release: asyncio.Event, places: list[int] | None = None) -> None:
    async def tell(place: int) -> None:
        if places is not None:
            places.append(place)

    async with line.turn(tell):
        log.append(f"{name} in")
        await release.wait()
    log.append(f"{name} out")


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_the_line_serves_in_arrival_order_and_tells_each_customer_their_place() -> None:
    async def scenario() -> None:
        line = Line(limit=1, max_waiting=5)
        log: list[str] = []
        gates = {name: asyncio.Event() for name in "abc"}
        places: dict[str, list[int]] = {"b": [], "c": []}
        a = asyncio.create_task(hold(line, "a", log, gates["a"]))
        await settle()
        b = asyncio.create_task(hold(line, "b", log, gates["b"], places["b"]))
        await settle()
        c = asyncio.create_task(hold(line, "c", log, gates["c"], places["c"]))
        await settle()
        assert log == ["a in"] and line.waiting == 2
        gates["a"].set()
        await settle()
        assert log == ["a in", "a out", "b in"]
        assert places["c"] == [2, 1]  # c moved up when a left
        gates["b"].set()
        gates["c"].set()
        await asyncio.gather(a, b, c)
        assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]
        assert places["b"] == [1]
        assert line.active == 0 and line.waiting == 0

    asyncio.run(scenario())


def test_a_full_line_refuses_at_once_instead_of_timing_out() -> None:
    async def scenario() -> None:
        line = Line(limit=1, max_waiting=1)
        gate = asyncio.Event()
        first = asyncio.create_task(hold(line, "a", [], gate))
        await settle()
        second = asyncio.create_task(hold(line, "b", [], gate))
        await settle()
        with pytest.raises(LineFull, match="1 customers are already waiting"):
            async with line.turn():
                pass
        gate.set()
        await asyncio.gather(first, second)
        assert line.active == 0

    asyncio.run(scenario())


def test_a_customer_who_leaves_the_line_frees_the_place_for_the_next() -> None:
    async def scenario() -> None:
        line = Line(limit=1, max_waiting=5)
        log: list[str] = []
        gate_a, gate_c = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(hold(line, "a", log, gate_a))
        await settle()
        b = asyncio.create_task(hold(line, "b", log, asyncio.Event()))
        await settle()
        c = asyncio.create_task(hold(line, "c", log, gate_c))
        await settle()
        b.cancel()  # the customer closed the chat while waiting
        await settle()
        assert line.waiting == 1
        gate_a.set()
        await settle()
        assert log == ["a in", "a out", "c in"]
        gate_c.set()
        await asyncio.gather(a, c)
        assert line.active == 0 and line.waiting == 0

    asyncio.run(scenario())


def test_limit_answers_run_at_once() -> None:
    async def scenario() -> None:
        line = Line(limit=3, max_waiting=10)
        running = peak = 0

        async def answer() -> None:
            nonlocal running, peak
            async with line.turn():
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.01)
                running -= 1

        await asyncio.gather(*(answer() for _ in range(10)))
        assert peak == 3 and line.active == 0

    asyncio.run(scenario())


def load_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("serve_load", ROOT / "bench" / "serve_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_load"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.browser
def test_concurrent_socketio_sessions_all_get_answers_and_a_huge_message_is_refused(tmp_path: Path) -> None:
    """The load benchmark's own client: 6 sessions over Chainlit's socket.io, 2 at a time answered; one more
    sends a message over the size limit and is told so, politely, without an answer being generated."""
    bench = load_bench()
    env = {
        "TUNEDESK_BACKEND": "echo",
        "TUNEDESK_GROUNDING": "false",
        "TUNEDESK_MAX_CONCURRENT_ANSWERS": "2",
        "TUNEDESK_MAX_MESSAGE_CHARS": "200",
        "TUNEDESK_HOME": str(tmp_path / "home"),
    }
    process, url = bench.start_server(tmp_path, env)
    try:
        cookie = bench.sign_in(url)
        level = asyncio.run(bench.run_level(url, cookie, 6, 2, 60.0, 120.0))
        assert level.errors == [] and level.answers == 12
        assert bench.recorded_tokens(tmp_path / "chat.db", "2000-01-01") > 12 * 3
        refused = asyncio.run(bench.ask_once(url, cookie, "x" * 201, 60.0))
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "201 characters long; I can read up to 200" in refused
    with sqlite3.connect(tmp_path / "chat.db") as db:
        assert db.execute("SELECT count(*) FROM chat_answers WHERE error IS NULL").fetchone() == (12,)
        assert db.execute("SELECT count(*) FROM chat_answers WHERE prompt LIKE 'xxx%'").fetchone() == (0,)
