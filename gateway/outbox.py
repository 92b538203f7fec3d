"""The thread actor's ``Outbox`` port for Telegram: notices and streamed answers.

Notices are queued to the chat's sender actor and return at once. A streamed answer sends its
first message as soon as there is text, then edits it at most about once a second as the text
grows, and continues in a new message past 4096 characters.
"""

from __future__ import annotations

import math

import anyio
import attrs

from actors.ref import ActorRef
from actors.supervisor import Supervisor
from actors.thread_records import ThreadKey
from gateway.chat_sender import LIMIT, Edit, Send, Typing, split_point
from gateway.metrics import Metrics

CUT_OFF = " …\n[answer cut off]"


@attrs.define(eq=False)
class TelegramReplyStream:
    """One answer, growing in place."""

    _key: ThreadKey
    _reply_to: int | None
    _sender: ActorRef[int]
    _metrics: Metrics
    _interval: float = 1.0
    _text: str = attrs.field(default="", init=False)
    _committed: int = attrs.field(default=0, init=False)
    _message_id: int | None = attrs.field(default=None, init=False)
    _shown: str = attrs.field(default="", init=False)
    _last_flush: float = attrs.field(default=-math.inf, init=False)
    _opened: float = attrs.field(factory=anyio.current_time, init=False)

    async def append(self, text: str) -> None:
        self._text += text
        if anyio.current_time() - self._last_flush >= self._interval:
            await self._flush("")

    async def finish(self) -> None:
        await self._flush("")
        if not self._text.strip():
            await self._show("(the agent gave an empty answer)")
        self._metrics.run_latency.observe(anyio.current_time() - self._opened)

    async def abort(self) -> None:
        if self._text.strip():
            await self._flush(CUT_OFF)

    def keepalive(self) -> None:
        """Show "typing…" again while nothing of the answer is visible yet."""
        if self._message_id is None:
            self._sender.send_nowait(Typing(self._key))

    async def _flush(self, suffix: str) -> None:
        self._last_flush = anyio.current_time()
        pending = self._text[self._committed :]
        while len(pending + suffix) > LIMIT:
            cut = (
                split_point(pending, LIMIT - len(CUT_OFF)) if len(pending) > LIMIT else len(pending)
            )
            if cut >= len(pending):
                break
            await self._show(pending[:cut].rstrip())
            self._committed += cut
            pending = pending[cut:]
            self._message_id, self._shown = None, ""
        if (pending + suffix).strip():
            await self._show((pending + suffix)[:LIMIT])

    async def _show(self, text: str) -> None:
        # No deadline of its own: the run's watchdog bounds an append, the thread's
        # finalize timeout a finish or abort.
        if self._message_id is None:
            answer = await self._sender.ask(Send(self._key, text, self._reply_to), timeout=None)
            self._message_id = answer if isinstance(answer, int) else None
            self._reply_to = None
        elif text != self._shown:
            await self._sender.ask(Edit(self._key, self._message_id, text), timeout=None)
        self._shown = text


@attrs.define(eq=False)
class TelegramOutbox:
    """Implements the thread actor's ``Outbox`` port over the chat sender actors."""

    _senders: Supervisor[int]
    _metrics: Metrics
    _edit_interval: float = 1.0

    async def notice(self, key: ThreadKey, text: str, *, reply_to: int | None = None) -> None:
        await self._senders.ref_for(key.chat_id).send(Send(key, text, reply_to))

    def open_stream(self, key: ThreadKey, *, reply_to: int | None = None) -> TelegramReplyStream:
        sender = self._senders.ref_for(key.chat_id)
        return TelegramReplyStream(key, reply_to, sender, self._metrics, self._edit_interval)
