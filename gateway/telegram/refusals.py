"""The replies the gateway owes itself: refusals, dead letters, ignored updates, ``/status all``.

Rules:

* A message a thread cannot take (its mailbox is full, it is failed) is refused: the refusal
  is recorded as the message's outcome (``ERROR_REPLIED``, so the start-up replay does not
  deliver it again) and the user is told. A store that cannot record it is a log line; the
  user is told all the same.
* A message the runtime gave up on (a dead letter) is refused the same way, unless its thread
  had accepted it (``ThreadRecord.accepted``: the thread concludes it) or it already has a
  final outcome; one left at shutdown stays unanswered in the inbox and is replayed at the
  next start.
* Nothing here waits on a thread or a chat sender: replies are queued (at most
  ``capacity``; beyond that, a log line) and sent by :meth:`Refusals.run`, a supervised
  service, at most ``concurrency`` at a time. A reply that fails is a log line; it never
  stops the others.
"""

from __future__ import annotations

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from actors import DeadLetter, DeadLetterReason
from actors.thread.messages import Command, UserMessage
from actors.thread.records import Outcome, ThreadKey
from gateway.exceptions import ShardMovedError, StoreUnavailableError
from gateway.store.sqlite import Store
from gateway.telegram.outbox import TelegramOutbox

INTERNAL_ERROR = (
    "⚠️ Sorry, this message could not be handled (internal error). Please send it again."
)
"""What a user is told when the runtime gave up on their message."""


@attrs.frozen
class _Reply:
    """A notice the gateway owes."""

    key: ThreadKey
    """Where."""
    text: str
    """What."""
    reply_to: int | None
    """The message it answers."""
    fenced: bool = True
    """A thread's reply (see ``Notice.fenced``)."""


@attrs.frozen
class _Letter:
    """A dead letter to refuse, once the store says its thread did not accept it."""

    key: ThreadKey
    """Its thread."""
    message: UserMessage | Command
    """The message the runtime gave up on."""


@attrs.define(eq=False)
class Refusals:
    """Tells users that their message could not be handled, and records that as its outcome."""

    _store: Store
    _outbox: TelegramOutbox
    _capacity: int = 1000
    _concurrency: int = 64
    _send: MemoryObjectSendStream[_Reply | _Letter] = attrs.field(init=False)
    _receive: MemoryObjectReceiveStream[_Reply | _Letter] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[_Reply | _Letter](
            self._capacity
        )

    async def refuse(self, key: ThreadKey, message: UserMessage | Command, text: str) -> None:
        """Record the refusal as ``message``'s outcome and reply ``text``; never raises for a
        store that cannot be written, never waits for a chat."""
        logger.warning(
            "thread {key} refused message {id}: {text}", key=key, id=message.message_id, text=text
        )
        try:
            await self._store.record_outcome(
                key, message.message_id, Outcome.ERROR_REPLIED, "refused"
            )
        except ShardMovedError as moved:
            logger.info(
                "the refusal of message {id} in {key} not written: {e}; its new owner answers it",
                id=message.message_id,
                key=key,
                e=moved,
            )
            return  # nothing said: the replica holding the chat now takes the message
        except StoreUnavailableError as error:
            logger.error(
                "the refusal of message {id} in {key} is not recorded ({e}); the start-up "
                "replay will deliver it again",
                id=message.message_id,
                key=key,
                e=error,
            )
        self.reply(key, text, message.message_id)

    def reply(
        self, key: ThreadKey, text: str, reply_to: int | None, *, fenced: bool = True
    ) -> None:
        """Queue a notice for :meth:`run` to send; a log line if it cannot be queued.
        ``fenced=False``: an intake's reply, sent whoever holds the chat (``Notice``)."""
        self._queue(_Reply(key, text, reply_to, fenced))

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """The thread supervisor's handler (synchronous): queued for :meth:`run`."""
        message = letter.message
        if not isinstance(message, UserMessage | Command) or not isinstance(letter.key, ThreadKey):
            logger.warning(
                "dead letter {kind} for {key}: {detail}",
                kind=type(message).__name__,
                key=letter.key,
                detail=letter.detail,
            )
            return
        if letter.reason is DeadLetterReason.SHUTDOWN:
            logger.info(
                "message {id} in {key} left for the next start",
                id=message.message_id,
                key=letter.key,
            )
            return  # still unanswered in the inbox: replayed at the next start
        self._queue(_Letter(letter.key, message))

    def close(self) -> None:
        """No more replies: :meth:`run` sends what is queued, then returns."""
        self._send.close()

    async def run(self) -> None:
        """Send the queued replies (a supervised service); returns once closed and done.

        Once it returned or was cancelled, nothing more is queued (see :meth:`reply`); if it
        failed, the queue is kept for its restart.
        """
        slots = anyio.Semaphore(self._concurrency)
        try:
            async with anyio.create_task_group() as task_group:
                async for item in self._receive:
                    await slots.acquire()
                    task_group.start_soon(self._handle, item, slots)
        except anyio.get_cancelled_exc_class():
            self._shut()
            raise
        self._shut()

    def _shut(self) -> None:
        self._send.close()
        self._receive.close()

    def _queue(self, item: _Reply | _Letter) -> None:
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            logger.error(
                "{what} in {key} not sent: {n} replies are waiting already",
                what=_describe(item),
                key=item.key,
                n=self._capacity,
            )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            logger.error(
                "{what} in {key} not sent: the gateway is stopping",
                what=_describe(item),
                key=item.key,
            )

    async def _handle(self, item: _Reply | _Letter, slots: anyio.Semaphore) -> None:
        try:
            if isinstance(item, _Reply):
                await self._outbox.notice(
                    item.key, item.text, reply_to=item.reply_to, fenced=item.fenced
                )
            else:
                await self._refuse_dead_letter(item.key, item.message)
        except Exception as error:  # noqa: BLE001 - one reply must not stop the others
            logger.opt(exception=error).error(
                "{what} in {key} failed: {kind}: {e}",
                what=_describe(item),
                key=item.key,
                kind=type(error).__name__,
                e=error,
            )
        finally:
            slots.release()

    async def _refuse_dead_letter(self, key: ThreadKey, message: UserMessage | Command) -> None:
        """Refuse a message the runtime gave up on, unless its thread had accepted it: then
        the thread concludes it (or did), and a refusal would be a second outcome."""
        record = await self._store.load(key)
        if (record is not None and record.accepted(message.message_id)) or (
            await self._store.has_final_outcome(key, message.message_id)
        ):
            logger.warning(
                "dead letter {id} in {key}: its thread had accepted it; not refused",
                id=message.message_id,
                key=key,
            )
            return
        await self.refuse(key, message, INTERNAL_ERROR)


def _describe(item: _Reply | _Letter) -> str:
    if isinstance(item, _Reply):
        return f"the reply to message {item.reply_to}"
    return f"the refusal of dead letter {item.message.message_id}"
