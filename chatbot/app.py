"""Chainlit handlers, and nothing else: they adapt UI events to ``chatbot.conversation`` and ``chatbot.store``.

Served by ``chatbot.server`` (``tunedesk chat``, ``make chat``), which prepares the model, migrates the
database and passes the backend and model through ``TUNEDESK_*`` variables. The backend loads once per
process, in a worker thread, and every chat session shares it. A failure becomes a message in the chat,
not a traceback.

Every answer is recorded (``chat_answers``) with the backend, model, timings and the policy sections it was
given, before its rating widget appears, so a rating always has an answer to point at. The widget
(``public/elements/Rating.jsx``) posts through the ``rate`` action, whose reply comes only after the rating
is committed; the end-of-chat survey (``Survey.jsx``, ``survey`` action) works the same way.

A conversation ends when the customer presses "End chat" under the latest answer, says only thanks or
goodbye, or is handed over to a person (asked for, or the bot unsure: ``chatbot.guardrails``).

Guardrails (``chatbot.guardrails``), in the Support profile:
- Every message is checked before the model sees it, which gets it as written for this one turn. Everywhere
  else it is masked (PII): in the chat, the session's history, ``chat_answers`` and the thread Chainlit
  stores (``chatbot.datalayer`` masks those writes). A refused message gets the polite refusal, recorded like
  an answer (backend ``guardrails``, error ``guardrails:<categories>``) and not rateable; an escalated one
  (asking for a person, or ``TUNEDESK_GUARDRAILS_ESCALATE``) hands over with reason ``user_request`` or
  ``guardrail``. Logs name the categories, never the text.
- Every finished answer is checked before it is recorded and rated: a refused one (a leaked system prompt,
  abuse, someone else's data) is replaced by the refusal, error ``guardrails``; an unsure one stays and is
  recorded as a ``bot_unsure`` escalation. ``chat_answers`` keeps answers masked; the chat shows them as
  written (a shop's own phone number is not a customer's, and another customer's data was refused).
- The task profiles (Summarize, Sentiment, Caption) mask what they record but refuse nothing: what they get
  is a document or posts to process, not instructions to the bot, and the support checks refused 19 of the 64
  sample legal documents (privacy and harmful-request wording in ordinary contracts and cases).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.auth import get_configured_oauth_providers
from chainlit.input_widget import InputWidget, Select, Slider, TextInput
from chainlit.types import ThreadDict
from opentelemetry.trace import StatusCode
from pydantic import ValidationError
from sqlalchemy import Engine

from chatbot import admission, grounding, guardrails, review, store, tasks
from chatbot.backends import BACKENDS, Backend, GenerationParams, load_backend, params_from
from chatbot.conversation import Message, respond
from chatbot.telemetry import ANSWER_SECONDS, ANSWERS, ERRORS, TOKENS, TTFT_SECONDS, count_outcome, count_rating, tracer
from tunedesk import users
from tunedesk.errors import ContentFilteredError, TunedeskError, validation_problems
from tunedesk.settings import Settings, load_settings

log = logging.getLogger("tunedesk.chat")

STARTERS = [
    ("Return a product", "How do I return a product I bought last week?"),
    ("Where is my order?", "My order has not arrived yet. What can I do?"),
    ("Charged twice", "I was charged twice for the same order."),
    ("Change address", "Can I change the delivery address of an order I already placed?"),
]


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def guard() -> guardrails.Guardrails:
    """The guardrails as configured (``TUNEDESK_GUARDRAILS*``, ``TUNEDESK_CONTENT_SAFETY_*``), built once."""
    return guardrails.Guardrails.from_settings(settings())


@functools.cache
def records() -> Engine:
    from tunedesk.db import engine

    return engine(settings())


def is_admin() -> bool:
    """The signed-in user's role as the users file says now (a demotion takes effect at once)."""
    return users.current_role(settings(), _rater()) == "admin"


def chosen_model() -> tuple[str, str]:
    """This conversation's backend and model: an admin's choice in the chat settings, else the server's."""
    current = settings()
    chosen = cl.user_session.get("chat_settings") or {}
    if not chosen.get("backend") or not cl.user_session.get("admin"):
        return current.backend, current.model
    return str(chosen["backend"]), str(chosen.get("model") or current.model).strip() or current.model


BASE_MODEL = "none: the base model"


def adapter_names() -> list[str]:
    """The LoRA adapters the onnx backend switches between (``TUNEDESK_ADAPTERS``); unusable ones are logged."""
    from chatbot.backends.onnx import find_adapter

    names = []
    for entry in settings().adapters:
        try:
            names.append(find_adapter(entry).name)
        except TunedeskError as exc:
            log.warning("adapter %s is not offered: %s", entry, exc)
    return names


def chosen_adapter() -> str | None:
    """This conversation's LoRA adapter: an admin's choice in the chat settings, for the onnx backend only."""
    chosen = cl.user_session.get("chat_settings") or {}
    adapter = chosen.get("adapter")
    if not cl.user_session.get("admin") or adapter in (None, "", BASE_MODEL) or chosen_model()[0] != "onnx":
        return None
    return str(adapter)


async def backend(name: str, model: str) -> Backend:
    """The backend, loaded once per process and configuration (in a worker thread) and shared by every chat."""
    current = settings()
    if (name, model) != (current.backend, current.model):
        current = current.model_copy(update={"backend": name, "model": model})
    return await asyncio.to_thread(load_backend, name, current)


def policy_hits(history: list[Message]) -> list[grounding.Hit] | None:
    """The policy passages for the customer's latest message; None when grounding is off."""
    current = settings()
    if not current.grounding:
        return None
    index = grounding.load_index(current.policy or grounding.SAMPLE_POLICY)
    asked = [turn["content"] for turn in history if turn["role"] == "user"]
    return index.search(asked, current.policy_top_k, current.policy_min_score)


@cl.data_layer
def data_layer() -> Any:
    from chatbot.datalayer import TunedeskDataLayer
    from tunedesk.db import async_url

    return TunedeskDataLayer(async_url(settings()), records())


@cl.password_auth_callback
async def sign_in(name: str, password: str) -> cl.User | None:
    signed = await asyncio.to_thread(users.check_password, settings(), name, password)
    if signed is None:
        log.info("sign-in refused for %r", name)
        return None
    return cl.User(identifier=signed.name, metadata={"role": signed.role, "provider": "credentials"})


if get_configured_oauth_providers():  # Chainlit refuses an OAuth callback when no provider is configured

    @cl.oauth_callback
    async def oauth_sign_in(
        provider_id: str, token: str, raw_user_data: dict[str, str], default_user: cl.User, id_token: str | None = None
    ) -> cl.User | None:
        """Entra ID (``OAUTH_AZURE_AD_*``) users are agents unless the users file makes them admins."""
        role = users.current_role(settings(), default_user.identifier)
        return cl.User(identifier=default_user.identifier, metadata={"role": role, "provider": provider_id})


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    return [cl.Starter(label=label, message=message) for label, message in STARTERS]


@cl.set_chat_profiles
async def profiles(user: cl.User | None = None, language: str | None = None) -> list[cl.ChatProfile]:
    return [
        cl.ChatProfile(
            name="Support", markdown_description="Chat with the support bot and rate its answers.", default=True
        ),
        cl.ChatProfile(
            name="Review",
            markdown_description="Rate a batch of answers one by one, without knowing which model wrote them.",
        ),
        *(
            cl.ChatProfile(
                name=p.name, markdown_description=p.description, config_overrides=_uploads() if p.uploads else None
            )
            for p in tasks.PROFILES.values()
        ),
    ]


def _uploads() -> Any:
    """File upload for a profile that takes images; elsewhere it stays off (.chainlit/config.toml)."""
    from chainlit.config import ChainlitConfigOverrides, FeaturesSettings, SpontaneousFileUploadFeature

    upload = SpontaneousFileUploadFeature(
        enabled=True, accept=tasks.IMAGE_TYPES, max_files=1, max_size_mb=tasks.MAX_UPLOAD_MB
    )
    return ChainlitConfigOverrides(features=FeaturesSettings(spontaneous_file_upload=upload))


def task_profile() -> tasks.TaskProfile | None:
    return tasks.PROFILES.get(cl.user_session.get("chat_profile") or "")


def reviewing() -> bool:
    return cl.user_session.get("chat_profile") == "Review"


async def send_chat_settings() -> None:
    """Per-conversation settings (the gear by the composer), starting from the server's.

    Admins also choose the backend and model, to try a new fine-tune before it goes to everyone."""
    current = settings()
    admin = await asyncio.to_thread(is_admin)
    cl.user_session.set("admin", admin)
    widgets: list[InputWidget] = []
    if admin:
        choices = [current.backend, *(name for name in BACKENDS if name != current.backend)]
        widgets += [
            Select(id="backend", label="Backend (admins)", values=choices, initial_value=current.backend),
            TextInput(
                id="model",
                label="Model: registry name, run directory or hub id (admins)",
                initial=current.model,
            ),
        ]
        if current.adapters:
            names = await asyncio.to_thread(adapter_names)
            widgets.append(
                Select(
                    id="adapter",
                    label="LoRA adapter, onnx backend (admins)",
                    values=[BASE_MODEL, *names],
                    initial_value=BASE_MODEL,
                )
            )
    widgets += [
        Slider(id="temperature", label="Temperature (0 = greedy)", initial=current.temperature, max=2, step=0.1),
        Slider(
            id="max_new_tokens",
            label="Longest answer (tokens)",
            initial=current.max_new_tokens,
            min=16,
            max=max(1024, current.max_new_tokens),
            step=16,
        ),
    ]
    await cl.ChatSettings(widgets).send()


def generation_params() -> GenerationParams:
    """The configured parameters with this conversation's chat settings on top (Chainlit keeps them in the session)."""
    params = params_from(settings())
    chosen = cl.user_session.get("chat_settings") or {}
    return GenerationParams.model_validate(
        params.model_dump()
        | {
            "temperature": float(chosen.get("temperature", params.temperature)),
            "max_new_tokens": int(chosen.get("max_new_tokens", params.max_new_tokens)),
            "adapter": chosen_adapter(),
        }
    )


@cl.on_chat_start
async def start() -> None:
    cl.user_session.set("history", [])
    if reviewing():
        await show_next_review()
    elif (profile := task_profile()) is not None:
        await cl.Message(content=profile.greeting).send()
    else:
        await send_chat_settings()


async def show_next_review() -> None:
    """Send the agent's next review item with its rating widget, or say there is nothing left."""
    rater = _rater()
    batch = cl.user_session.get("review_batch") or await asyncio.to_thread(review.open_batch, records(), rater)
    if batch is None:
        await cl.Message(
            content="Nothing to review right now. An admin adds a batch with `tunedesk review add`."
        ).send()
        return
    cl.user_session.set("review_batch", batch)
    step = await asyncio.to_thread(review.next_item, records(), batch, rater)
    if step.item is None:
        await cl.Message(content=f"Batch **{batch}** is done: you rated {step.done} of {step.total}. Thank you!").send()
        following = await asyncio.to_thread(review.open_batch, records(), rater)
        cl.user_session.set("review_batch", following)
        if following:
            await show_next_review()
        return
    item = step.item
    shown = [f"**{step.done + 1} of {step.total}** · batch {batch}", ""]
    for turn in [*item.context, {"role": "user", "content": item.prompt}]:
        who = "Customer" if turn["role"] == "user" else "Support"
        shown.append(f"**{who}:** {turn['content']}")
        shown.append("")
    shown += ["**Answer to rate:**", "", *("> " + line for line in item.answer.splitlines())]
    message = cl.Message(content="\n".join(shown))
    await message.send()
    await rating_widget(item.id, for_id=message.id).send(for_id=message.id)


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    """Rebuild the conversation the backend sees from the stored thread."""
    history: list[Message] = []
    for step in sorted(thread["steps"], key=lambda s: s.get("createdAt") or ""):
        if step.get("type") == "user_message":
            history.append({"role": "user", "content": step.get("output") or ""})
        elif step.get("type") == "assistant_message" and history and history[-1]["role"] == "user":
            history.append({"role": "assistant", "content": step.get("output") or ""})
    cl.user_session.set("history", history)
    await send_chat_settings()


def _rater() -> str:
    user = cl.user_session.get("user")
    return user.identifier if user else "anonymous"


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Every message, whatever happens to it, is shown with its PII masked (``chatbot.datalayer`` stores it masked);
    ``reply`` gets it as written."""
    asked, masked = message.content, guardrails.mask(message.content)
    if masked != asked:
        message.content = masked
        await message.update()
    await reply(message, asked)


async def reply(message: cl.Message, asked: str) -> None:
    """Route one message (``asked``: as written) to the review queue, a task profile or the support bot."""
    if reviewing():
        await cl.Message(content="This is the review queue: rate the answer above. Switch to Support to chat.").send()
        return
    profile = task_profile()
    limit = (profile.max_chars if profile else None) or settings().max_message_chars
    if len(asked) > limit:
        await cl.Message(content=too_long(len(asked), limit)).send()
        return
    if profile is not None:
        await answer_task(profile, message, asked)
        return
    verdict = await guard().check_input(asked)
    if verdict.action == "escalate":
        log.info("handed over by the guardrails: %s", ", ".join(verdict.categories))  # categories, never the text
        await hand_over(verdict.reason, verdict.message or guardrails.ESCALATION)
        return
    if verdict.action == "refuse":
        await refuse(verdict)
        return
    history: list[Message] = cl.user_session.get("history") or []
    turn: list[Message] = [*history, {"role": "user", "content": asked}]
    answer = cl.Message(content="")
    current = settings()
    prompt = current.system_prompt
    backend_name, model_name = chosen_model()
    adapter = chosen_adapter()
    served = f"{model_name}+{adapter}" if adapter else model_name  # ratings and evals tell fine-tunes apart
    started, started_ns = time.perf_counter(), time.time_ns()
    stream = Stream(answer, started)
    error: str | None = None
    hits: list[grounding.Hit] | None = None
    try:
        hits = await asyncio.to_thread(policy_hits, turn)
        prompt = current.system_prompt if hits is None else grounding.grounded_prompt(current.system_prompt, hits)
        chat_backend = await backend(backend_name, model_name)
        async with in_line(backend_name):
            async for piece in respond(chat_backend, turn, generation_params(), prompt):
                await stream.add(piece)
            await stream.flush()
    except admission.LineFull as exc:
        error, answer.content = "busy", f"Sorry, we are very busy right now: {exc}."
    except ContentFilteredError as exc:  # the polite refusal replaces whatever had streamed
        error, answer.content = "content_filter", str(exc)
    except TunedeskError as exc:
        log.warning("answer failed: %s", exc)
        error, answer.content = type(exc).__name__, f"Sorry, I could not answer that: {exc}"
    except Exception:
        log.exception("answer failed")
        error = "unexpected"
        answer.content = "Sorry, something went wrong while generating the answer. Please try again."
    checked: guardrails.Verdict | None = None
    if not error:  # before it is stored and rated; a refusal replaces what had streamed
        checked = await guard().check_output(answer.content, current.system_prompt, question=asked, context=prompt)
        if checked.action == "refuse":
            log.warning("answer withheld by the guardrails: %s", ", ".join(checked.categories))
            error, answer.content = "guardrails", checked.message or REFUSED
    sources = grounding.sources(hits or [])
    record = answer_record(
        answer,
        started,
        text=checked.masked if checked is not None and not error else guardrails.mask(answer.content),
        profile=cl.user_session.get("chat_profile"),
        backend=backend_name,
        model=served,
        prompt=verdict.masked,
        error=error,
        ttft_s=stream.first,
        tokens=stream.pieces,
        sources=sources,
    )
    saved = await recorded(record, answer)  # before send: thumbs appear with it
    await move_end_chat(answer)
    await answer.send()
    observe_turn(record, started_ns)
    if error or not saved:
        return
    said: list[Message] = [{"role": "user", "content": verdict.masked}, {"role": "assistant", "content": record.answer}]
    cl.user_session.set("history", [*history, *said])  # masked: Chainlit stores the session with the thread
    if hits is not None:
        sent = cl.CustomElement(name="PolicySources", display="inline", props={"sources": sources})
        await sent.send(for_id=answer.id)
    await rating_widget(answer.id).send(for_id=answer.id)
    if checked is not None and bot_unsure(checked, answer.content):  # its answer stands
        try:
            row = await asyncio.to_thread(store.record_escalation, records(), _thread(), _rater(), "bot_unsure")
            count_outcome(row)
        except store.StoreUnavailable as exc:
            log.warning("escalation (bot unsure) not recorded: %s", exc)
    if guardrails.says_goodbye(asked):
        await ask_survey()


def bot_unsure(checked: guardrails.Verdict, answer: str) -> bool:
    """Whether to record the answer as a ``bot_unsure`` escalation: the guardrails say so or, with their checks off
    (``TUNEDESK_GUARDRAILS=false``), it sounds unsure; recording it is support policy, not a filter."""
    if checked.checked_by == "off":
        return guardrails.sounds_unsure(answer)
    return checked.action == "escalate" and checked.reason == "bot_unsure"


REFUSED = "I'm sorry, I can't help with that. Please ask about your orders, deliveries, returns or payments."


async def refuse(verdict: guardrails.Verdict) -> None:
    """Show the guardrails' polite refusal instead of an answer; recorded (masked) like one, not rateable."""
    started, started_ns = time.perf_counter(), time.time_ns()
    refusal = cl.Message(content=verdict.message or REFUSED)
    record = answer_record(
        refusal,
        started,
        profile=cl.user_session.get("chat_profile"),
        backend="guardrails",
        model=verdict.checked_by,
        prompt=verdict.masked,
        error=refused_as(verdict.categories),
    )
    log.info("message refused by the guardrails: %s", ", ".join(verdict.categories))  # categories, never the text
    await recorded(record, refusal)
    await refusal.send()
    observe_turn(record, started_ns)


def refused_as(categories: tuple[str, ...], limit: int = 64) -> str:
    """``guardrails:<categories>`` as ``chat_answers.error`` holds it (64 characters): whole names, as many as fit."""
    error = "guardrails"
    for number, name in enumerate(categories):
        longer = error + (":" if number == 0 else ",") + name
        if len(longer) > limit:
            break
        error = longer
    return error


STREAM_EVERY_S = 0.04  # at most 25 updates a second per answer


class Stream:
    """An answer's pieces as they stream into the chat. Under load they come faster than anyone reads, and one
    socket.io event per token costs the server more than the token: pieces that arrive within
    ``STREAM_EVERY_S`` of the last event are sent together with the next one. The first is sent at once.
    (A plain class: Chainlit runs this file outside ``sys.modules``, where ``@dataclass`` cannot work.)"""

    def __init__(self, answer: cl.Message, started: float) -> None:
        self.answer, self.started = answer, started
        self.first: float | None = None  # seconds from ``started`` to the first piece
        self.pieces = 0
        self.pending: list[str] = []
        self.sent = 0.0

    async def add(self, piece: str) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now - self.started
        self.pieces += 1
        self.pending.append(piece)
        if now - self.sent >= STREAM_EVERY_S:
            await self.flush()

    async def flush(self) -> None:
        """Send what is pending (at the end of the answer)."""
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.sent = time.perf_counter()
            await self.answer.stream_token(text)


def too_long(length: int, limit: int) -> str:
    return (
        f"Your message is {length:,} characters long; I can read up to {limit:,}. "
        "Please shorten it, or send the most important part first."
    )


@asynccontextmanager
async def in_line(backend_name: str) -> AsyncIterator[None]:
    """Wait for this backend's turn (``chatbot.admission``), telling the customer their place meanwhile."""
    current = settings()
    line = admission.line_for(backend_name, current.max_concurrent_answers, current.max_waiting)
    notice: cl.Message | None = None

    async def tell(place: int) -> None:
        nonlocal notice
        text = f"Many customers are writing to us right now: you are number {place} in line. Your answer starts soon."
        if notice is None:
            notice = cl.Message(content=text)
            await notice.send()
        else:
            notice.content = text
            await notice.update()

    async with line.turn(tell):
        if notice is not None:
            await notice.remove()
        yield


async def answer_task(profile: tasks.TaskProfile, message: cl.Message, asked: str) -> None:
    """A Sentiment, Summarize or Caption turn on ``asked`` (the text as written): streamed, recorded (masked) and
    rateable like a support answer; no input checks (see the module docstring)."""
    uploads = [tasks.Upload(e.name, Path(e.path) if e.path else None) for e in message.elements or []]
    answer = cl.Message(content="")
    current = settings()
    started, started_ns = time.perf_counter(), time.time_ns()
    stream = Stream(answer, started)
    error: str | None = None
    try:
        async for piece in tasks.answer(profile, asked, uploads, current):
            await stream.add(piece)
        await stream.flush()
    except TunedeskError as exc:
        log.warning("%s answer failed: %s", profile.name, exc)
        error, answer.content = type(exc).__name__, f"Sorry, I could not do that: {exc}"
    except Exception:
        log.exception("%s answer failed", profile.name)
        error, answer.content = "unexpected", "Sorry, something went wrong. Please try again."
    record = answer_record(
        answer,
        started,
        profile=profile.name,
        backend=profile.name.lower(),
        model=profile.model(current),
        prompt=guardrails.mask(asked) + "".join(f"\n[attached: {u.name}]" for u in uploads),
        error=error,
        ttft_s=stream.first,
        tokens=stream.pieces,
    )
    saved = await recorded(record, answer)
    await answer.send()
    observe_turn(record, started_ns)
    if not error and saved:
        await rating_widget(answer.id).send(for_id=answer.id)


NOT_RECORDED = (
    "\n\n_Our records are unavailable just now, so this answer was not saved and cannot be rated. "
    "Please try again in a moment._"
)


async def recorded(record: store.Answer, answer: cl.Message) -> bool:
    """Store the answer's row; when the database stays away past the write budget, say so under the answer
    (it is shown, but not rateable: a rating needs the row)."""
    try:
        await asyncio.to_thread(store.record_answer, records(), record)
    except store.StoreUnavailable as exc:
        log.warning("answer %s not recorded: %s", record.message_id, exc)
        answer.content += NOT_RECORDED
        return False
    return True


def answer_record(answer: cl.Message, started: float, text: str | None = None, **fields: Any) -> store.Answer:
    """The row of an answer just streamed: ids, who asked and the total time from the turn's context, the rest
    (profile, backend, model, prompt, error, timings...) as given. ``text``: what to store instead of the answer
    shown (its PII masked); by default the answer shown, masked."""
    run = cl.context.current_run
    return store.Answer(
        message_id=answer.id,
        run_id=run.id if run else None,
        thread_id=cl.context.session.thread_id,
        user=_rater(),
        answer=guardrails.mask(answer.content) if text is None else text,
        total_s=time.perf_counter() - started,
        **fields,
    )


def observe_turn(answer: store.Answer, started_ns: int) -> None:
    """The turn's span and metrics: names, numbers and ids only, never what was said."""
    where = {"backend": answer.backend, "model": answer.model}
    span = tracer.start_span(f"chat {answer.backend}", start_time=started_ns)
    span.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": answer.backend,
            "gen_ai.request.model": answer.model,
            "gen_ai.usage.output_tokens": answer.tokens or 0,
            "tunedesk.thread_id": answer.thread_id or "",
            "tunedesk.message_id": answer.message_id,
            "tunedesk.total_s": answer.total_s or 0.0,
            "tunedesk.policy_sections": [source["section"] for source in answer.sources],
        }
    )
    if answer.ttft_s is not None:
        span.set_attribute("tunedesk.ttft_s", answer.ttft_s)
    ANSWERS.add(1, where)
    if answer.error:
        span.set_attribute("error.type", answer.error)
        span.set_status(StatusCode.ERROR, answer.error)
        ERRORS.add(1, where | {"kind": answer.error})
    else:
        ANSWER_SECONDS.record(answer.total_s or 0.0, where)
        if answer.ttft_s is not None:
            TTFT_SECONDS.record(answer.ttft_s, where)
        TOKENS.add(answer.tokens or 0, where)
    span.end()


def _thread() -> str:
    return str(cl.context.session.thread_id)


async def move_end_chat(answer: cl.Message) -> None:
    """Put the "End chat" button under ``answer`` (about to be sent) and take it from the previous one."""
    previous: cl.Action | None = cl.user_session.get("end_chat_action")
    if previous is not None:
        await previous.remove()
    action = cl.Action(name="end_chat", payload={}, label="End chat", icon="circle-check")
    answer.actions = [action]
    cl.user_session.set("end_chat_action", action)


async def hand_over(reason: store.Escalation, text: str = guardrails.ESCALATION) -> None:
    """Tell the customer a person takes over (``text``: the guardrails' words, caring ones for self-harm), record
    the escalation, and ask the survey."""
    try:
        row = await asyncio.to_thread(store.record_escalation, records(), _thread(), _rater(), reason)
    except store.StoreUnavailable as exc:  # unrecorded, nobody would pick it up: do not promise a colleague
        log.warning("escalation not recorded: %s", exc)
        await cl.Message(content="I could not reach a colleague just now; please ask again in a moment.").send()
        return
    count_outcome(row)
    await cl.Message(content=text).send()
    await ask_survey()


async def ask_survey() -> None:
    if cl.user_session.get("survey_asked"):
        return
    cl.user_session.set("survey_asked", True)
    message = cl.Message(content="Before you go: did we solve your problem?")
    await message.send()
    await form_element("Survey", message.id).send(for_id=message.id)


@cl.action_callback("end_chat")
async def end_chat(action: cl.Action) -> None:
    await action.remove()
    cl.user_session.set("end_chat_action", None)
    await ask_survey()


@cl.action_callback("survey")
async def survey(action: cl.Action) -> dict[str, Any]:
    """Store the end-of-chat survey; the element says "thank you" only when this returns."""
    payload = dict(action.payload or {})
    given = {key: payload[key] for key in ("resolved", "csat", "comment") if payload.get(key) is not None}
    try:
        answers = store.SurveyIn(**given)
        row = await asyncio.to_thread(store.record_survey, records(), _thread(), _rater(), answers)
    except (ValidationError, store.StoreUnavailable) as exc:
        return {"saved": False, "error": _short(exc)}
    count_outcome(row)
    saved = {"resolved": answers.resolved, "csat": answers.csat, "comment": answers.comment}
    if payload.get("elementId") and payload.get("forId"):  # a resumed thread shows what was sent
        await form_element("Survey", payload["forId"], saved, payload["elementId"]).update()
    return {"saved": True, "id": row["id"], "changed": row["supersedes"] is not None}


def rating_widget(
    message_id: str, saved: dict[str, Any] | None = None, element_id: str | None = None, for_id: str | None = None
) -> Any:
    """The 1-5 rating element of answer ``message_id``, shown under message ``for_id`` (default: the answer).

    ``saved``: the rater's current scores, shown again."""
    return form_element("Rating", for_id or message_id, saved, element_id, messageId=message_id)


def form_element(
    name: str, for_id: str, saved: dict[str, Any] | None = None, element_id: str | None = None, **props: Any
) -> Any:
    """A custom element that posts an action (Rating, Survey) under message ``for_id``.

    It knows its own id and message, so the action can update it in place with what was ``saved`` (a
    resumed thread then shows it); ``element_id`` names the element being updated."""
    element = cl.CustomElement(name=name, display="inline", props={}, for_id=for_id)
    if element_id:
        element.id = element_id
    element.props = {**props, "elementId": element.id, "forId": for_id, "saved": saved or {}}
    return element


RATED_FIELDS = ("message_id", *store.SCORES, "correction")


@cl.action_callback("rate")
async def rate(action: cl.Action) -> dict[str, Any]:
    """Store a 1-5 rating from the widget; the widget shows "saved" only when this returns.

    Only the scores and correction come from the page; what was rated comes from the records."""
    payload = dict(action.payload or {})
    element_id, for_id = payload.get("elementId"), payload.get("forId")
    given = {key: payload[key] for key in RATED_FIELDS if payload.get(key) is not None}
    item = None
    if str(given.get("message_id", "")).startswith(review.ITEM_PREFIX):
        item = await asyncio.to_thread(review.get_item, records(), given["message_id"])
        if item is None:
            return {"saved": False, "error": "this review item no longer exists"}
        given.update(prompt=item.prompt, answer=item.answer, backend=item.backend, model=item.model)
    if item is None and given.get("message_id"):  # an agent rates answers of their own conversations only
        thread = await asyncio.to_thread(store.answer_thread, records(), str(given["message_id"]))
        if thread not in (None, _thread()):
            return {"saved": False, "error": "only this conversation's answers can be rated here"}
    try:
        rating = store.RatingIn(kind="scores", **given)
        row = await asyncio.to_thread(store.record_rating, records(), rating, _rater(), "review" if item else "chat")
    except (ValidationError, store.RatingError) as exc:
        return {"saved": False, "error": _short(exc)}
    count_rating(row)
    saved = {key: row[key] for key in (*store.SCORES, "correction")}
    if element_id:  # the stored widget carries the new scores, so a resumed thread shows them
        await rating_widget(rating.message_id, saved, element_id, for_id=for_id).update()
    if item is not None and row["supersedes"] is None:
        await show_next_review()
    return {"saved": True, "id": row["id"], "changed": row["supersedes"] is not None}


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        field, message = validation_problems(exc)[0]
        return f"{field}: {message}" if field else message
    return str(exc)
