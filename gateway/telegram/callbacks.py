"""Button presses (``callback_query``) and stopped drafts (``stopped_message_generation``).

A supervised service (``callbacks``) with a bounded queue: the poller and the webhook hand
it these updates without waiting (:meth:`Callbacks.offer`), and ``WORKERS`` tasks handle
them, so a thread that is slow to answer holds up neither the updates nor other presses.

Rules for a press:

* Every callback query is answered (``answerCallbackQuery``) exactly once, so the client's
  spinner stops: with "Stopped.", "That answer has already finished.", an alert for a user who
  may not use the bot (the allowlists messages have), or who presses the Stop button of
  another member's per-user thread without being an admin; "This button is no longer active."
  for data that is no Stop button's (or a message Telegram no longer shows); a failure text
  if the thread could not be asked. When the queue is full the press is answered at once with
  "Busy, try again.".
* A Stop button press asks its thread ``StopRun(run_id, user)`` (on the control lane, so it
  does not wait behind queued messages) for at most ``ASK_TIMEOUT`` seconds. The thread stops
  that run only if it is still its current one.
* With several replicas, a stop for a thread another replica holds is sent on to it
  (``elsewhere``) and the press is answered "Stopping…": that replica's thread stops the run
  if it is still its current one.
* A stopped draft (private chats only) is ``StopRun(draft_id)`` in the chat's thread: the
  draft id is the run id. There is nothing to answer; the result is a log line.

Neither is written to the inbox (they are not messages with outcomes); each gets a log line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.types import CallbackQuery, Message, MessageGenerationStopped, Update
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from actors import ActorError, Supervisor
from actors.thread.messages import StopRun
from actors.thread.records import ThreadKey
from gateway.telegram import stop_button
from gateway.telegram.routing import GENERAL_TOPIC, thread_key

CAPACITY = 64
"""Presses and stopped drafts waiting to be handled, at most."""
WORKERS = 4
"""Handled at once."""
ASK_TIMEOUT = 5.0
"""Seconds a thread has to answer a stop."""
ANSWER_TIMEOUT = 10.0
"""Seconds an ``answerCallbackQuery`` may take (``BUSY_TIMEOUT`` for the busy answer, which
the poller waits for)."""
BUSY_TIMEOUT = 2.0

STOPPED = "Stopped."
FINISHED = "That answer has already finished."
NOT_ALLOWED = "You are not allowed to use this bot."
NOT_YOURS = "Only the person who asked, or an admin, can stop this answer."
INACTIVE = "This button is no longer active."
UNAVAILABLE = "Could not stop it right now; send /stop."
FORWARDED = "Stopping…"
"""A stop sent on to the replica that holds the thread (it does not answer back)."""
BUSY = "Busy, try again."


@attrs.frozen
class Answer:
    """How a callback query is answered."""

    text: str
    """What the client shows."""
    alert: bool = False
    """As a dialog the user must dismiss (``show_alert``), not a passing notice."""


@attrs.define(eq=False)
class Callbacks:
    """Handles presses and stopped drafts; run :meth:`run` as a supervised service."""

    _bot: Bot
    _threads: Supervisor[ThreadKey]
    _allows: Callable[[int | None, int], Awaitable[bool]]
    """Whether a user may use the bot in a chat (the intake's allowlists)."""
    _admins: frozenset[int]
    elsewhere: Callable[[ThreadKey, StopRun], Awaitable[bool]] | None = None
    """With several replicas: forwards a stop to the replica that holds the thread, and
    says whether it did (``False``: the thread is held here)."""
    _send: MemoryObjectSendStream[Update] = attrs.field(init=False)
    _receive: MemoryObjectReceiveStream[Update] = attrs.field(init=False)

    name = "callbacks"

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[Update](CAPACITY)

    def close(self) -> None:
        """Close the queue (when the gateway stops): what is still in it is not handled."""
        self._send.close()
        self._receive.close()

    async def offer(self, update: Update) -> None:
        """Queue ``update`` without waiting; a full queue answers a press "Busy, try again."
        at once (waiting ``BUSY_TIMEOUT`` at most) and drops a stopped draft with a log line."""
        try:
            self._send.send_nowait(update)
            return
        except anyio.WouldBlock:
            pass
        except anyio.ClosedResourceError:
            logger.info("update {id} not handled: the gateway is stopping", id=update.update_id)
            return
        query = update.callback_query
        logger.warning(
            "update {id} ({kind}) not handled: {n} presses are waiting",
            id=update.update_id,
            kind="button press" if query else "stopped draft",
            n=CAPACITY,
        )
        if query is not None:
            await self._answer(query, Answer(BUSY), timeout=BUSY_TIMEOUT)

    async def run(self) -> None:
        """Handle what was offered, until cancelled."""
        async with anyio.create_task_group() as workers:
            for number in range(WORKERS):
                workers.start_soon(self._work, name=f"callbacks worker {number}")

    async def _work(self) -> None:
        while True:
            update = await self._receive.receive()
            if update.callback_query is not None:
                await self._press(update.callback_query)
            elif update.stopped_message_generation is not None:
                try:
                    await self._stopped_draft(update.update_id, update.stopped_message_generation)
                except Exception as error:  # noqa: BLE001 - one update must not stop the rest
                    logger.opt(exception=error).error(
                        "stopped draft (update {id}) failed: {kind}",
                        id=update.update_id,
                        kind=type(error).__name__,
                    )

    async def _press(self, query: CallbackQuery) -> None:
        try:
            answer = await self._decide(query)
        except Exception as error:  # noqa: BLE001 - a press is answered whatever happens
            logger.opt(exception=error).error(
                "button press {id} failed: {kind}", id=query.id, kind=type(error).__name__
            )
            answer = Answer(UNAVAILABLE)
        await self._answer(query, answer, timeout=ANSWER_TIMEOUT)

    async def _decide(self, query: CallbackQuery) -> Answer:
        user = query.from_user.id
        message = query.message
        press = stop_button.parse(query.data)
        chat = message.chat.id if message is not None else None
        logger.info(
            "button press {id} by {user} in {chat}: {data!r}",
            id=query.id,
            user=user,
            chat=chat,
            data=query.data,
        )
        if not isinstance(message, Message):  # too old for Telegram to say where it was
            return Answer(INACTIVE)
        if not await self._allows(user, message.chat.id):
            return Answer(NOT_ALLOWED, alert=True)
        if press is None:
            return Answer(INACTIVE)
        key = thread_key(message)
        if press.user_id is not None:
            key = ThreadKey(key.chat_id, key.thread_id, press.user_id)
            if user != press.user_id and user not in self._admins:
                return Answer(NOT_YOURS, alert=True)
        if self.elsewhere is not None and await self.elsewhere(key, StopRun(press.run_id, user)):
            return Answer(FORWARDED)
        stopped = await self._stop(key, StopRun(press.run_id, user))
        if stopped is None:
            return Answer(UNAVAILABLE)
        return Answer(STOPPED if stopped else FINISHED)

    async def _stopped_draft(self, update_id: int, stopped: MessageGenerationStopped) -> None:
        chat = stopped.chat
        topic = (stopped.message_thread_id or GENERAL_TOPIC) if chat.is_forum else None
        key = ThreadKey(chat.id, topic)
        user = chat.id if chat.type == "private" else None
        if not await self._allows(user, chat.id):
            logger.info(
                "stopped draft in {key} (update {id}) ignored: not allowed", key=key, id=update_id
            )
            return
        if self.elsewhere is not None and await self.elsewhere(
            key, StopRun(stopped.draft_id, user)
        ):
            logger.info(
                "draft {draft} in {key} stopped: sent to its replica",
                draft=stopped.draft_id,
                key=key,
            )
            return
        result = await self._stop(key, StopRun(stopped.draft_id, user))
        outcome = {True: "stopped", False: "had finished", None: "could not be asked"}[result]
        logger.info(
            "draft {draft} in {key} stopped by the user: the run {outcome}",
            draft=stopped.draft_id,
            key=key,
            outcome=outcome,
        )

    async def _stop(self, key: ThreadKey, stop: StopRun) -> bool | None:
        """Ask ``key``'s thread to stop: whether it stopped the run (``None``: no answer)."""
        try:
            stopped = await self._threads.ref_for(key).ask(stop, timeout=ASK_TIMEOUT, control=True)
        except ActorError as error:
            logger.warning(
                "thread {key} not asked to stop run {run}: {kind}",
                key=key,
                run=stop.run_id,
                kind=type(error).__name__,
            )
            return None
        if not isinstance(stopped, bool):
            logger.error("thread {key} answered a stop with {answer!r}", key=key, answer=stopped)
            return None
        return stopped

    async def _answer(self, query: CallbackQuery, answer: Answer, *, timeout: float) -> None:
        """Answer ``query`` once; a failure is a log line (the client's spinner times out)."""
        with anyio.move_on_after(timeout) as scope:
            try:
                await self._bot.answer_callback_query(
                    query.id, text=answer.text, show_alert=answer.alert
                )
            except (TelegramAPIError, ClientDecodeError) as error:
                logger.warning(
                    "button press {id} not answered: {kind}: {error}",
                    id=query.id,
                    kind=type(error).__name__,
                    error=error,
                )
                return
        if scope.cancelled_caught:
            logger.warning("button press {id} not answered within {s:g}s", id=query.id, s=timeout)
            return
        logger.info("button press {id} answered: {text}", id=query.id, text=answer.text)
