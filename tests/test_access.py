"""Access to the chat service, against the real server: every route walked as a stranger, one agent's threads
out of another's reach, secrets out of logs and error pages, security headers, foreign origins refused.

One server for the module (echo backend) with recognisable secrets in its environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import socketio
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from test_ui_browser import AGENT, PASSWORD, UI, signed_in_page, start_ui

from tunedesk import users
from tunedesk.settings import Settings

OTHER, OTHER_PASSWORD = "other@example.com", "another long password"
ADMIN = "lead@example.com"
AZURE_KEY = "azkey-5e1f0c-NEVER-LOGGED"
AUTH_SECRET = "chainlit-signing-secret-9d27b4-NEVER-LOGGED-" + "x" * 20
DB_PASSWORD = "dbpass-77c1-NEVER-LOGGED"
WRONG_PASSWORD = "typo-password-3a9e-NEVER-LOGGED"
A_SECRET = "order 4711-A, card ending 9921"  # what agent A's customer said; B must never see it
PORTAL = "https://portal.example.com"
GATE_REFUSAL = "sign in, or send 'Authorization: Bearer <token>'"
EVIL = "https://evil.example"

# The reviewed allow-list: what a stranger may reach, and why. chatbot.server.OPEN_ROUTES must say the same.
REVIEWED_OPEN = {
    ("GET", "/healthz"): "load balancers",
    ("GET", "/login"): "the login page (the single-page app's shell, served by Chainlit's catch-all)",
    ("POST", "/login"): "password sign-in",
    ("POST", "/logout"): "clears the cookie",
    ("GET", "/auth/config"): "the login page asks which sign-in methods exist",
    ("POST", "/auth/jwt"): "sign-in with a token the endpoint verifies",
    ("POST", "/auth/header"): "header sign-in, which has no callback and is refused",
    ("GET", "/auth/oauth/{provider_id}"): "Entra ID sign-in",
    ("GET", "/auth/oauth/{provider_id}/callback"): "Entra ID sign-in",
    ("POST", "/auth/oauth/azure-ad-hybrid/callback"): "Entra ID sign-in",
    ("GET", "/project/translations"): "the login page's texts",
    ("GET", "/assets/{filename:path}"): "the login page's JS bundle and CSS",
    ("GET", "/favicon"): "the login page's icon",
    ("GET", "/logo"): "the login page's logo",
}
CLOSED = {"/project/share/{thread_id}", "/project/thread/share", "/copilot/{filename:path}"} | {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
FAKE = {
    "thread_id": str(uuid.uuid4()),
    "element_id": str(uuid.uuid4()),
    "file_id": str(uuid.uuid4()),
    "provider_id": "azure-ad",
    "filename": "index.js",
    "avatar_id": "default",
    "full_path": "thread/1234",
}
ROUTES_SCRIPT = """
import json
from starlette.routing import Mount
from chatbot import server

def walk(routes, prefix=""):
    for route in routes:
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if inner is None:  # an ASGI app (socket.io): every method
                yield prefix + route.path, ["MOUNT"]
            else:
                yield from walk(inner, prefix + route.path)
        elif hasattr(route, "original_router"):  # FastAPI's include_router
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, sorted(getattr(route, "methods", None) or ["WEBSOCKET"])

print(json.dumps({"routes": list(walk(server.app.routes)), "open": sorted(server.OPEN_ROUTES)}))
"""


@dataclass
class Service:
    ui: UI
    admin_token: str
    agent_token: str

    @property
    def url(self) -> str:
        return self.ui.url

    def signed_in(self, name: str, password: str) -> httpx.Client:
        client = httpx.Client(base_url=self.url)
        response = client.post("/login", data={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return client


@pytest.fixture(scope="module")
def service(shared_home: Path) -> Iterator[Service]:
    ui = start_ui(
        shared_home,
        TUNEDESK_BACKEND="echo",
        TUNEDESK_AZURE_API_KEY=AZURE_KEY,
        TUNEDESK_ALLOWED_ORIGINS=PORTAL,
        CHAINLIT_AUTH_SECRET=AUTH_SECRET,
    )
    settings = Settings(home=shared_home, users_file=ui.state / "users.yaml")
    users.add(settings, OTHER, OTHER_PASSWORD, "agent")
    users.add(settings, ADMIN, "lead-password-123", "admin")
    tokens = {name: users.new_token(settings, name) for name in (ADMIN, AGENT)}
    yield Service(ui, tokens[ADMIN], tokens[AGENT])
    ui.stop()


def server_routes(home: Path) -> dict:
    """The real app's routes (FastAPI's, then the mounted Chainlit app's) and its allow-list, from a fresh process."""
    env = {**os.environ, "TUNEDESK_HOME": str(home), "TUNEDESK_BACKEND": "echo"}
    done = subprocess.run(
        [sys.executable, "-c", ROUTES_SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: FAKE[m.group(1)], path)


def refused(response: httpx.Response) -> bool:
    """401/403, or a browser sent to the login page."""
    if response.status_code in (401, 403):
        return True
    return response.status_code in (302, 303, 307) and urlsplit(response.headers["location"]).path == "/login"


def test_every_route_but_the_reviewed_open_ones_refuses_a_stranger(service: Service, shared_home: Path) -> None:
    found = server_routes(shared_home)
    assert {tuple(route) for route in found["open"]} == set(REVIEWED_OPEN), "OPEN_ROUTES changed: review it here"
    walked = 0
    with httpx.Client(base_url=service.url) as stranger:
        for path, methods in found["routes"]:
            if methods == ["MOUNT"]:  # socket.io: its handshake
                methods, path = ["GET", "POST"], path + "/?EIO=4&transport=polling"
            for method in methods:
                url = concrete(path)
                body: dict | None = {} if method in ("POST", "PUT", "DELETE") else None
                api = stranger.request(method, url, json=body, headers={"Accept": "application/json"})
                walked += 1
                if (method, path) in REVIEWED_OPEN:
                    # through the gate (a sign-in endpoint may still say 400/401 itself: no credentials sent)
                    assert GATE_REFUSAL not in api.text, (method, path, api.status_code)
                elif path in CLOSED:
                    assert api.status_code == 404, (method, path, api.status_code)
                else:
                    assert refused(api), (method, path, api.status_code, api.text[:200])
                    if method in ("GET", "HEAD"):  # a browser navigating there lands on the login page
                        page = stranger.request(method, url, headers={"Accept": "text/html"})
                        assert refused(page) and page.status_code == 302, (method, path, page.status_code)
    assert walked >= 50  # FastAPI's routes and all of Chainlit's were walked, not an empty list
    with httpx.Client(base_url=service.url) as stranger:
        login = stranger.get("/login", headers={"Accept": "text/html"})
        assert login.status_code == 200 and '<div id="root">' in login.text
        for open_path in ("/auth/config", "/project/translations", "/favicon", "/logo"):
            assert stranger.get(open_path).status_code == 200, open_path
        # the SPA's other pages, Chainlit's own health route and the root are not open
        for closed_path in ("/", "/thread/abc", "/health", "/public/elements/Rating.jsx", "/avatars/default"):
            assert refused(stranger.get(closed_path)), closed_path


def test_a_forged_or_expired_session_is_a_stranger(service: Service) -> None:
    import jwt

    forged = jwt.encode(
        {"identifier": AGENT, "metadata": {}, "exp": time.time() + 3600},
        "not-the-secret-but-just-as-long-as-one-0123456789",
    )
    expired = jwt.encode({"identifier": AGENT, "metadata": {}, "exp": time.time() - 10}, AUTH_SECRET)
    genuine = jwt.encode({"identifier": AGENT, "metadata": {}, "exp": time.time() + 3600}, AUTH_SECRET)
    for token in (forged, expired):
        assert httpx.get(service.url + "/user", cookies={"access_token": token}).status_code == 401
        assert httpx.get(service.url + "/user", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert httpx.get(service.url + "/user", cookies={"access_token": genuine}).json()["identifier"] == AGENT


def test_the_ratings_api_needs_a_token(service: Service) -> None:
    url = service.url + "/api/ratings"
    rating = {"message_id": "eval:access:1", "naturalness": 4, "prompt": "p", "answer": "a"}
    assert httpx.post(url, json=rating).status_code == 401
    assert httpx.post(url, json=rating, headers={"Authorization": "Bearer td_forged"}).status_code == 401
    assert httpx.get(url).status_code == 401
    posted = httpx.post(url, json=rating, headers={"Authorization": f"Bearer {service.agent_token}"})
    assert posted.status_code == 201, posted.text
    assert httpx.get(url, headers={"Authorization": f"Bearer {service.agent_token}"}).status_code == 403
    exported = httpx.get(url, headers={"Authorization": f"Bearer {service.admin_token}"})
    assert exported.status_code == 200 and "eval:access:1" in exported.text


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def seed_thread(ui: UI, owner: str, said: str) -> dict[str, str]:
    """A thread of ``owner`` (signed in once, so Chainlit has their user row): a message, a widget, a thumb."""
    ids = {key: str(uuid.uuid4()) for key in ("thread", "step", "element", "feedback")}
    engine = create_engine(f"sqlite:///{ui.state / 'chat.db'}")
    try:
        with engine.begin() as conn:
            user_id = conn.execute(text("SELECT id FROM users WHERE identifier = :u"), {"u": owner}).scalar_one()
            conn.execute(
                text(
                    'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier", metadata) '
                    "VALUES (:thread, :now, :said, :user_id, :owner, '{}')"
                ),
                {**ids, "now": _now(), "said": said, "user_id": user_id, "owner": owner},
            )
            conn.execute(
                text(
                    'INSERT INTO steps (id, name, type, "threadId", streaming, output, "createdAt") '
                    "VALUES (:step, :owner, 'user_message', :thread, 0, :said, :now)"
                ),
                {**ids, "owner": owner, "said": said, "now": _now()},
            )
            conn.execute(
                text(
                    'INSERT INTO elements (id, "threadId", type, name, display, "forId", props) '
                    "VALUES (:element, :thread, 'custom', 'Rating', 'inline', :step, :props)"
                ),
                {**ids, "props": json.dumps({"said": said})},
            )
            conn.execute(
                text(
                    'INSERT INTO feedbacks (id, "forId", "threadId", value, comment) '
                    "VALUES (:feedback, :step, :thread, 1, :said)"
                ),
                {**ids, "said": said},
            )
    finally:
        engine.dispose()
    return ids


async def resumed(cookie: str, url: str, thread_id: str, session_id: str | None = None) -> tuple:
    """A socket.io session (as the browser opens one) that resumes ``thread_id``; the events it receives."""
    events: list = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("resume_thread", lambda thread: events.append(thread))
    await client.connect(
        url,
        socketio_path="/ws/socket.io",
        transports=["websocket"],
        headers={"Cookie": f"access_token={cookie}"},
        auth={
            "sessionId": session_id or str(uuid.uuid4()),
            "clientType": "webapp",
            "userEnv": "{}",
            "chatProfile": None,
            "threadId": thread_id,
        },
        wait_timeout=20,
    )
    await client.emit("connection_successful")
    return client, events


def in_a_thread(work: Any) -> Any:
    """``asyncio.run(work)`` off the main thread, whose loop sync Playwright may hold."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def test_an_agent_cannot_read_or_touch_another_agents_thread(service: Service) -> None:
    a, b = service.signed_in(AGENT, PASSWORD), service.signed_in(OTHER, OTHER_PASSWORD)
    theirs, mine = seed_thread(service.ui, AGENT, A_SECRET), seed_thread(service.ui, OTHER, "B's own chat")
    try:
        own = a.get(f"/project/thread/{theirs['thread']}")  # the author reads it: the check can see content
        assert own.status_code == 200 and A_SECRET in own.text
        assert A_SECRET in a.get(f"/project/thread/{theirs['thread']}/element/{theirs['element']}").text

        missing = b.get(f"/project/thread/{uuid.uuid4()}")
        for response in (  # A's thread is exactly as "not found" as one that does not exist
            b.get(f"/project/thread/{theirs['thread']}"),
            b.get(f"/project/thread/{theirs['thread']}/element/{theirs['element']}"),
        ):
            assert (
                (response.status_code, response.json())
                == (missing.status_code, missing.json())
                == (404, {"detail": "thread not found"})
            )
        for response in (
            b.get(f"/project/thread/{theirs['thread']}"),
            b.get(f"/project/thread/{theirs['thread']}/element/{theirs['element']}"),
            b.put("/feedback", json={"feedback": {"forId": theirs["step"], "value": 0}, "sessionId": "s"}),
            b.put(  # B's own message, but A's feedback row
                "/feedback",
                json={"feedback": {"forId": mine["step"], "id": theirs["feedback"], "value": 0}, "sessionId": "s"},
            ),
            b.request("DELETE", "/feedback", json={"feedbackId": theirs["feedback"]}),
            b.put("/project/thread/share", json={"threadId": theirs["thread"], "isShared": True}),
            b.get(f"/project/share/{theirs['thread']}"),
        ):
            assert response.status_code == 404, (response.request.url, response.status_code, response.text)
            assert A_SECRET not in response.text and "9921" not in response.text
        # B's own thread with A's element id: Chainlit looks the element up within the thread, so nothing
        assert A_SECRET not in b.get(f"/project/thread/{mine['thread']}/element/{theirs['element']}").text
        for response in (
            b.put("/project/thread", json={"threadId": theirs["thread"], "name": "renamed by B"}),
            b.request("DELETE", "/project/thread", json={"threadId": theirs["thread"]}),
        ):
            assert response.status_code in (401, 403, 404), response.status_code
        listed = b.post("/project/threads", json={"pagination": {"first": 50}, "filter": {}})
        assert listed.status_code == 200 and "B's own chat" in listed.text and A_SECRET not in listed.text

        rows = service.ui.rows(f"SELECT name FROM threads WHERE id = '{theirs['thread']}'")
        assert rows == [{"name": A_SECRET}]  # neither renamed nor deleted
        assert service.ui.rows(f"SELECT value, comment FROM feedbacks WHERE id = '{theirs['feedback']}'") == [
            {"value": 1, "comment": A_SECRET}
        ]
        in_a_thread(over_socket_io(service, a.cookies["access_token"], b.cookies["access_token"], theirs, mine))
    finally:
        a.close()
        b.close()


async def over_socket_io(service: Service, a_cookie: str, b_cookie: str, theirs: dict, mine: dict) -> None:
    """B cannot resume A's thread; the author can (content and all). B's live session updates and deletes
    elements by ids from the page (as the rating widget does): A's stay as they were."""
    with pytest.raises(socketio.exceptions.ConnectionError):
        await resumed(b_cookie, service.url, theirs["thread"])
    client, events = await resumed(a_cookie, service.url, theirs["thread"])
    for _ in range(200):
        if events:
            break
        await asyncio.sleep(0.1)
    await client.disconnect()
    assert events and A_SECRET in json.dumps(events[0])

    session_id = str(uuid.uuid4())
    client, _ = await resumed(b_cookie, service.url, mine["thread"], session_id)

    def element(ids: dict, props: dict) -> dict:
        return {"id": ids["element"], "threadId": ids["thread"], "forId": ids["step"], "type": "custom"} | {
            "name": "Rating",
            "display": "inline",
            "props": props,
        }

    query = "SELECT id, \"threadId\", props FROM elements WHERE id IN ('{}', '{}')".format(
        mine["element"], theirs["element"]
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, cookies={"access_token": b_cookie}) as b:
            for target in (theirs, {**theirs, "thread": mine["thread"]}):  # in A's thread; moved into B's
                sent = {"element": element(target, {"said": "overwritten by B"}), "sessionId": session_id}
                assert (await b.put("/project/element", json=sent)).status_code == 200
            own = {"element": element(mine, {"said": "B updated B's"}), "sessionId": session_id}
            assert (await b.put("/project/element", json=own)).status_code == 200
            for _ in range(100):  # elements are written in a background task
                if "B updated" in json.dumps(service.ui.rows(query)):
                    break
                await asyncio.sleep(0.1)
            deleted = {"element": element(theirs, {}), "sessionId": session_id}
            assert (await b.request("DELETE", "/project/element", json=deleted)).status_code == 200
            rows = {row["id"]: row for row in service.ui.rows(query)}
            assert json.loads(rows[mine["element"]]["props"]) == {"said": "B updated B's"}  # the path works
            assert rows[theirs["element"]]["threadId"] == theirs["thread"]
            assert json.loads(rows[theirs["element"]]["props"]) == {"said": A_SECRET}
            own_deleted = {"element": element(mine, {}), "sessionId": session_id}
            assert (await b.request("DELETE", "/project/element", json=own_deleted)).status_code == 200
            assert [row["id"] for row in service.ui.rows(query)] == [theirs["element"]]
    finally:
        await client.disconnect()


def test_secrets_stay_out_of_reprs_logs_and_error_pages(service: Service, shared_home: Path) -> None:
    settings = Settings(
        home=shared_home,
        azure_api_key=SecretStr(AZURE_KEY),
        database_url=f"postgresql+psycopg://tunedesk:{DB_PASSWORD}@db.internal/tunedesk",
        users={"svc": {"role": "agent", "password": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}},
    )
    shown = repr(settings) + str(settings)
    assert AZURE_KEY not in shown and DB_PASSWORD not in shown and "argon2id" not in shown
    assert "azure_api_key=SecretStr('**********')" in shown

    responses = [httpx.post(service.url + "/login", data={"username": AGENT, "password": WRONG_PASSWORD})]
    agent = service.signed_in(AGENT, PASSWORD)
    cookies = {"access_token": agent.cookies["access_token"]}  # a connection per request: a 500 closes it
    agent.close()
    for method, path, body in (
        ("PUT", "/project/element", {"element": {}, "sessionId": "no-such-session"}),  # Chainlit: 500
        ("POST", "/project/action", {"action": {"name": "rate"}, "sessionId": "no-such-session"}),
        ("POST", "/api/ratings", {"message_id": "x", "naturalness": 9}),
        ("GET", "/project/settings?language=%27%3B%20DROP", None),
    ):
        responses.append(httpx.request(method, service.url + path, json=body, cookies=cookies))
    token = {"Authorization": f"Bearer {service.agent_token}"}
    responses.append(
        httpx.post(service.url + "/api/ratings", json={"message_id": "x", "naturalness": 9}, headers=token)
    )
    assert any(r.status_code == 500 for r in responses)  # an unhandled error was among them
    for response in responses:
        assert response.status_code >= 400
        assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:300]
    cli = subprocess.run(  # the CLI, with a database URL whose server is not there
        [str(Path(sys.executable).parent / "tunedesk"), "db", "current"],
        env={**os.environ, "TUNEDESK_DATABASE_URL": f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1:9/x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode != 0
    everything = (service.ui.state / "server.log").read_text() + cli.stdout + cli.stderr
    everything += "".join(r.text + str(r.headers) for r in responses)
    for secret in (AZURE_KEY, AUTH_SECRET, DB_PASSWORD, WRONG_PASSWORD, PASSWORD, service.agent_token):
        assert secret not in everything


def test_a_removed_user_is_signed_out_at_once(service: Service, shared_home: Path) -> None:
    settings = Settings(home=shared_home, users_file=service.ui.state / "users.yaml")
    users.add(settings, "leaver@example.com", "leaving-password-1", "agent")
    browser = service.signed_in("leaver@example.com", "leaving-password-1")
    assert browser.get("/user").status_code == 200
    users.remove(settings, "leaver@example.com")
    assert browser.get("/user").status_code == 401  # the cookie is still valid; the user is not


def test_security_headers(service: Service) -> None:
    page = httpx.get(service.url + "/login")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert re.search(r"script-src 'self' 'unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')+;", policy)
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "img-src 'self' data: blob:;" in policy  # a markdown image cannot carry a chat off to another site
    api = httpx.get(service.url + "/api/ratings", headers={"Authorization": f"Bearer {service.admin_token}"})
    stranger = httpx.get(service.url + "/metrics")
    for response in (page, api, stranger, httpx.get(service.url + "/healthz")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "camera=()" in response.headers["permissions-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http
    bundle = re.search(r'src="(/assets/index-[^"]+\.js)"', page.text)
    assert bundle, page.text[:500]
    asset = httpx.get(service.url + bundle.group(1))
    assert asset.status_code == 200 and "no-store" not in asset.headers.get("cache-control", "")
    proxied = httpx.get(service.url + "/healthz", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"].startswith("max-age=31536000")


ERROR_PAGE_SCRIPT = """
import json
from fastapi.routing import APIRoute
from starlette.routing import compile_path
from starlette.testclient import TestClient
from chatbot import server

def boom():
    raise RuntimeError("secret-looking detail")

server.app.router.routes.insert(0, APIRoute("/boom", boom))  # before Chainlit's catch-all mount
server._OPEN.append(("GET", compile_path("/boom")[0]))  # past the sign-in gate, to reach the error
response = TestClient(server.app, raise_server_exceptions=False).get("/boom")
print(json.dumps({"status": response.status_code, "headers": dict(response.headers), "body": response.text}))
"""


def test_an_unhandled_error_answers_500_with_the_security_headers_and_no_detail(shared_home: Path) -> None:
    """Starlette answers an unhandled error outside every middleware; the headers must be there all the same."""
    env = {**os.environ, "TUNEDESK_HOME": str(shared_home), "TUNEDESK_BACKEND": "echo"}
    done = subprocess.run(
        [sys.executable, "-c", ERROR_PAGE_SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 500 and answer["body"] == "Internal Server Error"
    headers = answer["headers"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert "secret-looking detail" not in json.dumps(answer)


def raw_websocket_upgrade(url: str, origin: str, cookie: str) -> str:
    """The status line of a socket.io websocket handshake (no client library: the answer is all we need)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(
            (
                "GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {origin}\r\nCookie: access_token={cookie}\r\n\r\n"
            ).encode()
        )
        return conn.recv(4096).decode(errors="replace").split("\r\n")[0]


def test_foreign_origins_are_refused_over_http_and_socket_io(service: Service) -> None:
    own = service.url
    evil_login = httpx.post(own + "/login", data={"username": AGENT, "password": PASSWORD}, headers={"Origin": EVIL})
    assert evil_login.status_code == 403 and "set-cookie" not in evil_login.headers
    own_login = httpx.post(own + "/login", data={"username": AGENT, "password": PASSWORD}, headers={"Origin": own})
    assert own_login.status_code == 200
    cookie = own_login.cookies["access_token"]
    handshake = "/ws/socket.io/?EIO=4&transport=polling"
    assert httpx.get(own + handshake, cookies={"access_token": cookie}, headers={"Origin": EVIL}).status_code == 403
    portal = httpx.get(own + handshake, cookies={"access_token": cookie}, headers={"Origin": PORTAL})
    assert portal.status_code == 200 and portal.headers["access-control-allow-origin"] == PORTAL
    assert httpx.get(own + handshake, cookies={"access_token": cookie}, headers={"Origin": own}).status_code == 200
    assert " 403 " in raw_websocket_upgrade(own, EVIL, cookie) + " "
    assert " 101 " in raw_websocket_upgrade(own, own, cookie) + " "
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = httpx.options(own + "/project/threads", headers={"Origin": PORTAL, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == PORTAL
    assert httpx.options(own + "/project/threads", headers={"Origin": EVIL, **preflight}).status_code == 403
    with_token = {"Authorization": f"Bearer {service.agent_token}", "Origin": EVIL}
    assert httpx.post(own + "/api/ratings", json={}, headers=with_token).status_code == 403


@pytest.mark.browser
def test_the_ui_works_under_the_content_security_policy(chromium_browser, service: Service) -> None:
    page = signed_in_page(chromium_browser, service.ui)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.locator("#chat-input").fill("Where is my parcel?")
    page.wait_for_function("() => !document.querySelector('#chat-submit').disabled", timeout=30_000)
    page.locator("#chat-submit").click()
    page.locator("[data-rating-for]").first.wait_for(timeout=60_000)  # a custom element: compiled in the page
    assert violations == []
    from playwright.sync_api import Error

    with pytest.raises(Error, match="Content Security Policy"):  # an injected inline script is refused
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("window.injected === undefined")
    page.close()
