"""The chat service: a FastAPI app with Chainlit mounted at ``/``, plus health, metrics and the ratings API.

Decisions:
- This module is the process (``tunedesk chat`` runs it under uvicorn). Start-up work lives in this app's
  lifespan, because Chainlit's ``on_app_startup`` never runs when Chainlit is mounted.
- Routes declared here win over Chainlit's catch-all; everything else is Chainlit's.
- Deny by default: ``AccessGate`` lets a request through only when it is signed in (Chainlit's session
  cookie or a bearer token: a Chainlit JWT or a ``tunedesk users token``) or it is on ``OPEN_ROUTES``,
  the reviewed list of what the login page needs, each with its reason. A new Chainlit route is closed
  until someone adds it there. Strangers get 401, or a redirect to ``/login`` when a browser navigates.
- ``/healthz`` is open (load balancers); ``/metrics`` and ``/api/*`` need a bearer API token
  (``tunedesk users token``) or a signed-in browser session; exporting ratings and the ``/admin`` page
  need the admin role.
- Users are the tenants (tunedesk has no other tenant notion): a thread, its elements and its feedback
  are its author's only. Chainlit checks authorship when a thread is read, resumed over socket.io, renamed
  or deleted; it does not on feedback, so ``/feedback`` is guarded here, and a thread that is not the
  caller's is "not found" (404), whether it exists or not. Thread sharing is off: its routes are closed.
- Cross-origin requests are refused (403) unless their ``Origin`` is the service's own or listed in
  ``TUNEDESK_ALLOWED_ORIGINS`` (or ``allow_origins`` in .chainlit/config.toml), socket.io included (its
  websocket has no CORS to protect it); Chainlit's CORS middleware answers the listed origins. The check
  compares hosts, so a proxy must pass ``Host`` or ``X-Forwarded-Host`` through, or list the public origin.
- ``SecurityHeaders`` puts a Content-Security-Policy and the usual hardening headers on every response.
  Chainlit's UI needs ``'unsafe-eval'`` (custom elements such as the rating widget are compiled in the
  browser with ``new Function``); inline scripts are allowed by hash only, images only from here (a
  markdown image cannot carry a conversation to another site). HSTS is sent over https, also behind a
  proxy that says so in ``X-Forwarded-Proto``. Responses other than static files are ``no-store``.
- Telemetry (``chatbot.telemetry``) is set up here, once, before Chainlit loads the app.
- The environment Chainlit reads at import (app root, auth secret) is set before it is imported.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from chatbot import telemetry
from tunedesk import users
from tunedesk.errors import ConfigError, validation_problems
from tunedesk.settings import load_settings

log = logging.getLogger("tunedesk.server")
ROOT = Path(__file__).resolve().parent.parent
settings = load_settings()
telemetry.setup()
os.environ.setdefault("CHAINLIT_APP_ROOT", str(ROOT))
users.ensure_auth_secret(settings)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from tunedesk.db import engine

    await run_in_threadpool(engine, settings)  # migrates the schema before the first request
    created = await run_in_threadpool(users.ensure_first_admin, settings)
    if created:
        log.warning("no users yet: created 'admin'; its password is in %s", created)
    from chatbot import guardrails

    guardrails.Guardrails.from_settings(settings)  # a wrong TUNEDESK_GUARDRAILS_ESCALATE stops the start, not a chat
    warming = None
    if settings.grounding:  # a wrong TUNEDESK_POLICY stops the start; embedding it happens in the background
        from chatbot import grounding

        policy = settings.policy or grounding.SAMPLE_POLICY
        grounding.policy_files(policy)
        warming = asyncio.create_task(asyncio.to_thread(grounding.load_index, policy))
    yield
    if warming is not None and not warming.done():
        warming.cancel()


app = FastAPI(title="tunedesk chat", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _session_user(token: str) -> str | None:
    """The user a Chainlit session token (cookie or bearer JWT) was signed for; None when it does not verify."""
    from chainlit.auth.jwt import decode_jwt

    try:
        user = decode_jwt(token)
    except Exception:  # expired, forged, malformed: all the same to the caller
        return None
    if (user.metadata or {}).get("provider") == "credentials" and user.identifier not in _password_users():
        return None  # removed from the users file: their sessions end now, not when the cookie expires
    return user.identifier


def _password_users() -> frozenset[str]:
    """Who the users file (and ``TUNEDESK_USERS``) lists now; read again only when the file changes. The inode
    is part of the key: every save replaces the file, and two saves can share an mtime tick."""
    try:
        found = users.users_file(settings).stat()
        stamp = (found.st_ino, found.st_mtime_ns, found.st_size)
    except FileNotFoundError:
        stamp = (0, 0, 0)
    return _users_as_of(stamp)


@functools.lru_cache(maxsize=2)
def _users_as_of(stamp: tuple[int, int, int]) -> frozenset[str]:
    return frozenset(users.all_users(settings))


def signed_in(conn: HTTPConnection) -> str | None:
    """Who sent ``conn``: the session cookie's user, else the bearer token's (API token or Chainlit JWT)."""
    from chainlit.auth.cookie import get_token_from_cookies

    token = get_token_from_cookies(dict(conn.cookies))
    if token:
        return _session_user(token)
    header = conn.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    bearer = header[7:].strip()
    if bearer.startswith(users.TOKEN_PREFIX):
        signed = users.check_token(settings, bearer)
        return signed.name if signed else None
    return _session_user(bearer)


def caller(request: Request) -> users.Signed:
    """The API token's user, or the browser session's; 401 otherwise."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        signed = users.check_token(settings, header[7:].strip())
        if signed:
            return signed
    else:
        from chainlit.auth.cookie import get_token_from_cookies

        token = get_token_from_cookies(dict(request.cookies))
        name = _session_user(token) if token else None
        if name is not None:  # the role as it is now, not as it was at sign-in (a demotion takes effect)
            return users.Signed(name=name, role=users.current_role(settings, name))
    raise HTTPException(401, "sign in, or send 'Authorization: Bearer <token>' (tunedesk users token NAME)")


Caller = Annotated[users.Signed, Depends(caller)]


def admin(who: Caller) -> users.Signed:
    if who.role != "admin":
        raise HTTPException(
            403, f"{who.name} is an {who.role}; this needs the admin role (tunedesk users add --role admin)"
        )
    return who


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, Any]:
    from sqlalchemy import text

    from tunedesk.db import current_revision, engine

    def check() -> str | None:
        records = engine(settings)
        with records.connect() as conn:
            conn.execute(text("SELECT 1"))
        return current_revision(records)

    try:
        revision = await run_in_threadpool(check)
    except Exception as exc:
        return JSONResponse({"status": "down", "database": type(exc).__name__}, status_code=503)  # type: ignore[return-value]
    return {"status": "ok", "database": "ok", "schema": revision, "backend": settings.backend, "model": settings.model}


@app.get("/metrics", include_in_schema=False)
async def metrics(who: Caller) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/admin", include_in_schema=False)
async def admin_page(who: Annotated[users.Signed, Depends(admin)]) -> HTMLResponse:
    """The last 24 hours: volume, p95 latency, error rate, thumbs ratio, CSAT, resolution, escalations."""
    from chatbot import dashboard
    from tunedesk.db import engine

    data = await run_in_threadpool(dashboard.last_24_hours, engine(settings))
    return HTMLResponse(await run_in_threadpool(dashboard.page, data, who.name))


MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def exported(rows: list[dict[str, Any]], format: Literal["jsonl", "csv"], columns: list[str]) -> Response:
    from chatbot import store

    return PlainTextResponse(store.export_text(rows, format, columns), media_type=MEDIA_TYPES[format])


@app.get("/api/ratings")
async def export_ratings(
    who: Annotated[users.Signed, Depends(admin)],
    format: Literal["jsonl", "csv"] = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    rater: str | None = None,
    backend: str | None = None,
    model: str | None = None,
    kind: Literal["thumbs", "scores"] | None = None,
    source: Literal["chat", "review", "api"] | None = None,
    history: Annotated[bool, Query(description="every submission, superseded ones included")] = False,
) -> Response:
    """Ratings as JSONL or CSV, oldest first; current ones unless ``history=true``."""
    from chatbot import store
    from tunedesk.db import engine

    where = store.RatingFilter(since, until, rater, backend, model, kind, source, history)
    rows = await run_in_threadpool(store.ratings, engine(settings), where)
    return exported(rows, format, store.EXPORT_COLUMNS)


@app.get("/api/outcomes")
async def export_outcomes(
    who: Annotated[users.Signed, Depends(admin)],
    format: Literal["jsonl", "csv"] = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    kind: Literal["survey", "escalation"] | None = None,
    history: Annotated[bool, Query(description="every survey sent, changed ones included")] = False,
) -> Response:
    """How conversations ended (surveys: resolved, CSAT, comment; escalations: reason), oldest first."""
    from chatbot import store
    from tunedesk.db import engine

    rows = await run_in_threadpool(store.outcomes, engine(settings), since, until, kind, history)
    return exported(rows, format, store.OUTCOME_COLUMNS)


@app.post("/api/ratings", status_code=201)
async def post_rating(who: Caller, request: Request) -> dict[str, Any]:
    """One rating from an automated rater, attributed to the token's user."""
    from chatbot import store
    from tunedesk.db import engine

    try:
        rating = store.RatingIn.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = [{"field": field, "message": message} for field, message in validation_problems(exc)]
        raise HTTPException(422, problems) from None
    try:
        row = await run_in_threadpool(store.record_rating, engine(settings), rating, who.name, "api")
    except store.StoreUnavailable as exc:  # locked or down past the write budget: nothing was stored
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    except store.RatingError as exc:
        raise HTTPException(404, str(exc)) from None
    telemetry.count_rating(row)
    return {"id": row["id"], "supersedes": row["supersedes"]}


# --- Access: who may reach what, from where, and with which headers ----------------------------------------

OPEN_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "load balancers' probe; says ok or down, the schema revision, backend and model",
    ("GET", "/login"): "the login page: Chainlit's single-page app shell, the same static HTML for everyone",
    ("POST", "/login"): "password sign-in",
    ("POST", "/logout"): "signing out only clears the session cookie",
    ("GET", "/auth/config"): "the login page asks which sign-in methods there are",
    ("POST", "/auth/jwt"): "sign-in with a Chainlit token, which the endpoint verifies",
    ("POST", "/auth/header"): "header sign-in: no header callback is configured, so Chainlit refuses it",
    ("GET", "/auth/oauth/{provider_id}"): "Entra ID sign-in: the redirect to the provider",
    ("GET", "/auth/oauth/{provider_id}/callback"): "Entra ID sign-in: the provider's answer",
    ("POST", "/auth/oauth/azure-ad-hybrid/callback"): "Entra ID hybrid sign-in: the provider's answer",
    ("GET", "/project/translations"): "the login page's texts",
    ("GET", "/assets/{filename:path}"): "the login page's JavaScript and CSS bundle",
    ("GET", "/favicon"): "the login page's icon",
    ("GET", "/logo"): "the login page's logo",
}
CLOSED_ROUTES: dict[str, str] = {  # 404 for everyone, signed in or not
    "/project/share/{thread_id}": "thread sharing is off: a shared thread is readable by every signed-in user",
    "/project/thread/share": "thread sharing is off",
    "/copilot/{filename:path}": "the copilot widget embeds the chat in other sites; tunedesk does not",
    "/openapi.json": "Chainlit's API description",
    "/docs": "Chainlit's API description",
    "/docs/oauth2-redirect": "Chainlit's API description",
    "/redoc": "Chainlit's API description",
}
STATIC_PREFIXES = ("/assets/", "/public/", "/avatars/")
STATIC_PATHS = ("/favicon", "/logo")
_OPEN = [(method, compile_path(path)[0]) for method, path in OPEN_ROUTES]
_CLOSED = [compile_path(path)[0] for path in CLOSED_ROUTES]


def is_open(method: str, path: str) -> bool:
    """Whether ``OPEN_ROUTES`` lets a stranger send ``method`` to ``path`` (HEAD goes where GET does)."""
    method = "GET" if method == "HEAD" else method
    return any(method == open_method and pattern.match(path) for open_method, pattern in _OPEN)


def origin_allowed(origin: str, host: str, allowed: frozenset[str]) -> bool:
    """A browser's ``Origin`` is the service's own (its host is the one the request was sent to) or listed."""
    return origin in allowed or (bool(host) and urlsplit(origin).netloc.lower() == host.lower())


def request_host(headers: Any) -> str:
    return (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()


class AccessGate:
    """Deny by default: closed routes, foreign origins and strangers off ``OPEN_ROUTES`` never reach a route.

    CORS preflights (OPTIONS) pass without sign-in, as browsers send them without credentials; they reach
    Chainlit's CORS middleware, which answers only listed origins. OAuth callbacks are exempt from the
    origin check: the provider posts them from its own site."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(HTTPConnection(scope), scope.get("method", "GET"), scope["path"])
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await WebSocketClose(code=1008)(scope, receive, send)  # before accept: the client sees HTTP 403
        else:
            await refusal(scope, receive, send)

    def refusal(self, conn: HTTPConnection, method: str, path: str) -> Response | None:
        if any(pattern.match(path) for pattern in _CLOSED):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        origin = conn.headers.get("origin")
        if origin and not path.startswith("/auth/oauth/"):
            if not origin_allowed(origin, request_host(conn.headers), self.allowed_origins):
                detail = "cross-origin request refused: this origin is not in TUNEDESK_ALLOWED_ORIGINS"
                return JSONResponse({"detail": detail}, status_code=403)
        if method == "OPTIONS" or is_open(method, path) or signed_in(conn):
            return None
        if method in ("GET", "HEAD") and "text/html" in conn.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=302)
        detail = "sign in, or send 'Authorization: Bearer <token>' (tunedesk users token NAME)"
        return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def content_security_policy() -> str:
    """A policy Chainlit's UI works under: its inline scripts by hash, its bundle and custom elements, no
    foreign scripts, connections, images or frames. Fonts and KaTeX's stylesheet come from their CDNs."""
    from chainlit.server import get_html_template

    inline = re.findall(r"<script>(.*?)</script>", get_html_template(""), flags=re.S)
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in inline]
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'unsafe-eval' {' '.join(hashes)}",
            "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com https://cdn.jsdelivr.net",
            "font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net",
            "img-src 'self' data: blob:",
            "media-src 'self' data: blob:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """The hardening headers on every HTTP response; HSTS over https; ``no-store`` but on static files."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.headers = {
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
            "Cross-Origin-Opener-Policy": "same-origin",
        }

    def for_request(self, scope: Scope) -> dict[str, str]:
        """The headers a response to ``scope`` gets."""
        headers = dict(self.headers)
        forwarded = HTTPConnection(scope).headers.get("x-forwarded-proto", "")
        if scope.get("scheme") == "https" or forwarded.split(",")[0].strip() == "https":
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        path = scope["path"]
        if not (path.startswith(STATIC_PREFIXES) or path in STATIC_PATHS):
            headers["Cache-Control"] = "no-store"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.for_request(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- Chainlit's routes that need a guard: declared before the mount, so they win ---------------------------

from chainlit.data import get_data_layer  # noqa: E402  (chainlit: after the environment above is set)
from chainlit.server import delete_feedback as chainlit_delete_feedback  # noqa: E402
from chainlit.server import update_feedback as chainlit_update_feedback  # noqa: E402
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest  # noqa: E402

from chatbot.datalayer import TunedeskDataLayer  # noqa: E402


def _records_of_threads() -> TunedeskDataLayer:
    layer = get_data_layer()
    if not isinstance(layer, TunedeskDataLayer):
        raise HTTPException(400, "chat history is not enabled")
    return layer


def _own(who: users.Signed, owner: str | None) -> None:
    """Another user's thread is "not found", exactly like a missing one: no way to learn it exists."""
    if owner is None or owner != who.name:
        raise HTTPException(404, "thread not found")


@app.get("/project/thread/{thread_id}", include_in_schema=False)
async def own_thread(thread_id: str, who: Caller) -> JSONResponse:
    layer = _records_of_threads()
    _own(who, await layer.thread_owner(thread_id))
    return JSONResponse(await layer.get_thread(thread_id))


@app.get("/project/thread/{thread_id}/element/{element_id}", include_in_schema=False)
async def own_element(thread_id: str, element_id: str, who: Caller) -> JSONResponse:
    layer = _records_of_threads()
    _own(who, await layer.thread_owner(thread_id))
    return JSONResponse(await layer.get_element(thread_id, element_id))


@app.put("/feedback", include_in_schema=False)
async def own_feedback(request: Request, update: UpdateFeedbackRequest, who: Caller) -> Response:
    """Thumbs only on the caller's own messages (Chainlit checks nothing here); the thread is the message's."""
    layer = _records_of_threads()
    thread_id, owner = await layer.step_owner(update.feedback.forId)
    _own(who, owner)
    if update.feedback.id:  # an update must be of the caller's own feedback, or of none yet
        existing = await layer.feedback_owner(update.feedback.id)
        if existing is not None and existing != who.name:
            raise HTTPException(404, "thread not found")
    update.feedback.threadId = thread_id
    return await chainlit_update_feedback(request, update, who)  # type: ignore[arg-type]


@app.delete("/feedback", include_in_schema=False)
async def own_feedback_deleted(request: Request, payload: DeleteFeedbackRequest, who: Caller) -> Response:
    _own(who, await _records_of_threads().feedback_owner(payload.feedbackId))
    return await chainlit_delete_feedback(request, payload, who)  # type: ignore[arg-type]


from chainlit.config import config as chainlit_config  # noqa: E402
from chainlit.config import config_file as chainlit_config_file  # noqa: E402
from chainlit.utils import mount_chainlit  # noqa: E402

mount_chainlit(app=app, target=str(ROOT / "chatbot" / "app.py"), path="/")

if "*" in chainlit_config.project.allow_origins:
    raise ConfigError(
        f"{chainlit_config_file}: allow_origins = ['*'] lets any site act with a signed-in agent's "
        "session; list the origins there or in TUNEDESK_ALLOWED_ORIGINS"
    )
ALLOWED_ORIGINS = frozenset([*chainlit_config.project.allow_origins, *settings.allowed_origins])
# Chainlit's CORS middleware (around its socket.io too, whose own CORS handling Chainlit turns off) holds this list
chainlit_config.project.allow_origins[:] = sorted(ALLOWED_ORIGINS)
app.add_middleware(AccessGate, allowed_origins=ALLOWED_ORIGINS)
POLICY = content_security_policy()  # reads and hashes Chainlit's page template: once
app.add_middleware(SecurityHeaders, policy=POLICY)  # outermost: refusals get the headers too
HARDENING = SecurityHeaders(app, POLICY)  # for the 500 handler, which Starlette runs outside every middleware


async def server_error(request: Request, exc: Exception) -> Response:
    """An unhandled error: Starlette answers it outside every middleware, so the hardening headers are set here.
    The body says nothing about the error (the log has the traceback; Starlette re-raises it to the server)."""
    return PlainTextResponse("Internal Server Error", status_code=500, headers=HARDENING.for_request(request.scope))


app.add_exception_handler(Exception, server_error)
