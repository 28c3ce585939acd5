"""Faults: the database going away (SQLite locked, Postgres restarted), Azure misbehaving, the server killed.

What must hold through all of them: a write either lands whole or fails with a clear error within a few
seconds (``store.StoreUnavailable``), nothing acknowledged is ever lost, and every chat answer, failed or
not, is a row in ``chat_answers`` with its error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from test_ui_browser import free_port

from chatbot import store
from tunedesk import db, users
from tunedesk.azure_emulator import (
    DEFAULT_OUTPUT_FILTER_WORD,
    DEFAULT_PROMPT_FILTER_WORD,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)
from tunedesk.errors import ContentFilteredError
from tunedesk.settings import Settings

ECHO = {"TUNEDESK_BACKEND": "echo", "TUNEDESK_GROUNDING": "false"}


# ---- a lean server: chatbot.server under uvicorn, on a state directory the test keeps across restarts ----------
@dataclass
class Server:
    process: subprocess.Popen
    url: str
    started: float = field(default_factory=time.monotonic)

    def wait_healthy(self, timeout_s: float = 60.0) -> float:
        """Seconds from launch until /healthz answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the chat server exited with {self.process.returncode}; see its log")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the chat server at {self.url} did not become healthy in {timeout_s} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def launch(state: Path, **env: str) -> Server:
    """The chat service (``chatbot.server:app``, what ``tunedesk chat`` runs) on ``state``'s database and users.

    uvicorn directly rather than the CLI: the echo backend needs no preparing, and every start counts here."""
    port = free_port()
    log = (state / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chatbot.server:app", "--host", "127.0.0.1", "--port", str(port)],
        env={
            **os.environ,
            "TUNEDESK_HOME": str(state),
            "TUNEDESK_DATABASE_URL": f"sqlite:///{state / 'chat.db'}",
            "TUNEDESK_USERS_FILE": str(state / "users.yaml"),
            "CHAINLIT_AUTH_SECRET": "faults-test-secret-" + "x" * 32,  # servers started together agree on it
            **ECHO,
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Server(process, f"http://127.0.0.1:{port}")


def tokens(state: Path) -> dict[str, str]:
    """An agent (the rater) and an admin (who exports), each with an API token."""
    settings = Settings(home=state, users_file=state / "users.yaml")
    users.add(settings, "rater", "rater-password", "agent")
    users.add(settings, "lead", "lead-password", "admin")
    return {name: users.new_token(settings, name) for name in ("rater", "lead")}


def stored_ratings(database: Path) -> dict[str, dict]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, message_id, naturalness, correction FROM ratings")).mappings()
            return {row["id"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# ---- the kill test --------------------------------------------------------------------------------------------
REPETITIONS = 20
WORKERS = 8


@dataclass
class Burst:
    sent: dict[str, int] = field(default_factory=dict)  # message_id -> naturalness, every rating posted
    acknowledged: dict[str, str] = field(default_factory=dict)  # rating id -> message_id, every 201
    lock: threading.Lock = field(default_factory=threading.Lock)


def burst_then_kill(server: Server, token: str, kill_after: int, rng: random.Random) -> Burst:
    """``WORKERS`` threads post ratings as fast as the server takes them; SIGKILL once ``kill_after`` are
    acknowledged, while the others are in flight. Only a 201 counts as acknowledged."""
    burst = Burst()
    enough = threading.Event()
    seeds = [rng.random() for _ in range(WORKERS)]

    def post_until_refused(seed: float) -> None:
        worker_rng = random.Random(seed)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            while True:
                message_id = f"kill:{uuid.uuid4()}"
                score = worker_rng.randint(1, 5)
                with burst.lock:
                    burst.sent[message_id] = score
                body = {"message_id": message_id, "naturalness": score, "prompt": "p", "answer": "a"}
                try:
                    response = client.post("/api/ratings", json=body)
                except httpx.TransportError:
                    return  # the server is gone: this one's fate is unknown, and it was never acknowledged
                if response.status_code == 503:  # "not saved, try again": not acknowledged, and said so
                    continue
                if response.status_code != 201:
                    raise AssertionError(f"{response.status_code}: {response.text}")
                with burst.lock:
                    burst.acknowledged[response.json()["id"]] = message_id
                    if len(burst.acknowledged) >= kill_after:
                        enough.set()

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        workers = [pool.submit(post_until_refused, seed) for seed in seeds]
        assert enough.wait(timeout=60), f"only {len(burst.acknowledged)} ratings acknowledged in 60 s"
        server.kill()
        for worker in workers:
            worker.result()
    return burst


def test_killed_servers_lose_no_acknowledged_rating(tmp_path: Path) -> None:
    """20 times: a burst of ratings from 8 concurrent clients, SIGKILL mid-burst, then the file holds every
    acknowledged one whole, and the restarted server (same home, same database) serves them all (its export
    API). At the end SQLite's integrity check passes."""
    began = time.monotonic()
    token = tokens(tmp_path)
    database = tmp_path / "chat.db"
    rng = random.Random(9)
    acknowledged: dict[str, str] = {}
    sent: dict[str, int] = {}
    counts, starts = [], []
    for repetition in range(REPETITIONS):
        server = launch(tmp_path)  # the restart: a fresh process on the database the last one died writing
        try:
            starts.append(server.wait_healthy())
            exported = httpx.get(
                server.url + "/api/ratings", headers={"Authorization": f"Bearer {token['lead']}"}, timeout=30
            )
            served = {json.loads(line)["id"] for line in exported.text.splitlines()}
            assert set(acknowledged) <= served, f"repetition {repetition}: acknowledged ratings lost after a restart"
            burst = burst_then_kill(server, token["rater"], kill_after=rng.randint(10, 60), rng=rng)
        finally:
            server.kill()
        acknowledged |= burst.acknowledged
        sent |= burst.sent
        counts.append(len(burst.acknowledged))
        on_disk = stored_ratings(database)
        lost = set(acknowledged) - set(on_disk)
        assert not lost, f"repetition {repetition}: {len(lost)} acknowledged ratings lost: {sorted(lost)[:3]}"
        assert {row["message_id"] for row in on_disk.values()} <= set(sent), "a rating nobody sent"
        assert all(row["naturalness"] == sent[row["message_id"]] for row in on_disk.values()), "a row half-written"
    assert integrity(database) == "ok"
    assert set(acknowledged) <= set(stored_ratings(database))
    summary = {
        "repetitions": REPETITIONS,
        "acknowledged_per_repetition": counts,
        "acknowledged": len(acknowledged),
        "lost": 0,
        "server_start_s": [round(s, 2) for s in starts],
        "test_s": round(time.monotonic() - began, 1),
    }
    print("kill test:", json.dumps(summary))
    assert len(counts) == REPETITIONS and min(counts) >= 10


# ---- the database going away: SQLite locked ---------------------------------------------------------------------
@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """A migrated SQLite database as the chat service opens it (``tunedesk.db.connect``: WAL, busy timeout)."""
    path = tmp_path / "records.db"
    engine = db.connect(f"sqlite:///{path}")
    db.migrate(engine)
    yield engine, path
    engine.dispose()


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's long write: a second connection in ``BEGIN EXCLUSIVE`` for ``seconds``."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    return holder


def a_rating(n: int = 1) -> store.RatingIn:
    return store.RatingIn(message_id=f"eval:{n}", naturalness=4, prompt="Can I return it?", answer="Within 30 days.")


def an_answer(message_id: str = "m1", thread_id: str = "t1") -> store.Answer:
    return store.Answer(message_id, None, thread_id, "agent", "Support", "echo", "echo", "Hi?", "You said: Hi?")


def timed(call: Callable[[], object]) -> tuple[object, float]:
    began = time.monotonic()
    try:
        result: object = call()
    except Exception as exc:  # the caller asserts on the exception
        result = exc
    return result, time.monotonic() - began


def test_a_write_waits_out_a_short_lock(database) -> None:
    engine, path = database
    holder = hold_write_lock(path, 1.0)
    row, took = timed(lambda: store.record_rating(engine, a_rating(), "judge", "api"))
    holder.join()
    assert isinstance(row, dict), row
    assert 0.8 < took < db.WRITE_BUDGET_S, took
    assert [r["id"] for r in store.ratings(engine)] == [row["id"]]


def test_a_lock_longer_than_the_budget_fails_every_write_clearly_and_writes_nothing(database) -> None:
    """Rating, answer and survey held up together: each gives up after the budget with StoreUnavailable."""
    engine, path = database
    holder = hold_write_lock(path, db.WRITE_BUDGET_S + 2)
    writes = {
        "rating": lambda: store.record_rating(engine, a_rating(), "judge", "api"),
        "answer": lambda: store.record_answer(engine, an_answer()),
        "survey": lambda: store.record_survey(engine, "t1", "customer", store.SurveyIn(csat=5)),
    }
    with concurrent.futures.ThreadPoolExecutor(len(writes)) as pool:
        outcomes = dict(zip(writes, pool.map(timed, writes.values()), strict=True))
    holder.join()
    for what, (error, took) in outcomes.items():
        assert isinstance(error, store.StoreUnavailable) and isinstance(error, store.RatingError), (what, error)
        assert str(error).startswith("the database is unavailable (") and "please try again" in str(error)
        assert f"the {what}" in str(error) and "not saved" in str(error)
        assert db.WRITE_BUDGET_S - 0.5 < took < db.WRITE_BUDGET_S + 1.5, (what, took)
    assert any("(database is locked)" in str(error) for error, _ in outcomes.values())  # the others queued behind
    with engine.connect() as conn:
        for table in ("ratings", "chat_answers", "chat_outcomes"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    assert store.record_rating(engine, a_rating(), "judge", "api")["supersedes"] is None  # the lock is gone


def test_a_commit_whose_reply_was_lost_is_not_written_twice(tmp_path: Path) -> None:
    """The commit lands but the connection reports it failed: the retry finds its own row instead of adding one."""

    class LosesOneReply(sqlite3.Connection):
        lost = 0

        def commit(self) -> None:
            super().commit()
            if LosesOneReply.lost == 0 and self.total_changes:
                LosesOneReply.lost += 1
                raise sqlite3.OperationalError("database is locked")

    path = tmp_path / "records.db"
    db.migrate(db.connect(f"sqlite:///{path}"))
    engine = create_engine(f"sqlite:///{path}", connect_args={"factory": LosesOneReply})
    try:
        row = store.record_rating(engine, a_rating(), "judge", "api")
        assert LosesOneReply.lost == 1
        assert [(r["id"], r["naturalness"]) for r in store.ratings(engine, store.RatingFilter(history=True))] == [
            (row["id"], 4)
        ]
        LosesOneReply.lost = 0
        store.record_answer(engine, an_answer("m2"))
        LosesOneReply.lost = 0
        survey = store.record_survey(engine, "t1", "customer", store.SurveyIn(csat=3))
        assert LosesOneReply.lost == 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT message_id FROM chat_answers")).scalars().all() == ["m2"]
            assert conn.execute(text("SELECT id FROM chat_outcomes")).scalars().all() == [survey["id"]]
    finally:
        engine.dispose()


def test_a_broken_statement_is_not_retried(tmp_path: Path) -> None:
    """A missing table is no outage: it fails at once, not after the budget."""
    from sqlalchemy.exc import OperationalError

    engine = db.connect(f"sqlite:///{tmp_path / 'empty.db'}")
    error, took = timed(lambda: store.record_rating(engine, a_rating(), "judge", "api"))
    assert isinstance(error, OperationalError) and "no such table" in str(error)
    assert took < 1.0


# ---- the database going away: Postgres restarted ------------------------------------------------------------------
def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


@dataclass
class Postgres:
    """A throwaway Postgres cluster on 127.0.0.1 that the test stops and starts (as ``nobody`` when run as root:
    Postgres refuses to run as root)."""

    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k '' -F"  # TCP only, no fsync: a test cluster
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start"
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Postgres]:
    """Debian's postgresql and psycopg (the ``postgres`` extra); skipped where either is missing."""
    pytest.importorskip("psycopg", reason="needs psycopg: pip install -e '.[postgres]'")
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("needs Debian postgresql (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="tunedesk-pg-"))  # not under pytest's tmp: nobody may not enter that
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    cluster = Postgres(binaries, root / "data", free_port())
    try:
        cluster._run(str(binaries / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_postgres_restart_costs_a_wait_not_a_rating(postgres: Postgres) -> None:
    """The pool's connections die with the server; the write waits for it to come back. Down for longer than
    the budget, the write fails clearly."""
    engine = db.connect(postgres.url)
    db.migrate(engine)
    store.record_answer(engine, an_answer())  # the pool now holds a connection the restart will kill
    postgres.stop()
    restarting = threading.Timer(1.5, postgres.start)
    restarting.start()
    row, took = timed(lambda: store.record_rating(engine, a_rating(), "judge", "api"))
    restarting.join()
    assert isinstance(row, dict), row
    assert 1.4 < took < db.WRITE_BUDGET_S, took
    assert [r["id"] for r in store.ratings(engine)] == [row["id"]]

    postgres.stop()
    error, took = timed(lambda: store.record_rating(engine, a_rating(2), "judge", "api"))
    assert isinstance(error, store.StoreUnavailable), error
    assert "the database is unavailable" in str(error) and "the rating was not saved" in str(error)
    assert db.WRITE_BUDGET_S - 0.5 < took < db.WRITE_BUDGET_S + 1.5, took
    postgres.start()
    assert [r["message_id"] for r in store.ratings(engine)] == ["eval:1"]
    engine.dispose()


# ---- Azure misbehaving: what the chat shows and records --------------------------------------------------------
AGENT, PASSWORD = "agent@example.com", "agent-password-1"


def sign_in(url: str) -> str:
    """The sign-in cookie, from ``/login`` as the browser's login form sends it."""
    response = httpx.post(url + "/login", data={"username": AGENT, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


def recorded(database: Path, prompt: str) -> dict | None:
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT answer, error FROM chat_answers WHERE prompt = ?", (prompt,)).fetchone()
    return dict(row) if row else None


async def browser_socket(url: str) -> tuple[Any, dict[str, str]]:
    """A signed-in socket.io client connected as the browser connects, and the assistant messages it is shown
    (message id -> latest text), kept up to date."""
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    shown: dict[str, str] = {}

    @client.on("new_message")
    @client.on("update_message")
    async def message(data: dict) -> None:
        if data.get("type") == "assistant_message":
            shown[str(data.get("id"))] = str(data.get("output") or "")

    auth = {"clientType": "webapp", "sessionId": str(uuid.uuid4()), "threadId": None, "userEnv": "{}"}
    await client.connect(
        url, socketio_path="/ws/socket.io", headers={"Cookie": sign_in(url)}, auth=auth, transports=["websocket"]
    )
    await client.emit("connection_successful")
    return client, shown


async def send(client: Any, question: str) -> None:
    """Send ``question`` as the browser sends a typed message."""
    sent = {"id": str(uuid.uuid4()), "threadId": "", "name": AGENT, "type": "user_message", "output": question}
    await client.emit("client_message", {"message": sent | {"createdAt": ""}, "fileReferences": []})


async def chat(url: str, database: Path, questions: list[str], timeout_s: float = 30.0) -> list[tuple[str, float]]:
    """Ask ``questions`` one after the other in one conversation over Chainlit's socket.io, as the browser does.

    Returns what the chat showed for each (the assistant message holding the recorded answer) and how long
    the turn took; the recorded row is looked up by its prompt, so each question must be unique."""
    client, shown = await browser_socket(url)
    results = []
    try:
        for question in questions:
            began = time.monotonic()
            await send(client, question)
            while (row := recorded(database, question)) is None or row["answer"] not in shown.values():
                assert time.monotonic() - began < timeout_s, f"no answer to {question!r} in {timeout_s} s"
                await asyncio.sleep(0.05)
            results.append((row["answer"], time.monotonic() - began))
    finally:
        await client.disconnect()
    return results


@pytest.fixture(scope="module")
def azure_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, RunningEmulator, Path]]:
    """The chat service on the azure backend, against the emulator: 2 retries, a 1 s read timeout."""
    state = tmp_path_factory.mktemp("azure-chat")
    users.add(Settings(home=state, users_file=state / "users.yaml"), AGENT, PASSWORD, "agent")
    with run_emulator(config=EmulatorConfig(realtime=True)) as emulator:
        server = launch(
            state,
            TUNEDESK_BACKEND="azure",
            TUNEDESK_AZURE_DEPLOYMENT="gpt-4o-mini",
            TUNEDESK_AZURE_ENDPOINT=emulator.endpoint,
            TUNEDESK_AZURE_API_KEY=emulator.api_key,
            TUNEDESK_AZURE_MAX_RETRIES="2",
            TUNEDESK_AZURE_TIMEOUT_S="1",
            TUNEDESK_AZURE_ANSWER_DEADLINE_S="3",
        )
        try:
            server.wait_healthy()
            yield server, emulator, state / "chat.db"
        finally:
            server.kill()


FAULTS = [  # (what goes wrong, the fault, what the chat says, the error recorded, uses of the fault left)
    ("429 storm", ("rate_limit", {"times": 10, "retry_after_s": 0.05}), "rate-limiting requests (429)", "AzureError", 7),
    ("500 storm", ("server_error", {"times": 10, "retry_after_s": 0.01}), "kept failing (500) after 2 retries",
     "AzureError", 7),
    ("429 twice", ("rate_limit", {"times": 2, "retry_after_s": 0.05}), "You said: ", None, 0),
    ("429 asking to wait 20 s", ("rate_limit", {"times": 10, "retry_after_s": 20}), "did not start the answer within 3 s",
     "GenerationError", 9),
    ("slow stream", ("slow_stream", {"delay_s": 0.05}), "You said: ", None, 0),
    ("stalled stream", ("stall_stream", {"after_chunks": 3, "delay_s": 3.0}),
     "stopped sending the answer for more than 1 s", "GenerationError", 0),
    ("stream dropped mid-answer", ("drop_stream", {"after_chunks": 4}), "dropped in the middle of the answer",
     "GenerationError", 0),
    ("stream dropped before text", ("drop_stream", {"after_chunks": 1, "times": 2}), "You said: ", None, 0),
    ("streams keep dropping", ("drop_stream", {"after_chunks": 1, "times": 10}), "could not reach", "AzureError", 7),
    ("prompt filtered", None, ContentFilteredError.REFUSAL, "content_filter", 0),
    ("answer filtered", None, ContentFilteredError.REFUSAL, "content_filter", 0),
]  # fmt: skip


def test_azure_faults_give_the_chat_a_clear_message_and_a_recorded_error(azure_chat) -> None:
    """Every fault the emulator injects, through the real server and Chainlit's socket: the chat shows a clear
    message (or the answer, when a retry saves it), the retries stop at TUNEDESK_AZURE_MAX_RETRIES, and the
    answer's row in chat_answers names the error."""
    server, emulator, database = azure_chat
    questions = []
    for number, (what, *_) in enumerate(FAULTS):
        marker = {"prompt filtered": DEFAULT_PROMPT_FILTER_WORD, "answer filtered": DEFAULT_OUTPUT_FILTER_WORD}
        questions.append(f"question {number} ({what}) {marker.get(what, '')}".strip())

    async def run() -> list[tuple[str, float, int]]:
        results = []
        for question, (_, fault, _, _, _) in zip(questions, FAULTS, strict=True):
            emulator.faults.clear()
            if fault:
                kind, options = fault
                emulator.faults.add(kind, path="/chat/completions", **options)  # type: ignore[arg-type]
            [(shown, took)] = await chat(server.url, database, [question])
            results.append((shown, took, sum(f.times for f in emulator.faults.pending())))
        return results

    results = asyncio.run(run())
    for question, (what, _, says, error, left), (shown, took, faults_left) in zip(
        questions, FAULTS, results, strict=True
    ):
        assert says in shown, (what, shown)
        assert "Traceback" not in shown
        assert (recorded(database, question) or {}).get("error", "no row") == error, what
        assert faults_left == left, (what, faults_left)  # retries stopped where they should
        assert took < 15, (what, took)
        print(f"{what}: {took:.2f} s, {error or 'answered'}: {shown[:110]}")


# ---- the database going away under the running server --------------------------------------------------------------
def post_rating(server: Server, token: str, number: int) -> httpx.Response:
    body = {"message_id": f"eval:{number}", "naturalness": 3, "prompt": "p", "answer": "a"}
    return httpx.post(server.url + "/api/ratings", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_the_server_refuses_a_rating_clearly_while_sqlite_stays_locked(tmp_path: Path) -> None:
    """Locked past the budget: 503 with the reason, not a false "saved"; /healthz stays ok, since reads still work
    (WAL); once the lock is gone the same rating is stored."""
    token = tokens(tmp_path)["rater"]
    server = launch(tmp_path)
    try:
        server.wait_healthy()
        holder = hold_write_lock(tmp_path / "chat.db", db.WRITE_BUDGET_S + 1.5)
        refused, took = timed(lambda: post_rating(server, token, 1))
        assert httpx.get(server.url + "/healthz", timeout=5).json()["status"] == "ok"
        holder.join()
        assert isinstance(refused, httpx.Response) and refused.status_code == 503, refused
        assert "database is locked" in refused.json()["detail"] and "not saved" in refused.json()["detail"]
        assert db.WRITE_BUDGET_S - 0.5 < took < db.WRITE_BUDGET_S + 2, took
        assert stored_ratings(tmp_path / "chat.db") == {}
        assert post_rating(server, token, 1).status_code == 201
    finally:
        server.kill()
    assert [row["message_id"] for row in stored_ratings(tmp_path / "chat.db").values()] == ["eval:1"]


def test_healthz_follows_a_postgres_restart_and_no_rating_is_half_saved(tmp_path: Path, postgres: Postgres) -> None:
    token = tokens(tmp_path)["rater"]
    server = launch(tmp_path, TUNEDESK_DATABASE_URL=postgres.url)
    try:
        server.wait_healthy()
        assert post_rating(server, token, 1).status_code == 201
        postgres.stop()
        down = httpx.get(server.url + "/healthz", timeout=10)
        assert down.status_code == 503 and down.json()["status"] == "down"
        refused = post_rating(server, token, 2)
        assert refused.status_code == 503 and "the database is unavailable" in refused.json()["detail"]
        postgres.start()
        assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"
        assert post_rating(server, token, 3).status_code == 201
    finally:
        server.kill()
    engine = db.connect(postgres.url)
    assert sorted(r["message_id"] for r in store.ratings(engine)) == ["eval:1", "eval:3"]
    engine.dispose()


async def shown_when(
    url: str, question: str, expected: str, timeout_s: float, connected: Callable[[], object] = lambda: None
) -> str:
    """Sign in, connect to Chainlit's socket, call ``connected``, ask ``question``; return the first assistant
    message that contains ``expected``."""
    client, shown = await browser_socket(url)
    try:
        connected()
        await send(client, question)
        deadline = time.monotonic() + timeout_s
        while not (found := [text for text in shown.values() if expected in text]):
            assert time.monotonic() < deadline, f"nothing with {expected!r} in {timeout_s} s: {shown}"
            await asyncio.sleep(0.1)
        return found[0]
    finally:
        await client.disconnect()


def test_an_answer_the_database_cannot_record_is_shown_with_a_notice(tmp_path: Path) -> None:
    """SQLite locked by another process past the budget: the customer still gets the answer, told that it was not
    saved (so there is no rating widget to press in vain), and the locked file is left untouched."""
    users.add(Settings(home=tmp_path, users_file=tmp_path / "users.yaml"), AGENT, PASSWORD, "agent")
    server = launch(tmp_path)
    try:
        server.wait_healthy()
        holders: list[threading.Thread] = []
        lock = lambda: holders.append(hold_write_lock(tmp_path / "chat.db", 3 * db.WRITE_BUDGET_S))  # noqa: E731
        asked = shown_when(server.url, "Where is my parcel?", "was not saved", 3 * db.WRITE_BUDGET_S, lock)
        shown = asyncio.run(asked)
        holders[0].join()
        assert shown.startswith("You said: Where is my parcel?") and "Please try again in a moment" in shown
        assert recorded(tmp_path / "chat.db", "Where is my parcel?") is None
    finally:
        server.kill()
