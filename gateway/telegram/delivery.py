"""Delivery: routed messages to their threads, and a reply for every one they cannot take.

Rules:

* A message goes to its thread's mailbox; a thread that cannot take it (failed and cooling
  down, or a full mailbox) is a reply to the user and the message's outcome, never a drop.
* ``/status all`` from an admin user is answered here, outside any thread actor: it reads
  every thread and every key pool.
* A message the runtime gave up on (a dead letter) is answered the same way, unless its
  thread had accepted it (``ThreadRecord.accepted``: the thread concludes it); one left at
  shutdown stays unanswered in the inbox and is replayed at the next start (``replay``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from anyio.abc import TaskGroup
from loguru import logger

from actors import ActorFailedError, DeadLetter, DeadLetterReason, MailboxFullError, Supervisor
from actors.thread.messages import Command, Resume, UserMessage
from actors.thread.records import Outcome, ThreadKey
from actors.thread.texts import about
from gateway.store.sqlite import Store
from gateway.telegram.outbox import TelegramOutbox
from gateway.telegram.routing import Ignored, Routed, from_payload
from providers.pool import PoolStatus


@attrs.define(eq=False)
class Refusals:
    """Tells users that their message could not be handled, and records that as its outcome.

    The thread supervisor's dead letters come here too: a message the runtime gave up on is
    answered (never silent); one left at shutdown stays unanswered in the inbox and is
    replayed at the next start.
    """

    _store: Store
    _outbox: TelegramOutbox
    _task_group: TaskGroup

    async def refuse(self, key: ThreadKey, message: UserMessage | Command, text: str) -> None:
        """Reply ``text`` to ``message``; that reply is its outcome."""
        logger.warning(
            "thread {key} refused message {id}: {text}", key=key, id=message.message_id, text=text
        )
        await self._store.record_outcome(key, message.message_id, Outcome.ERROR_REPLIED, "refused")
        await self._outbox.notice(key, text, reply_to=message.message_id)

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """The supervisor's handler (synchronous): the reply is sent from the task group."""
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
        self._task_group.start_soon(self._refuse_dead_letter, letter.key, message)

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


INTERNAL_ERROR = (
    "⚠️ Sorry, this message could not be handled (internal error). Please send it again."
)
"""What a user is told when the runtime gave up on their message."""


MAILBOX_FULL = "⏳ Too many messages at once; wait a moment."
"""What a user is told when their thread's mailbox is full."""


@attrs.define(eq=False)
class Delivery:
    """Hands routed messages to their threads (polling, webhook and start-up replay alike)."""

    _threads: Supervisor[ThreadKey]
    _store: Store
    _outbox: TelegramOutbox
    _refusals: Refusals
    _admin_users: frozenset[int]
    _pools: Callable[[], Sequence[PoolStatus]]

    async def deliver(self, routed: Routed) -> None:
        """Hand a routed update to its thread."""
        await self.deliver_message(routed.key, routed.message)

    async def deliver_message(self, key: ThreadKey, message: UserMessage | Command) -> None:
        """Hand a message to its thread; tell the user if the thread cannot take it."""
        if (
            isinstance(message, Command)
            and message.name == "status"
            and message.args == "all"
            and message.user_id in self._admin_users
        ):
            await self._status_all(key, message)
            return
        try:
            await self._threads.ref_for(key).send(message)
        except ActorFailedError as error:
            await self._refusals.refuse(
                key,
                message,
                "⚠️ This conversation is recovering from repeated internal errors; "
                f"try again in {about(error.retry_after)}.",
            )
        except MailboxFullError:
            await self._refusals.refuse(
                key, message, "⏳ Too many messages at once; wait a moment."
            )

    async def _status_all(self, key: ThreadKey, command: Command) -> None:
        """``/status all`` from an admin user: every thread and the key pool, as text."""
        lines = []
        for child in self._threads.status().children:
            detail = dict(child.detail)
            lines.append(
                f"{child.key}: {detail.get('phase', child.state.value)}, "
                f"gen {detail.get('generation', '-')}, queued {detail.get('queued', '-')}, "
                f"run {detail.get('run_age', '-')}, restarts {child.restarts}"
            )
        for pool in self._pools():
            for entry in pool.keys:
                left = f" ({entry.cooldown_left:.0f}s left)" if entry.cooldown_left else ""
                lines.append(f"{pool.name}/{entry.label}: {entry.state.value}{left}")
        await self._store.record_outcome(key, command.message_id, Outcome.ANSWERED, "/status all")
        await self._outbox.notice(
            key, "\n".join(lines) or "No threads.", reply_to=command.message_id
        )

    async def reply_ignored(self, ignored: Ignored) -> None:
        """Send the reply an ignored update deserves (media without text, say)."""
        if ignored.key is not None:
            await self._outbox.notice(ignored.key, ignored.reply, reply_to=ignored.message_id)

    async def replay(self) -> int:
        """Deliver inbox messages that never reached their thread's record (after a crash)."""
        replayed = 0
        resumed: set[ThreadKey] = set()
        for entry in await self._store.unanswered():
            record = await self._store.load(entry.key)
            held = {p.message_id for p in (record.in_flight + record.queued)} if record else set()
            if entry.message_id in held:
                resumed.add(entry.key)  # its record has it: starting the actor resumes it
                continue
            await self.deliver_message(entry.key, from_payload(entry.payload))
            replayed += 1
        for key in resumed:
            await self._threads.ref_for(key).send(Resume(), control=True)
        if replayed or resumed:
            logger.info(
                "start-up: replayed {n} unanswered message(s); resumed {m} thread(s)",
                n=replayed,
                m=len(resumed),
            )
        return replayed
