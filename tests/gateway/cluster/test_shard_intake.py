"""A shard's intake actor: each inbox entry handed to a thread at most once while the shard is
held, nothing while it is not held or drains, and a drain that outlives its bound undone.

Real parts: the intake under a real supervisor, a real ``Delivery`` on the SQLite store, and
thread actors that record what they get (the thread actor itself is not what is tested).
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
from actors.thread.messages import UserMessage
from actors.thread.records import ThreadKey
from gateway.cluster.replica import Replica
from gateway.cluster.shard_intake import Drain, Gained, Lost, Scan, ShardIntake, Take
from gateway.cluster.shards import shard_of
from gateway.media.albums import join
from gateway.ops.metrics import Metrics
from gateway.store import InboxEntry, Store
from gateway.telegram.delivery import Delivery
from gateway.telegram.outbox import TelegramOutbox
from gateway.telegram.refusals import Refusals
from gateway.telegram.routing import Routed, to_payload

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: the store works in threads, which trio's jumping clock does not wait for."""
    return "asyncio"


KEY = ThreadKey(4242)
SHARD = shard_of(KEY.chat_id)


class Recorder(Actor[object]):
    """A thread that notes the message ids it is handed."""

    def __init__(self, got: list[int]) -> None:
        self._got = got

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        if isinstance(message, UserMessage):
            self._got.append(message.message_id)
        return None


class NoSender(Actor[object]):
    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        raise AssertionError(f"nothing is sent here: {message!r}")


@attrs.define
class Parts:
    store: Store
    intake: Supervisor[int]
    got: list[int]
    owned: set[int]

    async def accept(self, update_id: int) -> Routed:
        message = UserMessage(update_id * 10, f"hello {update_id}", 7)
        entry = InboxEntry(update_id, KEY, message.message_id, to_payload(message))
        assert await self.store.accept(entry)
        return Routed(update_id, KEY, message)

    async def tell(self, message: object) -> None:
        await self.intake.ref_for(SHARD).ask(message, timeout=10)


@asynccontextmanager
async def intake(tmp_path: Path, album_hold: float = 10.0) -> AsyncIterator[Parts]:
    store = Store(tmp_path / "threadgate.sqlite3")
    got: list[int] = []
    owned: set[int] = set()
    metrics = Metrics()
    no_senders: Supervisor[int] = Supervisor(lambda _chat: NoSender())
    recorders: Supervisor[ThreadKey] = Supervisor(lambda _key: Recorder(got))
    async with no_senders as senders, recorders as threads:
        refusals = Refusals(store, TelegramOutbox(senders, metrics))
        delivery = Delivery(threads, store, refusals, frozenset(), list)

        shards: Supervisor[int] = Supervisor(
            lambda shard: ShardIntake(shard, delivery, owned.__contains__, album_hold)
        )
        async with shards as intakes:
            yield Parts(store, intakes, got, owned)
        refusals.close()
        await refusals.run()  # nothing was refused: it returns at once
    store.close()


async def settle() -> None:
    await anyio.sleep(0.2)


async def test_an_entry_is_handed_once_while_held_and_never_while_not(tmp_path: Path) -> None:
    async with intake(tmp_path) as parts:
        first = await parts.accept(1)
        await parts.tell(Take(first))  # not held here: it waits in the inbox
        await parts.tell(Scan("notified"))
        await settle()
        assert parts.got == []

        parts.owned.add(SHARD)
        await parts.tell(Gained(3))  # replayed as at a start
        await settle()
        assert parts.got == [10]
        await parts.tell(Take(first))  # told again, scanned again: not handed again
        await parts.tell(Scan("sweep"))
        second = await parts.accept(2)
        await parts.tell(Scan("notified"))  # written by another replica: found by the scan
        await parts.tell(Take(second))
        await settle()
        assert parts.got == [10, 20]


async def test_a_drain_delivers_nothing_until_its_bound_has_passed(tmp_path: Path) -> None:
    async with intake(tmp_path) as parts:
        parts.owned.add(SHARD)
        await parts.tell(Gained(1))
        await parts.tell(Drain(1.0))
        routed = await parts.accept(1)
        await parts.tell(Take(routed))
        await parts.tell(Scan("sweep"))
        await settle()
        assert parts.got == [], "a draining shard's entries wait for its next owner"
        await anyio.sleep(1.0)
        # Still held after the drain's bound (its release failed): it delivers again.
        await parts.tell(Scan("sweep"))
        await settle()
        assert parts.got == [10]


async def test_losing_the_shard_resets_and_a_regain_replays(tmp_path: Path) -> None:
    async with intake(tmp_path) as parts:
        parts.owned.add(SHARD)
        await parts.tell(Gained(1))
        routed = await parts.accept(1)
        await parts.tell(Take(routed))
        await settle()
        assert parts.got == [10]
        parts.owned.discard(SHARD)
        await parts.tell(Lost("taken over"))
        parts.owned.add(SHARD)
        await parts.tell(Gained(5))  # back again: the entry is still unanswered, replayed
        await settle()
        assert parts.got == [10, 10]


async def test_the_replica_evicts_a_lost_shards_threads_itself_and_leftovers_at_a_gain(
    tmp_path: Path,
) -> None:
    """``Replica.lost`` evicts the shard's threads and senders at once, whatever state its
    intake is in; ``Replica.gained`` evicts what an earlier holding left, before replaying."""
    store = Store(tmp_path / "threadgate.sqlite3")
    got: list[int] = []
    owned = {SHARD}
    no_senders: Supervisor[int] = Supervisor(lambda _chat: NoSender())
    recorders: Supervisor[ThreadKey] = Supervisor(lambda _key: Recorder(got))
    async with no_senders as senders, recorders as threads:
        refusals = Refusals(store, TelegramOutbox(senders, Metrics()))
        delivery = Delivery(threads, store, refusals, frozenset(), list)

        async def notify(channel: str, payload: str) -> object:
            raise AssertionError("the shard is held here: nobody is notified")

        replica = Replica(store, threads, senders, delivery, owned.__contains__, notify)
        async with replica.shards:
            other = ThreadKey(next(c for c in range(1, 10_000) if shard_of(c) != SHARD))
            threads.ref_for(KEY).send_nowait(UserMessage(1, "a", 7))
            threads.ref_for(other).send_nowait(UserMessage(2, "b", 7))
            await settle()
            assert KEY in threads
            assert other in threads
            replica.lost(SHARD, "taken over")  # no await: nothing waits for the intake
            assert KEY not in threads, "the lost shard's thread is gone at once"
            assert other in threads, "another shard's thread is not concerned"

            threads.ref_for(KEY).send_nowait(UserMessage(3, "a leftover", 7))
            await settle()
            assert KEY in threads
            replica.gained(SHARD, 9)
            assert KEY not in threads, "a leftover of an earlier holding is evicted first"
        refusals.close()
        await refusals.run()
    store.close()


async def test_an_album_being_collected_is_left_to_its_collector(tmp_path: Path) -> None:
    """A scan inside an album's window leaves its items alone (the replica that received
    them delivers the album whole); once joined it is an entry like any other; items whose
    collector died are replayed, joined, once they are older than the hold."""
    async with intake(tmp_path, album_hold=1.0) as parts:
        parts.owned.add(SHARD)
        await parts.tell(Gained(1))
        first, second = UserMessage(10, "caption", 7), UserMessage(20, "", 7)
        for update_id, item in ((1, first), (2, second)):
            entry = InboxEntry(update_id, KEY, item.message_id, to_payload(item, album="g"))
            assert await parts.store.accept(entry)
        await parts.tell(Scan("sweep"))
        await settle()
        assert parts.got == [], "an album still being collected is not delivered in part"
        await anyio.sleep(1.0)  # its collector is gone: nobody joined it within the hold
        await parts.tell(Scan("sweep"))
        await settle()
        assert parts.got == [10], "replayed once, as one message"
        assert await parts.store.outcomes(KEY) == [], "nothing concluded yet: the thread has it"


async def test_a_joined_album_is_delivered_by_a_scan_at_once(tmp_path: Path) -> None:
    async with intake(tmp_path) as parts:
        parts.owned.add(SHARD)
        await parts.tell(Gained(1))
        first, second = UserMessage(10, "caption", 7), UserMessage(20, "", 7)
        for update_id, item in ((1, first), (2, second)):
            entry = InboxEntry(update_id, KEY, item.message_id, to_payload(item, album="g"))
            assert await parts.store.accept(entry)
        await join(parts.store, KEY, [first, second])  # the collector, elsewhere
        await parts.tell(Scan("notified"))
        await settle()
        assert parts.got == [10]
        assert [e.update_id for e in await parts.store.unanswered({SHARD})] == [1]
