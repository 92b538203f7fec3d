"""The thread actor's ``Outbox`` port for Telegram: notices, streamed answers, reactions.

Notices are queued to the chat's sender actor (ahead of every answer's update) and return at
once. A streamed answer is an ``Answer`` its chat's sender shows (``gateway.telegram.answer``
has the rules): ``append`` never waits for Telegram, so the run's stall watchdog measures the
agent alone; ``finish`` and ``abort`` wait until the final text is shown, or raise the
``SendFailedError`` that stopped it, so an answer that did not arrive is never counted as
answered. A stream that stops waiting (the run's finalize timeout) withdraws its answer.
An answer opened with a run id carries the Stop button while it streams (or, in a private
chat streaming drafts, is the chat's draft). ``react`` queues a reaction with the chat's
sender and returns at once (``gateway.telegram.reactions`` has the rules).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import anyio
import attrs
from loguru import logger

from actors import ActorError, ActorRef, MailboxFullError, Supervisor
from actors.thread.records import ThreadKey
from gateway.exceptions import SendFailedError
from gateway.ops.metrics import Metrics
from gateway.telegram.answer import Answer, AnswerReady, Ending
from gateway.telegram.reactions import React
from gateway.telegram.sender_messages import Notice, Typing

STOP_GRACE = 2.0
"""At shutdown, how long a stream still waits for its answer to be shown."""


@attrs.define(eq=False)
class TelegramReplyStream:
    """One answer, growing in place (implements the thread actor's ``ReplyStream``)."""

    _answer: Answer
    _sender: ActorRef[int]
    _metrics: Metrics
    _stopping: anyio.Event
    _opened: float = attrs.field(factory=anyio.current_time, init=False)
    _first_text: bool = attrs.field(default=False, init=False)

    async def append(self, text: str) -> None:
        if text and not self._first_text:
            self._first_text = True
            self._metrics.first_token.observe(anyio.current_time() - self._opened)
        if text and self._answer.publish(text):
            self._tell_nowait()

    async def finish(self) -> None:
        await self._end(Ending.FINISHED)
        self._metrics.run_latency.observe(anyio.current_time() - self._opened)

    async def abort(self) -> None:
        await self._end(Ending.ABORTED)

    def keepalive(self) -> None:
        """Show "typing…" again while nothing of the answer is visible yet."""
        if not self._answer.visible:
            self._sender.send_nowait(Typing(self._answer.key))

    def _tell_nowait(self) -> None:
        try:
            self._sender.send_nowait(AnswerReady(self._answer))
        except (MailboxFullError, ActorError) as error:
            # Told again with the next chunk, or when the answer ends (which waits).
            self._answer.unqueue()
            logger.debug("answer {id}: sender not told yet: {e!r}", id=self._answer.id, e=error)

    async def _end(self, ending: Ending) -> None:
        answer = self._answer
        try:
            await self._outcome(tell=answer.end(ending))
        finally:
            if not answer.settled:  # cancelled (the finalize timeout), or the gateway stops
                self._withdraw()

    async def _outcome(self, *, tell: bool) -> None:
        """Tell the sender (if ``tell``) and wait for the answer's outcome; at shutdown, for
        ``STOP_GRACE`` more at most."""
        answer = self._answer
        failed: SendFailedError | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._give_up_when_stopping, tasks.cancel_scope)
            try:
                if tell:
                    await self._sender.send(AnswerReady(answer))
                await answer.outcome()
            except SendFailedError as error:
                failed = error
            except ActorError as error:  # the chat's sender failed or is gone
                reason = f"the chat's sender is unavailable ({type(error).__name__})"
                failed = SendFailedError(
                    answer.key, reason, delivered=answer.message_ids, outcome_unknown=False
                )
            tasks.cancel_scope.cancel()
        if failed is not None:
            raise failed
        if not self._answer.settled:
            answer = self._answer
            shown = answer.message_ids
            raise SendFailedError(
                answer.key, "the gateway stopped", delivered=shown, outcome_unknown=True
            )

    async def _give_up_when_stopping(self, scope: anyio.CancelScope) -> None:
        await self._stopping.wait()
        await anyio.sleep(STOP_GRACE)
        scope.cancel()

    def _withdraw(self) -> None:
        if not self._answer.withdraw():
            return
        try:
            self._sender.send_nowait(AnswerReady(self._answer))
        except (MailboxFullError, ActorError) as error:
            logger.warning("answer {id}: not withdrawn: {e!r}", id=self._answer.id, e=error)


@attrs.define(eq=False)
class TelegramOutbox:
    """Implements the thread actor's ``Outbox`` port over the chat sender actors."""

    _senders: Supervisor[int]
    _metrics: Metrics
    _ids: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _stopping: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    def stop_waiting(self) -> None:
        """The gateway stops: streams wait ``STOP_GRACE`` more for their answers, then give up
        (withdraw) so the threads can drain."""
        self._stopping.set()

    async def notice(
        self, key: ThreadKey, text: str, *, reply_to: int | None = None, fenced: bool = True
    ) -> None:
        """Send ``text`` to ``key``; ``fenced=False`` for an intake's reply (``Notice``)."""
        await self._senders.ref_for(key.chat_id).send(Notice(key, text, reply_to, fenced))

    def open_stream(
        self, key: ThreadKey, *, reply_to: int | None = None, run_id: int | None = None
    ) -> TelegramReplyStream:
        answer = Answer(next(self._ids), key, reply_to, run_id)
        sender = self._senders.ref_for(key.chat_id)
        return TelegramReplyStream(answer, sender, self._metrics, self._stopping)

    def react(self, key: ThreadKey, message_id: int, emoji: str | None) -> None:
        try:
            self._senders.ref_for(key.chat_id).send_nowait(React(key, message_id, emoji))
        except ActorError as error:  # a full mailbox, a failed or stopped sender: cosmetic
            logger.warning(
                "reaction {e} on {id} in {key} not sent: {err!r}",
                e=emoji, id=message_id, key=key, err=error,
            )  # fmt: skip
