"""The thread actor's ``Outbox`` port for Telegram: notices and streamed answers.

Notices are queued to the chat's sender actor and return at once. A streamed answer sends its
first message as soon as there is text, then edits it at most about once a second as the text
grows, and continues in a new message past 4096 characters.
"""

from __future__ import annotations

import contextlib
import math

import anyio
import attrs

from actors import ActorRef, Supervisor
from actors.thread.records import ThreadKey
from gateway.exceptions import EditFailedError, SendFailedError
from gateway.ops.metrics import Metrics
from gateway.telegram.chat_sender import LIMIT, Edit, Notice, Send, Sent, Typing, split_point

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
        # Failures are logged by the sender; the stream goes on with what it has.
        if self._message_id is None:
            try:
                sent = await self._sender.ask(Send(self._key, text, self._reply_to), timeout=None)
            except SendFailedError:
                self._message_id = None
            else:
                assert isinstance(sent, Sent)
                self._message_id = sent.last
            self._reply_to = None
        elif text != self._shown:
            with contextlib.suppress(EditFailedError):
                await self._sender.ask(Edit(self._key, self._message_id, text), timeout=None)
        self._shown = text


@attrs.define(eq=False)
class TelegramOutbox:
    """Implements the thread actor's ``Outbox`` port over the chat sender actors."""

    _senders: Supervisor[int]
    _metrics: Metrics
    _edit_interval: float = 1.0

    async def notice(self, key: ThreadKey, text: str, *, reply_to: int | None = None) -> None:
        await self._senders.ref_for(key.chat_id).send(Notice(key, text, reply_to))

    def open_stream(self, key: ThreadKey, *, reply_to: int | None = None) -> TelegramReplyStream:
        sender = self._senders.ref_for(key.chat_id)
        return TelegramReplyStream(key, reply_to, sender, self._metrics, self._edit_interval)
