"""The start-up replay: every unanswered inbox entry back in its thread, in order, from one
read of the store however many entries there are.

Real parts: a real ``Delivery`` on the SQLite store, thread actors under a real supervisor
that note what they are handed (the thread actor itself is not what is tested here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from actors import Actor, ActorContext, Supervisor
from actors.thread.messages import Resume, UserMessage
from actors.thread.records import PendingInput, ThreadKey, ThreadRecord
from gateway.config import LimitsConfig
from gateway.ops.metrics import Metrics
from gateway.store import InboxEntry, Store
from gateway.store.usage import UsageStore
from gateway.telegram.delivery import REPLAY_LANES, Delivery
from gateway.telegram.limits import UsageGate
from gateway.telegram.outbox import TelegramOutbox
from gateway.telegram.refusals import Refusals
from gateway.telegram.routing import to_payload
from tests.gateway.harness import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: the store works in threads, which trio's jumping clock does not wait for."""
    return "asyncio"


CHATS = 40
"""Threads with an entry left in the inbox."""


class Recorder(Actor[object]):
    """A thread that notes what it is handed: a user message's id, or ``resume``."""

    def __init__(self, key: ThreadKey, got: dict[ThreadKey, list[object]]) -> None:
        self._seen = got.setdefault(key, [])

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        if isinstance(message, UserMessage):
            self._seen.append(message.message_id)
        elif isinstance(message, Resume):
            self._seen.append("resume")
        return None


class Sender(Actor[object]):
    """A chat sender that notes what it is asked to send (a refusal's reply)."""

    def __init__(self, sent: list[object]) -> None:
        self._sent = sent

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        self._sent.append(message)
        return None


@attrs.define
class Parts:
    store: Store
    delivery: Delivery
    got: dict[ThreadKey, list[object]]
    sent: list[object]
    _update_id: int = 0

    async def accept(self, key: ThreadKey, message_id: int, user_id: int = 7) -> None:
        self._update_id += 1
        message = UserMessage(message_id, f"hello {message_id}", user_id)
        entry = InboxEntry(self._update_id, key, message_id, to_payload(message))
        assert await self.store.accept(entry)


@asynccontextmanager
async def replaying(tmp_path: Path, limits: LimitsConfig | None = None) -> AsyncIterator[Parts]:
    """A replay's parts (with ``limits``: and the daily limits' gate, on the same store)."""
    store = Store(tmp_path / "threadgate.sqlite3")
    got: dict[ThreadKey, list[object]] = {}
    sent: list[object] = []
    noting: Supervisor[int] = Supervisor(lambda _chat: Sender(sent))
    recorders: Supervisor[ThreadKey] = Supervisor(lambda key: Recorder(key, got))
    gate = None if limits is None else UsageGate(UsageStore(store), store, limits, frozenset())
    async with noting as senders, recorders as threads, anyio.create_task_group() as services:
        refusals = Refusals(store, TelegramOutbox(senders, Metrics()))
        services.start_soon(refusals.run)
        delivery = Delivery(threads, store, refusals, frozenset(), list, usage=gate)
        yield Parts(store, delivery, got, sent)
        refusals.close()
    store.close()


async def test_a_replay_reads_the_store_once_and_hands_each_thread_its_entries_in_order(
    tmp_path: Path,
) -> None:
    async with replaying(tmp_path) as parts:
        keys = [ThreadKey(7000 + n) for n in range(CHATS)]
        held = keys[::2]  # their records hold their entries: the runs had started
        for key in keys:
            await parts.accept(key, 1)
        for key in held:
            await parts.store.save(key, ThreadRecord("s", in_flight=(PendingInput(1, "hi"),)))
        busy = keys[1]  # a thread without a record, with more messages waiting
        for message_id in (2, 3, 4):
            await parts.accept(busy, message_id)
        reads = parts.store.statistics().reads
        replayed = await parts.delivery.replay()
        assert parts.store.statistics().reads == reads + 1, "one read for all the entries"
        assert replayed == CHATS - len(held) + 3
        expected = {key: ["resume"] if key in held else [1] for key in keys}
        expected[busy] = [1, 2, 3, 4]
        await wait_until(lambda: parts.got == expected, timeout=10)


async def test_a_users_replayed_messages_are_counted_one_after_another_against_a_limit(
    tmp_path: Path,
) -> None:
    """Threads are replayed side by side, but never two of one user's messages: each is
    counted before the next is checked, so a daily limit lets exactly as many through as
    it allows, whichever threads they were sent in."""
    limit, threads = 3, 2 * REPLAY_LANES
    async with replaying(tmp_path, LimitsConfig(user_daily_messages=limit)) as parts:
        keys = [ThreadKey(-8000 - n) for n in range(threads)]  # groups the user writes in
        for key in keys:
            await parts.accept(key, 1, user_id=99)
        others = [ThreadKey(9000 + n) for n in range(threads)]  # one message each
        for key in others:
            await parts.accept(key, 1, user_id=key.chat_id)
        assert await parts.delivery.replay() == 2 * threads
        await wait_until(lambda: sum(map(len, parts.got.values())) == limit + threads)
        assert [key for key in keys if parts.got.get(key)] == keys[:limit], "the oldest"
        assert all(parts.got[key] == [1] for key in others)
        for key in keys[limit:]:
            assert await parts.store.outcomes(key) == [(1, "limited")]
        await wait_until(lambda: len(parts.sent) == threads - limit)  # told why
