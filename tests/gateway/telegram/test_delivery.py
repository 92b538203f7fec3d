"""Delivery and refusals: a thread that cannot take a message never holds up the others.

Real parts throughout: thread actors under a real supervisor, the SQLite store for outcomes,
chat senders over the Bot API simulator. Only the threads' own store is the in-memory fake,
so that one thread can be made slow (a disk that hangs) or failing while the others are not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from actors import Actor, ActorContext, ChildState, RestartPolicy, Supervisor, SupervisorConfig
from actors.thread.actor import ThreadActor
from actors.thread.messages import Command, UserMessage
from actors.thread.records import ThreadKey
from actors.thread.settings import ThreadSettings
from gateway.config import LimitsConfig, TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.ops.metrics import Metrics
from gateway.store.sqlite import Store
from gateway.store.usage import UsageStore
from gateway.telegram.bot import make_bot
from gateway.telegram.chat_sender import ChatSender
from gateway.telegram.delivery import Delivery
from gateway.telegram.limits import UsageGate
from gateway.telegram.outbox import TelegramOutbox
from gateway.telegram.pacing import GlobalPace
from gateway.telegram.refusals import Refusals
from gateway.telegram.routing import Routed
from tests.fakes.thread_ports import MemoryStore, ScriptedAgent
from tests.gateway.harness import ADMIN, TOKEN, wait_until
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio
A, B = ThreadKey(6001), ThreadKey(6002)
CAPACITY = 2


@attrs.define
class Parts:
    delivery: Delivery
    threads: Supervisor[ThreadKey]
    telegram: BotAPISimulator
    data_dir: Path
    next_id: int = 100

    async def say(self, key: ThreadKey, text: str) -> int:
        self.next_id += 1
        await self.delivery.deliver_message(key, UserMessage(self.next_id, text, 42))
        return self.next_id

    def replies_to(self, message_id: int) -> list[SentMessage]:
        return [m for m in self.telegram.sent if m.reply_to == message_id]

    def outcome(self, message_id: int) -> tuple[str, str] | None:
        with sqlite3.connect(self.data_dir / "threadgate.sqlite3") as db:
            row = db.execute(
                "SELECT outcome, detail FROM outcomes WHERE message_id = ?", (message_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def state(self, key: ThreadKey) -> ChildState | None:
        states = {c.key: c.state for c in self.threads.status().children}
        return states.get(key)


class BrokenSender(Actor[object]):
    """A chat sender that crashes on every message (a fault injected at the port)."""

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        raise RuntimeError("injected: the chat sender is broken")


@asynccontextmanager
async def delivering(
    tmp_path: Path,
    stores: Callable[[ThreadKey], MemoryStore],
    *,
    thread_restarts: int = 5,
    broken_senders: frozenset[int] = frozenset(),
    limits: LimitsConfig | None = None,
) -> AsyncIterator[Parts]:
    """Delivery over thread actors whose mailboxes hold ``CAPACITY`` messages (with
    ``limits``: and the daily limits, on the real store)."""
    telegram = BotAPISimulator(token=TOKEN)
    metrics = Metrics()
    settings = ThreadSettings(stall_timeout=20, run_timeout=60, failure_write_for=0.5)
    agent = ScriptedAgent(chunk_delay=0.05)
    with telegram.serving_in_thread():
        bot = make_bot(TelegramConfig(token=TOKEN, api_base=telegram.base_url))
        bots = {TOKEN: bot}

        def sender_for(chat: int) -> Actor[object]:
            if chat in broken_senders:
                return BrokenSender()
            return ChatSender(chat, bot, GlobalPace(), metrics)

        store = Store(tmp_path / "threadgate.sqlite3")
        senders: Supervisor[int] = Supervisor(
            sender_for,
            SupervisorConfig(restart=RestartPolicy(max_restarts=0, failed_cooldown=60)),
        )
        outbox = TelegramOutbox(senders, metrics)
        refusals = Refusals(store, outbox)
        store_of = {key: stores(key) for key in (A, B)}
        threads: Supervisor[ThreadKey] = Supervisor(
            lambda key: ThreadActor(key, agent, outbox, store_of[key], settings),
            SupervisorConfig(
                mailbox_capacity=CAPACITY,
                idle_ttl=None,
                drain_timeout=0.5,
                restart=RestartPolicy(max_restarts=thread_restarts, failed_cooldown=60),
            ),
            on_dead_letter=refusals.on_dead_letter,
        )
        gate = None
        if limits is not None:
            gate = UsageGate(UsageStore(store), store, limits, frozenset({ADMIN}))
        delivery = Delivery(threads, store, refusals, frozenset({ADMIN}), list, usage=gate)
        try:
            async with senders, anyio.create_task_group() as services:
                services.start_soon(refusals.run)
                async with threads:
                    yield Parts(delivery, threads, telegram, tmp_path)
                refusals.close()
        finally:
            for bot in bots.values():
                await bot.session.close()
            store.close()


def hanging_for(slow: ThreadKey) -> Callable[[ThreadKey], MemoryStore]:
    """Thread ``slow``'s store hangs on every write (a disk that stopped answering)."""
    return lambda key: MemoryStore(save_delay=3600 if key == slow else 0.0)


async def test_one_full_mailbox_is_refused_at_once_and_other_chats_go_on(tmp_path: Path) -> None:
    async with delivering(tmp_path, hanging_for(A)) as parts:
        with anyio.fail_after(2):  # a delivery that waits for room would hang here
            taken = await parts.say(A, "first")
            await anyio.sleep(0.2)  # A's actor took it and hangs writing its record
            queued = [await parts.say(A, f"queued {n}") for n in range(CAPACITY)]
            busy = [await parts.say(A, f"busy {n}") for n in range(3)]
            other = await parts.say(B, "meanwhile in another chat")
        await wait_until(
            lambda: any("answer to meanwhile" in m.text for m in parts.replies_to(other)),
            timeout=10,
        )
        await wait_until(lambda: all(parts.replies_to(m) for m in busy), timeout=10)
        for message_id in busy:
            (reply,) = parts.replies_to(message_id)
            assert "This thread is busy: your message was not accepted" in reply.text
            assert parts.outcome(message_id) == ("error-replied", "refused"), "not replayed"
        for message_id in (taken, *queued):
            assert parts.replies_to(message_id) == []
            assert parts.outcome(message_id) is None, "still A's to answer"


async def test_a_delivery_racing_its_threads_failure_is_refused_not_raised(
    tmp_path: Path,
) -> None:
    def stores(key: ThreadKey) -> MemoryStore:
        if key == A:  # every write fails, after half a second
            return MemoryStore(save_delay=0.5, fail_saves=1_000_000)
        return MemoryStore()

    async with delivering(tmp_path, stores, thread_restarts=0) as parts:
        with anyio.fail_after(2):
            taken = await parts.say(A, "first")
            await anyio.sleep(0.1)
            queued = [await parts.say(A, f"queued {n}") for n in range(CAPACITY)]
            # Waiting for room here would end with MailboxClosedError: A is marked failed
            # (its mailbox closed) before room is made.
            busy = await parts.say(A, "one too many")
        await wait_until(lambda: parts.state(A) is ChildState.FAILED, timeout=10)
        late = await parts.say(A, "after the failure")
        everyone = [taken, *queued, busy, late]
        await wait_until(lambda: all(parts.replies_to(m) for m in everyone), timeout=20)
        replies = {m: [r.text for r in parts.replies_to(m)] for m in everyone}
        for message_id in (taken, *queued):
            assert len(replies[message_id]) == 1, replies
            assert "could not be handled" in replies[message_id][0]
        assert "This thread is busy" in replies[busy][0]
        assert "recovering from repeated internal errors" in replies[late][0]
        assert len(replies[busy]) == len(replies[late]) == 1


async def test_a_refusal_whose_chat_sender_failed_is_a_log_line(tmp_path: Path) -> None:
    def stores(key: ThreadKey) -> MemoryStore:
        return MemoryStore(fail_saves=1_000_000) if key == A else MemoryStore()

    broken = frozenset({A.chat_id})
    with captured_logs() as logs:
        async with delivering(tmp_path, stores, thread_restarts=0, broken_senders=broken) as parts:
            # A fails on its first message; the refusal of that message crashes A's chat
            # sender (broken), which is marked failed too.
            first = await parts.say(A, "first")
            await wait_until(lambda: parts.state(A) is ChildState.FAILED, timeout=10)
            await wait_until(lambda: any(f"refused message {first}" in line for line in logs))
            await wait_until(lambda: any("actor 6001: Notice (failed" in line for line in logs))
            with anyio.fail_after(2):
                refused = await parts.say(A, "again: refused, and the sender refuses the notice")
            other = await parts.say(B, "another chat")
            await wait_until(lambda: bool(parts.replies_to(other)), timeout=10)
            assert parts.outcome(refused) == ("error-replied", "refused")
    assert any(
        f"the reply to message {refused} in {A} failed: ActorFailedError" in line for line in logs
    )


async def test_an_error_while_delivering_is_answered_as_an_internal_error(tmp_path: Path) -> None:
    async with delivering(tmp_path, lambda key: MemoryStore()) as parts:
        with sqlite3.connect(tmp_path / "threadgate.sqlite3") as db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON outcomes"
                " BEGIN SELECT RAISE(ABORT, 'injected: the disk is full'); END"
            )
        status_all = Command("status", "all", 301, ADMIN)
        with captured_logs() as logs, anyio.fail_after(2):
            await parts.delivery.deliver(Routed(9, A, status_all))
        await wait_until(lambda: bool(parts.replies_to(301)), timeout=10)
        assert "could not be handled (internal error)" in parts.replies_to(301)[0].text
        assert any("update 9 for 6001 could not be delivered" in line for line in logs)
        assert any("is not recorded" in line for line in logs)


async def test_replies_beyond_the_queue_or_after_the_stop_are_log_lines(tmp_path: Path) -> None:
    store = Store(tmp_path / "threadgate.sqlite3")
    metrics = Metrics()
    never_entered: Supervisor[int] = Supervisor(lambda chat: Actor[object]())
    refusals = Refusals(store, TelegramOutbox(never_entered, metrics), capacity=1)
    try:
        with captured_logs() as logs:
            refusals.reply(A, "queued", 1)
            refusals.reply(A, "one too many", 2)  # nothing sends yet: the queue is full
            refusals.close()
            refusals.reply(A, "too late", 3)
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(refusals.run)
                await anyio.sleep(0.1)
                task_group.cancel_scope.cancel()
    finally:
        store.close()
    assert any(f"the reply to message 2 in {A} not sent: 1 replies" in line for line in logs)
    assert any(
        f"the reply to message 3 in {A} not sent: the gateway is stopping" in line for line in logs
    )


def counted(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "threadgate.sqlite3") as db:
        rows = db.execute("SELECT message_id FROM usage_messages ORDER BY message_id").fetchall()
    return [int(row[0]) for row in rows]


async def test_only_messages_that_start_turns_are_counted_and_limited(tmp_path: Path) -> None:
    group = ThreadKey(-6003)
    stores = {A: MemoryStore(), B: MemoryStore(), group: MemoryStore()}
    async with delivering(
        tmp_path, stores.__getitem__, limits=LimitsConfig(user_daily_messages=1)
    ) as parts:
        deliver = parts.delivery.deliver_message
        first = await parts.say(A, "first")
        await deliver(A, Command("status", "", 201, 42))
        await deliver(A, Command("new", "", 202, 42))
        await deliver(A, Command("usage", "", 203, 42))
        # Not addressed in a group whose activation is "mention" (the default): no turn.
        await deliver(group, UserMessage(204, "chatter", 42, addressed=False))
        await deliver(A, UserMessage(205, "nobody named", None))
        assert counted(parts.data_dir) == [first]
        over = await parts.say(A, "second")
        skill = 206
        await deliver(A, Command("cc", "with input", skill, 42))
        await wait_until(lambda: bool(parts.replies_to(over) and parts.replies_to(skill)))
        for limited in (over, skill):
            assert parts.outcome(limited) == ("limited", "daily messages (1)")
            assert "You have used today's 1 messages" in parts.replies_to(limited)[0].text
        assert parts.outcome(203) == ("answered", "/usage")
        assert "Today: 1 message, no tokens" in parts.replies_to(203)[0].text
        assert counted(parts.data_dir) == [first], "a refused message is not counted"
