"""The chat service under load: N concurrent chat sessions against the real server, over Chainlit's socket.io.

Run: .venv/bin/python bench/serve_load.py [--levels 1,4,16,64] [--questions 2] [--backend onnx]

What it does:
- Starts ``tunedesk chat`` on a free 127.0.0.1 port with a fresh database and users file in a temporary
  directory (the model comes from the usual home, so a converted SmolLM2 is reused), and signs one agent in
  through ``/login``, as the browser does.
- For each concurrency level N: N sessions connect to ``/ws/socket.io`` with the sign-in cookie (the browser's
  handshake: ``clientType``, ``sessionId``, ``chatProfile``, then ``connection_successful``) and each asks
  ``--questions`` support questions in one conversation (more at low concurrency, so that every level has at
  least ``--min-answers``), one after the other, sending the next as soon as the previous answer is complete
  (no think time: the worst case). Sessions start at the same moment.
- Time to first token: from sending a question to the first ``stream_token`` of its answer ("busy, you are
  number k" notices are messages, not tokens: waiting in line counts). Tokens: what the server recorded in
  ``chat_answers.tokens`` for the level's answers (the chat sends several tokens per ``stream_token`` event
  under load, so events are not tokens). Aggregate tokens/s: all answer tokens of the level over its wall time.
- Errors: a session that fails to connect, an answer that does not complete within ``--timeout``, and every
  answer the server recorded with an error in ``chat_answers`` (read from the server's own database).
- Bounded: ``--timeout`` seconds per answer, ``--level-timeout`` per level.

Prints a table, then as the last line one JSON object keyed by concurrency:
``{"1": {"errors": 0, "p50_ttft_s": ..., "p95_ttft_s": ..., "tokens_per_s": ..., "answers": ...}, ...}``
plus ``"ratio_16_vs_1"``, aggregate tokens/s at 16 sessions over 1 (where both levels ran).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENT, PASSWORD = "load@example.com", "load-bench-password-1"
QUESTIONS = [
    "Where is my order? It has been a week and nothing arrived.",
    "How do I return a product I bought last week?",
    "I was charged twice for the same order.",
    "Can I change the delivery address of an order I already placed?",
    "My parcel arrived damaged, what can I do?",
    "How long does a refund take?",
    "Do you ship to Norway?",
    "I forgot my password, how do I reset it?",
]


@dataclass
class Turn:
    sent: float
    first: float | None = None
    tokens: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Level:
    sessions: int
    ttfts: list[float] = field(default_factory=list)
    tokens: int = 0
    answers: int = 0
    errors: list[str] = field(default_factory=list)
    busy_notices: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ttfts = sorted(self.ttfts)

        def pct(q: float) -> float | None:
            if not ttfts:
                return None
            return round(ttfts[min(len(ttfts) - 1, round(q * (len(ttfts) - 1)))], 3)

        return {
            "errors": len(self.errors),
            "answers": self.answers,
            "p50_ttft_s": pct(0.50),
            "p95_ttft_s": pct(0.95),
            "tokens_per_s": round(self.tokens / self.wall_s, 1) if self.wall_s else 0.0,
            "busy_notices": self.busy_notices,
            "wall_s": round(self.wall_s, 1),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(state: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    from tunedesk import users
    from tunedesk.settings import Settings

    users.add(Settings(users_file=state / "users.yaml"), AGENT, PASSWORD, "agent")
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "tunedesk"), "chat", "--port", str(port)],
        env={
            **os.environ,
            "TUNEDESK_DATABASE_URL": f"sqlite:///{state / 'chat.db'}",
            "TUNEDESK_USERS_FILE": str(state / "users.yaml"),
            **env,
        },
        stdout=(state / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tunedesk chat exited: {(state / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the chat server did not come up within 300 s")


def sign_in(url: str) -> str:
    """The sign-in cookie header, from ``/login`` like the browser's login form."""
    import httpx

    response = httpx.post(url + "/login", data={"username": AGENT, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


async def session(url: str, cookie: str, index: int, questions: int, timeout: float, level: Level) -> None:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    turn: Turn | None = None
    answering: set[str] = set()

    @client.on("stream_token")
    async def on_token(data: dict[str, Any]) -> None:
        if turn is not None and not data.get("isInput"):
            if turn.first is None:
                turn.first = time.perf_counter() - turn.sent
            turn.tokens += 1
            answering.add(str(data.get("id")))

    @client.on("new_message")
    async def on_message(data: dict[str, Any]) -> None:
        if turn is None:
            return
        if data.get("type") == "assistant_message" and "you are number" in str(data.get("output", "")):
            level.busy_notices += 1
        if str(data.get("id")) in answering:  # the streamed answer is sent whole when it is complete
            turn.done.set()

    @client.on("update_message")
    async def on_update(data: dict[str, Any]) -> None:
        if turn is not None and str(data.get("id")) in answering:
            turn.done.set()

    @client.on("task_end")
    async def on_task_end(data: Any = None) -> None:
        if turn is not None and turn.tokens:
            turn.done.set()

    auth = {
        "clientType": "webapp",
        "sessionId": str(uuid.uuid4()),
        "threadId": None,
        "userEnv": "{}",
        "chatProfile": "Support",
    }
    try:
        await client.connect(
            url,
            socketio_path="/ws/socket.io",
            headers={"Cookie": cookie},
            auth=auth,
            transports=["websocket"],
            wait_timeout=timeout,
        )
        await client.emit("connection_successful")
        for number in range(questions):
            question = QUESTIONS[(index + number) % len(QUESTIONS)]
            turn = Turn(sent=time.perf_counter())
            answering.clear()
            await client.emit("client_message", user_message(question))
            try:
                await asyncio.wait_for(turn.done.wait(), timeout)
            except TimeoutError:
                level.errors.append(f"session {index}: no complete answer within {timeout:.0f} s")
                return
            if turn.first is not None:
                level.ttfts.append(turn.first)
            level.answers += 1
    except Exception as exc:  # a failed connection or emit is this session's error, not the benchmark's
        level.errors.append(f"session {index}: {type(exc).__name__}: {exc}")
    finally:
        if client.connected:
            await client.disconnect()


async def ask_once(url: str, cookie: str, text: str, timeout: float) -> str:
    """Send ``text`` in a new conversation; the first assistant message's text (the service's reply)."""
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @client.on("new_message")
    async def on_message(data: dict[str, Any]) -> None:
        if data.get("type") == "assistant_message" and data.get("output") and not reply.done():
            reply.set_result(str(data["output"]))

    auth = {"clientType": "webapp", "sessionId": str(uuid.uuid4()), "threadId": None, "userEnv": "{}"}
    await client.connect(
        url, socketio_path="/ws/socket.io", headers={"Cookie": cookie}, auth=auth, transports=["websocket"]
    )
    try:
        await client.emit("connection_successful")
        await client.emit("client_message", user_message(text))
        return await asyncio.wait_for(reply, timeout)
    finally:
        await client.disconnect()


def user_message(text: str) -> dict[str, Any]:
    """A ``client_message`` payload, as the browser sends it."""
    return {
        "message": {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": AGENT,
            "type": "user_message",
            "output": text,
            "createdAt": datetime.now(UTC).isoformat(),
        },
        "fileReferences": [],
    }


def recorded_tokens(database: Path, since: str) -> int:
    """Tokens of the answers recorded since ``since``, as the server counted them."""
    with sqlite3.connect(database) as db:
        (total,) = db.execute(
            "SELECT coalesce(sum(tokens), 0) FROM chat_answers WHERE error IS NULL AND created_at >= ?", (since,)
        ).fetchone()
    return int(total)


def recorded_errors(database: Path, since: str) -> list[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT error, count(*) FROM chat_answers WHERE error IS NOT NULL AND created_at >= ? GROUP BY error",
            (since,),
        ).fetchall()
    return [f"server recorded {count} answers with error {error}" for error, count in rows for _ in range(count)]


async def run_level(url: str, cookie: str, sessions: int, questions: int, timeout: float, limit: float) -> Level:
    level = Level(sessions)
    started = time.perf_counter()
    tasks = [asyncio.create_task(session(url, cookie, i, questions, timeout, level)) for i in range(sessions)]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
        level.errors.append("session cut off by --level-timeout")
    level.wall_s = time.perf_counter() - started
    return level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16,64", help="concurrency levels, comma-separated")
    parser.add_argument("--questions", type=int, default=2, help="questions per session, in one conversation")
    parser.add_argument(
        "--min-answers", type=int, default=16, help="at least this many answers per level (more questions a session)"
    )
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--grounding", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds an answer may take")
    parser.add_argument("--level-timeout", type=float, default=900.0, help="seconds a level may take")
    parser.add_argument("--env", action="append", default=[], help="extra server setting, KEY=VALUE")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    state = Path(tempfile.mkdtemp(prefix="tunedesk-load-"))
    env = {
        "TUNEDESK_BACKEND": args.backend,
        "TUNEDESK_MODEL": args.model,
        "TUNEDESK_MAX_NEW_TOKENS": str(args.max_new_tokens),
        "TUNEDESK_GROUNDING": str(args.grounding).lower(),
        "TUNEDESK_LOG_LEVEL": "WARNING",
        **dict(item.split("=", 1) for item in args.env),
    }
    process, url = start_server(state, env)
    results: dict[str, Any] = {}
    try:
        cookie = sign_in(url)
        # one warm-up answer: the first load of the model and the policy index is not what a level measures
        asyncio.run(run_level(url, cookie, 1, 1, args.timeout, args.level_timeout))
        header = ("sessions", "answers", "errors", "p50 TTFT", "p95 TTFT", "tokens/s", "busy")
        print("{:>8} {:>8} {:>6} {:>9} {:>9} {:>9} {:>5}".format(*header))
        for sessions in levels:
            since = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            questions = max(args.questions, -(-args.min_answers // sessions))
            level = asyncio.run(run_level(url, cookie, sessions, questions, args.timeout, args.level_timeout))
            level.errors += recorded_errors(state / "chat.db", since)
            level.tokens = recorded_tokens(state / "chat.db", since)
            row = level.summary()
            results[str(sessions)] = row
            print(
                f"{sessions:>8} {row['answers']:>8} {row['errors']:>6} {row['p50_ttft_s'] or '-':>9} "
                f"{row['p95_ttft_s'] or '-':>9} {row['tokens_per_s']:>9} {row['busy_notices']:>5}",
                flush=True,
            )
            for error in level.errors[:5]:
                print(f"         {error}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    if "1" in results and "16" in results and results["1"]["tokens_per_s"]:
        results["ratio_16_vs_1"] = round(results["16"]["tokens_per_s"] / results["1"]["tokens_per_s"], 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
