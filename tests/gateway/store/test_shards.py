"""Replicas' needs of the store, on both databases: inbox entries by shard, the fence on
every thread write, the database's clock."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import anyio
import attrs
import pytest

from actors.thread.records import Concluded, Outcome, PendingInput, ThreadKey, ThreadRecord
from actors.thread.settings import Activation
from gateway.cluster.shards import SHARDS, shard_of
from gateway.exceptions import ShardMovedError
from gateway.store import open_store
from gateway.store.fence import Connection
from gateway.store.sqlite import InboxEntry, Store
from tests.gateway.store.conftest import Location, raw

pytestmark = pytest.mark.anyio


def chats_in_distinct_shards(count: int) -> list[int]:
    chats: dict[int, int] = {}
    chat = -1000
    while len(chats) < count:
        chats.setdefault(shard_of(chat), chat)
        chat -= 1
    return list(chats.values())


def entry(update_id: int, chat: int) -> InboxEntry:
    payload = {"kind": "message", "message_id": update_id, "text": "hi", "user_id": 1}
    return InboxEntry(update_id, ThreadKey(chat), update_id, payload)


async def test_unanswered_entries_are_read_by_shard(location: Location) -> None:
    a, b, c = chats_in_distinct_shards(3)
    store = Store(location)
    try:
        for update_id, chat in ((1, a), (2, b), (3, a), (4, c)):
            await store.accept(entry(update_id, chat))
        await store.record_outcome(ThreadKey(a), 3, Outcome.ANSWERED, "")
        assert [e.update_id for e in await store.unanswered()] == [1, 2, 4]
        assert await store.unanswered(shards={shard_of(a)}) == [entry(1, a)]
        mine = await store.unanswered(shards=[shard_of(c), shard_of(b)])
        assert [e.update_id for e in mine] == [2, 4], "in update_id order"
        assert await store.unanswered(shards=()) == []
        with raw(location) as db:
            rows = db.execute("SELECT chat_id, shard FROM inbox ORDER BY update_id").fetchall()
        assert [(int(chat), int(shard)) for chat, shard in rows] == [
            (chat, shard_of(chat)) for chat in (a, b, a, c)
        ]
        assert all(0 <= int(shard) < SHARDS for _, shard in rows)
    finally:
        store.close()


async def test_a_replay_reads_the_entries_and_what_their_records_hold_in_one_read(
    location: Location,
) -> None:
    a, b, c = chats_in_distinct_shards(3)
    store = Store(location)
    try:
        for update_id, chat in ((1, a), (2, b), (3, a), (4, c), (5, a)):
            await store.accept(entry(update_id, chat))
        # a's record holds 1 in flight and 3 queued (5 never reached it); b has no record;
        # c's record holds something else (4 never reached it).
        running = (PendingInput(1, "hi"),)
        await store.save(
            ThreadKey(a), ThreadRecord("sa", in_flight=running, queued=(PendingInput(3, "hi"),))
        )
        await store.save(ThreadKey(c), ThreadRecord("sc", queued=(PendingInput(99, "old"),)))
        reads = store.statistics().reads
        pending = await store.pending()
        assert store.statistics().reads == reads + 1, "one read, whatever the count"
        assert pending.entries == await store.unanswered()
        assert dict(pending.held) == {ThreadKey(a): {1, 3}, ThreadKey(c): {99}}
        assert [e.update_id for e in pending.entries if pending.is_held(e)] == [1, 3]
        mine = await store.pending(shards={shard_of(a), shard_of(b)})
        assert [e.update_id for e in mine.entries] == [1, 2, 3, 5]
        assert set(mine.held) == {ThreadKey(a)}, "only the records of the entries read"
        assert (await store.pending(shards=())).entries == []
    finally:
        store.close()


async def test_a_file_from_before_shards_gets_its_entries_shard(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    a, b = chats_in_distinct_shards(2)
    with contextlib.closing(sqlite3.connect(path)) as old, old:
        old.execute(
            "CREATE TABLE inbox (update_id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,"
            " thread_key TEXT NOT NULL, message_id INTEGER NOT NULL, payload TEXT NOT NULL,"
            " received_at REAL NOT NULL, outcome TEXT, detail TEXT, album_of INTEGER)"
        )
        for update_id, chat in ((1, a), (2, b)):
            old.execute(
                "INSERT INTO inbox VALUES (?, ?, ?, ?, '{}', 0, NULL, NULL, NULL)",
                (update_id, chat, str(ThreadKey(chat)), update_id),
            )
    store = Store(path)
    try:
        assert [e.update_id for e in await store.unanswered(shards={shard_of(b)})] == [2]
    finally:
        store.close()


@attrs.define
class ShardFence:
    """A fence that holds some shards and refuses the others; it marks every check in the
    write's own transaction (a row of ``activations``), so a refused write's mark is rolled
    back with it."""

    held: set[int]
    checked: list[int] = attrs.field(factory=list)

    def check(self, db: Connection, shard: int) -> None:
        self.checked.append(shard)
        db.execute(
            "INSERT INTO activations (conversation, mode) VALUES (?, 'fence')"
            " ON CONFLICT (conversation) DO NOTHING",
            (f"fence-{shard}-{len(self.checked)}",),
        )
        if shard not in self.held:
            raise ShardMovedError(shard, 3, "replica-b")


def marks(location: Location) -> int:
    with raw(location) as db:
        row = db.execute("SELECT COUNT(*) FROM activations WHERE mode = 'fence'").fetchone()
    return int(row[0])


async def test_every_thread_write_asks_the_fence_and_a_refusal_writes_nothing(
    location: Location,
) -> None:
    mine, theirs = chats_in_distinct_shards(2)
    fence = ShardFence({shard_of(mine)})
    store = Store(location, fence=fence)
    here, there = ThreadKey(mine), ThreadKey(theirs)
    try:
        for update_id, chat in ((1, mine), (2, theirs)):
            await store.accept(entry(update_id, chat))  # not a thread's write: no fence
        assert fence.checked == []
        await store.save(here, ThreadRecord("s1"), [Concluded(1, Outcome.ANSWERED)])
        await store.record_outcome(here, 1, Outcome.PARKED, "")
        await store.save_activation(ThreadKey(mine, 5), Activation.ALWAYS)
        assert fence.checked == [shard_of(mine)] * 3
        assert marks(location) == 3, "the fence ran in the writes' transactions"
        with pytest.raises(ShardMovedError) as moved:
            await store.save(there, ThreadRecord("s2"), [Concluded(2, Outcome.ANSWERED)])
        assert (moved.value.shard, moved.value.owner) == (shard_of(theirs), "replica-b")
        with pytest.raises(ShardMovedError):
            await store.record_outcome(there, 2, Outcome.ANSWERED, "")
        with pytest.raises(ShardMovedError):
            await store.save_activation(ThreadKey(theirs, 5), Activation.ALWAYS)
        assert await store.load(there) is None
        assert await store.outcomes(there) == []
        assert await store.load_activation(ThreadKey(theirs, 5)) is None
        assert [e.update_id for e in await store.unanswered()] == [2], "still unanswered"
        # The intake's own conclusion of an update it received (not addressed to the bot)
        # is no thread's: any replica may write it, whoever holds the chat.
        await store.record_outcome(there, 2, Outcome.NOT_ADDRESSED, "intake", fenced=False)
        assert await store.outcomes(there) == [(2, Outcome.NOT_ADDRESSED.value)]
        assert await store.unanswered() == [], "it closed its inbox entry"
        assert marks(location) == 3, (
            "a refused write's statements were rolled back, the fence's too"
        )
        assert await store.load(here) == ThreadRecord("s1")
    finally:
        store.close()


async def test_a_refused_write_among_others_at_once_fails_alone(location: Location) -> None:
    chats = chats_in_distinct_shards(6)
    refused = chats[2]
    store = Store(location, fence=ShardFence({shard_of(c) for c in chats} - {shard_of(refused)}))
    errors: dict[int, BaseException] = {}

    async def save(chat: int) -> None:
        try:
            await store.save(ThreadKey(chat), ThreadRecord(f"s{chat}"))
        except ShardMovedError as error:
            errors[chat] = error

    try:
        async with anyio.create_task_group() as group:
            for chat in chats:
                group.start_soon(save, chat)
        assert set(errors) == {refused}
        for chat in chats:
            expected = None if chat == refused else ThreadRecord(f"s{chat}")
            assert await store.load(ThreadKey(chat)) == expected
    finally:
        store.close()


async def test_the_database_tells_the_time_and_its_kind(location: Location) -> None:
    store = Store(location, clock=lambda: 1234.5)
    try:
        if store.dialect == "sqlite":
            assert (store.shared, await store.now()) == (False, 1234.5), "the store's clock"
        else:
            assert store.dialect == "postgresql"
            assert store.shared
            before = time.time()
            now = await store.now()
            assert before - 5 < now < time.time() + 5, "the server's wall clock, not the store's"
    finally:
        store.close()


def test_open_store_chooses_the_database_from_the_url(tmp_path: Path, postgres_url: str) -> None:
    on_sqlite = open_store("", tmp_path)
    on_postgres = open_store(postgres_url, tmp_path)
    try:
        assert (on_sqlite.dialect, on_postgres.dialect) == ("sqlite", "postgresql")
        assert (tmp_path / "threadgate.sqlite3").is_file()
    finally:
        on_sqlite.close()
        on_postgres.close()
