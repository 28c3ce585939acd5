"""The chat service: a FastAPI app with Chainlit mounted at ``/``, plus health, metrics and the ratings API.

Decisions:
- This module is the process (``tunedesk chat`` runs it under uvicorn). Start-up work lives in this app's
  lifespan, because Chainlit's ``on_app_startup`` never runs when Chainlit is mounted.
- Routes declared here win over Chainlit's catch-all; everything else is Chainlit's, which requires a
  signed-in session for all but its login page and static assets.
- ``/healthz`` is open (load balancers); ``/metrics`` and ``/api/*`` need a bearer API token
  (``tunedesk users token``) or a signed-in browser session; exporting ratings and the ``/admin`` page
  need the admin role.
- Telemetry (``chatbot.telemetry``) is set up here, once, before Chainlit loads the app.
- The environment Chainlit reads at import (app root, auth secret) is set before it is imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from chatbot import telemetry
from tunedesk import users
from tunedesk.errors import validation_problems
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


def caller(request: Request) -> users.Signed:
    """The API token's user, or the browser session's; 401 otherwise."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        signed = users.check_token(settings, header[7:].strip())
        if signed:
            return signed
    else:
        from chainlit.auth.cookie import get_token_from_cookies
        from chainlit.auth.jwt import decode_jwt

        token = get_token_from_cookies(dict(request.cookies))
        if token:
            try:
                user = decode_jwt(token)
            except Exception:
                user = None
            if user is not None:  # the role as it is now, not as it was at sign-in (a demotion takes effect)
                return users.Signed(name=user.identifier, role=users.current_role(settings, user.identifier))
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
    except store.RatingError as exc:
        raise HTTPException(404, str(exc)) from None
    telemetry.count_rating(row)
    return {"id": row["id"], "supersedes": row["supersedes"]}


from chainlit.utils import mount_chainlit  # noqa: E402  (after the environment above is set)

mount_chainlit(app=app, target=str(ROOT / "chatbot" / "app.py"), path="/")
