"""A line in front of each backend: a bounded number of answers at once, a bounded line, and each waiting
customer told where they stand.

Decisions:
- Per backend and process: a local engine answers ``max_concurrent_answers`` at once (more only slow every
  answer down: the CPU is shared), and the line holds at most ``max_waiting``. A customer beyond that is
  told at once that the service is busy, instead of waiting for a timeout (backpressure).
- First come, first served. A customer who leaves the line (closes the chat, presses stop) frees the place.
- Waiting customers are told their place ("you are number k") when they join and whenever it changes.
- In-process and asyncio only: several processes (``TUNEDESK_WORKERS``) each have their own lines, like
  their own model.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from tunedesk.errors import TunedeskError

Notify = Callable[[int], Awaitable[None]]


class LineFull(TunedeskError):
    """Too many customers are already waiting for this backend."""


class Line:
    """At most ``limit`` holders at once; at most ``max_waiting`` waiting, in arrival order."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        if limit < 1:
            raise ValueError("a line needs room for at least one answer at a time")
        self.limit = limit
        self.max_waiting = max_waiting
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._moved = asyncio.Event()  # set, and replaced, whenever the line moves

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def turn(self, notify: Notify | None = None) -> AsyncIterator[None]:
        """Hold one of the ``limit`` places for the ``async with`` body, after waiting in line if needed.

        ``notify(k)`` is awaited with the caller's place in line (1 = next) when it has to wait, and again
        whenever the place changes. Raises ``LineFull`` when the line is full."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
        else:
            await self._wait(notify)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, notify: Notify | None) -> None:
        if len(self._waiting) >= self.max_waiting:
            raise LineFull(
                f"{len(self._waiting)} customers are already waiting for an answer; please try again in a minute"
            )
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        told = 0
        try:
            while not ticket.done():
                moved = self._moved  # taken first: a move while ``notify`` runs is not missed
                place = self._waiting.index(ticket) + 1
                if notify is not None and place != told:
                    told = place
                    await notify(place)
                if not ticket.done():
                    await moved.wait()
            await ticket  # the place was handed over by _release
        except BaseException:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
                self._announce()
            elif ticket.done() and not ticket.cancelled():
                self._release()  # handed a place while leaving: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)  # the place goes straight to the next in line
                self._announce()
                return
        self.active -= 1

    def _announce(self) -> None:
        """Wake every waiter to look at its place again."""
        self._moved.set()
        self._moved = asyncio.Event()


_lines: dict[str, Line] = {}


def line_for(backend: str, limit: int, max_waiting: int) -> Line:
    """This process's line for ``backend`` (created on first use, with the limits given then)."""
    line = _lines.get(backend)
    if line is None:
        line = _lines[backend] = Line(limit, max_waiting)
    return line
