"""Delivery: routed messages to their threads, and a reply for every one they cannot take.

Rules:

* A message goes to its thread's mailbox without waiting (``send_nowait``): one busy thread
  never holds up the updates of the others. A thread that cannot take it (a full mailbox, or
  failed and cooling down) is refused (``Refusals``: a reply to the user and the message's
  outcome), never a drop. While the gateway stops, a message is left unanswered in the inbox
  and replayed at the next start.
* ``deliver`` never raises (but for cancellation): an error it did not expect is logged with
  the update and refused as an internal error, so the poller and the resequencer go on.
* ``/status all`` from an admin user is answered here, outside any thread actor: it reads
  every thread and every key pool. From anyone else it is answered here too: it is for
  admins only (``telegram.admin_users``).
* ``/usage`` and ``/usage all`` are answered here too (``gateway.telegram.limits``): the
  sender's own usage (in a group too), or every user's for an admin; for anyone else,
  ``/usage all`` is for admins only. Each is recorded ``ANSWERED``.
* A message that starts a turn from a user over a daily limit (``limits.*``; admins are
  exempt) is refused here, before its thread: its outcome is ``LIMITED`` and the reply says
  when the limit resets. One that its thread took is counted for the message limit.
* A message with files that its metadata already rules out (too big, a voice note too long
  or nothing to transcribe it, see ``gateway.media.checks``), and one routing refused (a
  sticker, say), is refused here: a reply that says why, and its outcome. No run starts.
* At start, inbox messages that never reached their thread's record are delivered again
  (``replay``) and threads whose record holds unanswered inputs are resumed. An album's
  items that were never joined into one message are joined first (``gateway.media.albums``).
  The entries and what the records hold are one read of the store; the messages go out in
  lanes side by side, each thread's (and each user's) in one lane, in their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

import anyio
import attrs
from loguru import logger

from actors import (
    ActorFailedError,
    MailboxClosedError,
    MailboxFullError,
    Supervisor,
    SupervisorClosedError,
)
from actors.thread.messages import Command, Resume, UserMessage
from actors.thread.records import Outcome, ThreadKey
from actors.thread.texts import about
from gateway.exceptions import ShardMovedError
from gateway.media.albums import join
from gateway.media.checks import MediaLimits, refusal
from gateway.store.sqlite import InboxEntry, Store
from gateway.telegram.intake import sanitized
from gateway.telegram.limits import UsageGate
from gateway.telegram.refusals import INTERNAL_ERROR, Refusals
from gateway.telegram.routing import (
    Ignored,
    Routed,
    from_payload,
    payload_album,
    payload_refusal,
)
from providers.pool import PoolStatus

MAILBOX_FULL = "⏳ This thread is busy: your message was not accepted. Send it again in a moment."
"""What a user is told when their thread's mailbox is full."""

ADMIN_ONLY = (
    "🔒 /status all is for the gateway's admins only (telegram.admin_users). "
    "/status shows this thread."
)
"""What a user who is not an admin is told when they send ``/status all``."""

RECOVERING_SOON = "⚠️ This conversation is recovering from an internal error; try again soon."
"""What a user is told when their thread's mailbox closed as the thread was marked failed."""


def recovering(retry_after: float) -> str:
    """What a user is told when their thread is failed for ``retry_after`` more seconds."""
    return (
        "⚠️ This conversation is recovering from repeated internal errors; "
        f"try again in {about(retry_after)}."
    )


@attrs.define(eq=False)
class Delivery:
    """Hands routed messages to their threads (polling, webhook and start-up replay alike)."""

    _threads: Supervisor[ThreadKey]
    _store: Store
    _refusals: Refusals
    _admin_users: frozenset[int]
    _pools: Callable[[], Sequence[PoolStatus]]
    _accepted: Callable[[ThreadKey, int], None] = lambda key, message_id: None
    """Told of every user message a thread's mailbox took (the queue wait's start)."""
    _limits: MediaLimits = attrs.field(factory=MediaLimits, kw_only=True)
    """What the metadata checks of files allow."""
    _usage: UsageGate | None = attrs.field(default=None, kw_only=True)
    """The daily limits and ``/usage`` (``None``: neither; ``/usage`` goes to the thread)."""

    async def deliver(self, routed: Routed) -> None:
        """Hand a routed update to its thread; never raises (see the rules)."""
        try:
            await self.deliver_message(routed.key, routed.message, refused=routed.refusal)
        except ShardMovedError as moved:  # several replicas: the chat is another's now
            logger.info(
                "update {id} for {key} left to the replica that holds it now: {e}",
                id=routed.update_id,
                key=routed.key,
                e=moved,
            )
        except Exception as error:  # noqa: BLE001 - one update must not stop every chat's
            logger.opt(exception=error).error(
                "update {id} for {key} could not be delivered: {kind}",
                id=routed.update_id,
                key=routed.key,
                kind=type(error).__name__,
            )
            await self._refusals.refuse(routed.key, routed.message, INTERNAL_ERROR)

    async def deliver_message(
        self, key: ThreadKey, message: UserMessage | Command, *, refused: str = ""
    ) -> None:
        """Hand a message to its thread; tell the user if the thread cannot take it (or if
        ``refused``, or its files' metadata rule them out, why not)."""
        if isinstance(message, UserMessage) and message.media and not refused:
            refused = refusal(message.media, self._limits)
        if refused:
            await self._refusals.refuse(key, message, f"⚠️ {refused}")
            return
        if isinstance(message, Command) and message.name == "status" and message.args == "all":
            if message.user_id in self._admin_users:
                await self._status_all(key, message)
            else:
                await self._store.record_outcome(
                    key, message.message_id, Outcome.ANSWERED, "/status all: not an admin"
                )
                self._refusals.reply(key, ADMIN_ONLY, message.message_id)
            return
        gate = self._usage
        if gate is not None and isinstance(message, Command) and message.name == "usage":
            reply, detail = await gate.answer(message)
            await self._store.record_outcome(key, message.message_id, Outcome.ANSWERED, detail)
            self._refusals.reply(key, reply, message.message_id)
            return
        counts = gate is not None and await gate.counts(key, message)
        if gate is not None and counts and (limited := await gate.over(key, message)):
            logger.info(
                "message {id} in {key} from user {user} over a limit: {detail}",
                id=message.message_id,
                key=key,
                user=message.user_id,
                detail=limited.detail,
            )
            await self._store.record_outcome(
                key, message.message_id, Outcome.LIMITED, limited.detail
            )
            self._refusals.reply(key, limited.reply, message.message_id)
            return
        try:
            self._threads.ref_for(key).send_nowait(message)
            if isinstance(message, UserMessage):
                self._accepted(key, message.message_id)
        except MailboxFullError:
            await self._refusals.refuse(key, message, MAILBOX_FULL)
        except ActorFailedError as error:
            await self._refusals.refuse(key, message, recovering(error.retry_after))
        except MailboxClosedError:
            await self._refusals.refuse(key, message, RECOVERING_SOON)
        except SupervisorClosedError:
            logger.info(
                "message {id} in {key} left for the next start: the gateway is stopping",
                id=message.message_id,
                key=key,
            )
        else:
            if gate is not None and counts:
                await gate.count(key, message)

    async def _status_all(self, key: ThreadKey, command: Command) -> None:
        """``/status all`` from an admin user: every thread and the key pool, as text."""
        lines = []
        for child in self._threads.status().children:
            detail = dict(child.detail)
            run_age = detail.get("run_age")
            lines.append(
                f"{child.key}: {detail.get('phase', child.state.value)}, "
                f"gen {detail.get('generation', '-')}, queued {detail.get('queued', '-')}, "
                f"run {'-' if run_age is None else f'{run_age:.1f}s'}, "
                f"restarts {child.restarts}"
            )
        for pool in self._pools():
            for entry in pool.keys:
                left = f" ({entry.cooldown_left:.0f}s left)" if entry.cooldown_left else ""
                lines.append(f"{pool.name}/{entry.label}: {entry.state.value}{left}")
        await self._store.record_outcome(key, command.message_id, Outcome.ANSWERED, "/status all")
        self._refusals.reply(key, "\n".join(lines) or "No threads.", command.message_id)

    def reply_ignored(self, ignored: Ignored) -> None:
        """Send the reply an ignored update deserves (media without text, say)."""
        if ignored.key is not None:
            self._refusals.reply(ignored.key, ignored.reply, ignored.message_id, fenced=False)

    async def replay(
        self,
        shards: Collection[int] | None = None,
        handed: set[int] | None = None,
        *,
        album_hold: float | None = None,
    ) -> int:
        """Deliver inbox messages that never reached their thread's record (after a crash),
        and resume the threads whose record holds one.

        ``shards``: only those shards' entries (a replica that gained them); ``handed``: the
        update ids this replica already handed to its threads, which are skipped; it is
        updated (the entries handed now are added, those no longer unanswered dropped).
        ``album_hold``: an album item not yet joined and written less than this many seconds
        ago is left alone (a replica is still collecting the album: it delivers it whole)."""
        began = anyio.current_time()
        resumed: set[ThreadKey] = set()
        pending = await self._store.pending(shards)  # one read, whatever the count
        entries = pending.entries
        if handed is not None:
            handed.intersection_update(entry.update_id for entry in entries)
        now = time.time()
        again: list[_Again] = []
        for entry, items in _albums(entries):
            collecting = album_hold is not None and payload_album(entry.payload) != ""
            if collecting and now - max(i.received_at for i in (entry, *items)) < (album_hold or 0):
                continue  # its album is still being collected: the next scan looks again
            if handed is not None and entry.update_id in handed:
                continue  # this replica's threads have it already
            if pending.is_held(entry):
                if handed is not None:
                    handed.add(entry.update_id)
                resumed.add(entry.key)  # its record has it: starting the actor resumes it
                continue
            # Sanitized again: an inbox written before intake sanitized text may hold a lone
            # surrogate, which would fail this start as it failed the last one.
            again.append(_Again(entry, items, sanitized(from_payload(entry.payload))))
        try:
            replayed = await self._deliver_lanes(_lanes(again), handed)
        finally:  # (a delivery that failed leaves the rest to the next start or scan)
            for key in resumed:
                try:
                    self._threads.ref_for(key).send_nowait(Resume(), control=True)
                except (MailboxFullError, ActorFailedError, MailboxClosedError) as error:
                    logger.warning("thread {key} not resumed at start: {e}", key=key, e=error)
        if replayed or resumed:
            logger.log(
                "INFO" if shards is None else "DEBUG",  # a replica's shards: every notice
                "{when}: replayed {n} unanswered message(s); resumed {m} thread(s) in {s:.2f} s",
                when="start-up" if shards is None else f"shard(s) {sorted(shards)}",
                n=replayed,
                m=len(resumed),
                s=anyio.current_time() - began,
            )
        return replayed

    async def _deliver_lanes(self, lanes: list[list[_Again]], handed: set[int] | None) -> int:
        """Deliver each lane's messages in order, ``REPLAY_LANES`` lanes at a time (their
        store writes share the writer's hops); returns how many. The first error stops the
        lanes from going on (each after the message it was delivering) and is raised."""
        delivered = 0
        failures: list[Exception] = []
        waiting = iter(lanes)

        async def work() -> None:
            nonlocal delivered
            for lane in waiting:  # (one iterator: each lane is taken by one worker)
                for again in lane:
                    if failures:
                        return
                    if handed is not None:
                        handed.add(again.entry.update_id)
                    try:
                        await self._deliver_again(again)
                    except Exception as error:  # noqa: BLE001 - raised below, as it was
                        failures.append(error)
                        return
                    delivered += 1

        async with anyio.create_task_group() as workers:
            for _ in range(min(REPLAY_LANES, len(lanes))):
                workers.start_soon(work)
        for error in failures[1:]:  # the first is raised; the others are said here
            logger.opt(exception=error).error("replay: another lane failed too: {e!r}", e=error)
        if failures:
            raise failures[0]
        return delivered

    async def _deliver_again(self, again: _Again) -> None:
        """Deliver an entry that never reached its thread's record (joined with the later
        items of its album, if the gateway stopped while it was held)."""
        entry, message = again.entry, again.message
        if again.items and isinstance(message, UserMessage):
            members = [message, *(sanitized(from_payload(i.payload)) for i in again.items)]
            message = await join(
                self._store, entry.key, [m for m in members if isinstance(m, UserMessage)]
            )
        await self.deliver_message(entry.key, message, refused=payload_refusal(entry.payload))


REPLAY_LANES = 32
"""Lanes of a replay delivered at once (see ``_lanes``)."""


@attrs.frozen
class _Again:
    """An inbox entry a replay delivers again."""

    entry: InboxEntry
    """The entry (an album's first item, if it is one)."""
    items: list[InboxEntry]
    """Its album's later items never joined to it (else empty)."""
    message: UserMessage | Command
    """What it was routed as."""


def _lanes(again: list[_Again]) -> list[list[_Again]]:
    """The entries to deliver again in lanes, each in its order (oldest first): the entries
    of one thread are in one lane (a thread gets them in the order it was sent them), and so
    are those of one user (a daily limit counts each before the next is checked); lanes
    share neither, so they may be delivered side by side."""
    parent: dict[object, object] = {}

    def root(node: object) -> object:
        parent.setdefault(node, node)
        while (up := parent[node]) != node:
            parent[node] = parent[up]  # halve the path
            node = up
        return node

    for each in again:
        if each.message.user_id is not None:
            parent[root(("user", each.message.user_id))] = root(each.entry.key)
    lanes: dict[object, list[_Again]] = {}
    for each in again:
        lanes.setdefault(root(each.entry.key), []).append(each)
    return list(lanes.values())


def _albums(entries: list[InboxEntry]) -> list[tuple[InboxEntry, list[InboxEntry]]]:
    """The entries to replay, oldest first, each with the later items of its album (an
    album never joined: the gateway stopped while it was held)."""
    out: list[tuple[InboxEntry, list[InboxEntry]]] = []
    firsts: dict[tuple[ThreadKey, str], list[InboxEntry]] = {}
    for entry in entries:
        album = payload_album(entry.payload)
        if album and (entry.key, album) in firsts:
            firsts[(entry.key, album)].append(entry)
            continue
        items: list[InboxEntry] = []
        if album:
            firsts[(entry.key, album)] = items
        out.append((entry, items))
    return out
