"""Chainlit handlers, and nothing else: they adapt UI events to ``chatbot.conversation.respond``.

Started by ``tunedesk chat`` (or ``make chat``), which prepares the model first and passes the
backend and model through ``TUNEDESK_*`` variables. The backend loads once per process, in a worker
thread, and every chat session shares it. A failure becomes a message in the chat, not a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import chainlit as cl

from chatbot.backends import Backend, load_backend, params_from
from chatbot.conversation import Message, respond
from tunedesk.errors import ContentFilteredError, TunedeskError
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


async def backend() -> Backend:
    current = settings()
    return await asyncio.to_thread(load_backend, current.backend, current)


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    return [cl.Starter(label=label, message=message) for label, message in STARTERS]


@cl.on_chat_start
async def start() -> None:
    cl.user_session.set("history", [])


@cl.on_message
async def on_message(message: cl.Message) -> None:
    history: list[Message] = cl.user_session.get("history") or []
    turn: list[Message] = [*history, {"role": "user", "content": message.content}]
    answer = cl.Message(content="")
    try:
        chat_backend = await backend()
        async for piece in respond(chat_backend, turn, params_from(settings()), settings().system_prompt):
            await answer.stream_token(piece)
    except ContentFilteredError as exc:  # the polite refusal replaces whatever had streamed
        answer.content = str(exc)
        await answer.send()
        return
    except TunedeskError as exc:
        log.warning("answer failed: %s", exc)
        answer.content = f"Sorry, I could not answer that: {exc}"
        await answer.send()
        return
    except Exception:
        log.exception("answer failed")
        answer.content = "Sorry, something went wrong while generating the answer. Please try again."
        await answer.send()
        return
    await answer.send()
    cl.user_session.set("history", [*turn, {"role": "assistant", "content": answer.content}])
