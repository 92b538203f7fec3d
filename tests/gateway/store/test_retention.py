"""Retention: old and done is pruned, live state never (issue 17, item 12). A real file, real
timestamps: the store and the prune are given the wall clock."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import anyio
import attrs
import pytest

from actors.thread.records import (
    Concluded,
    Exchange,
    Outcome,
    PendingInput,
    ThreadKey,
    ThreadRecord,
    Turn,
)
from gateway.config import StoreConfig, load
from gateway.exceptions import ConfigInvalidError
from gateway.store.retention import DAY, Pruned, Retention, keep_pruned
from gateway.store.sqlite import InboxEntry, Store
from tests.gateway.store.conftest import Location

pytestmark = pytest.mark.anyio
KEY = ThreadKey(-100, 2)
RETENTION = Retention.from_config(StoreConfig())


@attrs.define
class WallClock:
    """The wall clock the store writes times with, set by the test."""

    now: float

    def __call__(self) -> float:
        return self.now


def entry(update_id: int) -> InboxEntry:
    payload = {"kind": "message", "message_id": update_id, "text": "hi", "user_id": 1}
    return InboxEntry(update_id, KEY, update_id, payload)


async def test_answered_inbox_entries_and_outcomes_go_after_30_days(location: Location) -> None:
    now = time.time()
    clock = WallClock(now - 100 * DAY)
    store = Store(location, clock=clock)
    for update_id in (1, 2, 3):
        await store.accept(entry(update_id))
    await store.record_outcome(KEY, 1, Outcome.ANSWERED, "")
    await store.record_outcome(KEY, 2, Outcome.PARKED, "")  # still unanswered
    await store.record_outcome(KEY, 3, Outcome.ANSWERED, "")
    pruned = await store.prune(RETENTION, now)
    assert pruned == Pruned(inbox=1, outcomes=2)
    assert await store.unanswered() == [entry(2)], "an unanswered entry stays, whatever its age"
    assert await store.last_update_id() == 3, "the newest stays: polling resumes after it"
    assert await store.outcomes(KEY) == [(2, "parked")], "its outcomes stay with it"

    clock.now = now - 10 * DAY
    await store.accept(entry(4))
    await store.record_outcome(KEY, 4, Outcome.ANSWERED, "")
    assert await store.prune(RETENTION, now) == Pruned(inbox=1)  # 3 is no longer the newest
    assert await store.last_update_id() == 4
    assert await store.outcomes(KEY) == [(2, "parked"), (4, "answered")], "10 days: kept"
    assert await store.accept(entry(4)) is False, "kept entries still dedupe"
    store.close()


async def test_sessions_unused_for_90_days_go_with_their_turns(location: Location) -> None:
    now = time.time()
    clock = WallClock(now - 100 * DAY)
    store = Store(location, clock=clock)
    a, b = ThreadKey(1), ThreadKey(2)

    async def answered(key: ThreadKey, rec: ThreadRecord, message_id: int) -> None:
        turns = (Turn("user", f"q{message_id}"), Turn("assistant", f"a{message_id}"))
        concluded = [Concluded(message_id, Outcome.ANSWERED)]
        await store.save(key, rec, concluded, Exchange(rec.session_id, turns))

    await answered(a, ThreadRecord("a1"), 1)
    await answered(a, ThreadRecord("a2", generation=1), 2)  # a reset: a1 is left behind
    live = ThreadRecord("a2", 1, 2, (), (PendingInput(9, "queued"),))
    await store.save(a, live)  # a thread's live state, idle for 100 days
    clock.now = now - 10 * DAY
    await answered(b, ThreadRecord("b1"), 3)

    pruned = await store.prune(RETENTION, now)
    assert pruned == Pruned(outcomes=2, sessions=1, turns=4)
    assert await store.recent("a1", 10_000) == []
    assert await store.recent("a2", 10_000) == [], "a thread's current session: history goes"
    assert [t.content for t in await store.recent("b1", 10_000)] == ["q3", "a3"]
    assert [s for s, _ in await store.sessions(a)] == ["a2"], "the session a2 goes on"
    assert await store.load(a) == live, "a thread record is never pruned"

    clock.now = now  # a2 answers again: used now, so kept from now on
    await answered(a, ThreadRecord("a2", 1, 3), 4)
    assert await store.prune(RETENTION, now) == Pruned()
    assert [t.content for t in await store.recent("a2", 10_000)] == ["q4", "a4"]
    store.close()


async def test_a_prune_truncates_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    clock = WallClock(time.time() - 100 * DAY)
    store = Store(path, clock=clock)
    for session in range(200):
        turns = (Turn("user", "x" * 4000),)
        await store.save(
            ThreadKey(session), ThreadRecord(f"s{session}"), (), Exchange(f"s{session}", turns)
        )
    wal = tmp_path / "db.sqlite3-wal"
    assert wal.stat().st_size > 800_000
    pruned = await store.prune(RETENTION, time.time())
    assert pruned.turns == 200
    assert wal.stat().st_size == 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone() == (0,)
    store.close()


async def test_the_gateway_prunes_at_start_and_every_interval(location: Location) -> None:
    now = time.time()
    clock = WallClock(now - 100 * DAY)
    store = Store(location, clock=clock)
    for update_id in (1, 2):
        await store.accept(entry(update_id))
        await store.record_outcome(KEY, update_id, Outcome.ANSWERED, "")
    config = StoreConfig(prune_interval=0.2)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(keep_pruned, store, config, lambda: now)
        with anyio.fail_after(5):
            while await store.outcomes(KEY):
                await anyio.sleep(0.02)
        await store.accept(entry(3))
        await store.record_outcome(KEY, 3, Outcome.ANSWERED, "")
        with anyio.fail_after(5):
            while await store.outcomes(KEY):  # the next round
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
    assert await store.last_update_id() == 3
    store.close()


def test_retention_is_configured_in_days_and_zero_keeps_forever() -> None:
    config = load(None, {})
    assert config.store == StoreConfig(
        inbox_retention_days=30.0,
        outcomes_retention_days=30.0,
        session_retention_days=90.0,
        prune_interval=3600.0,
    )
    assert Retention.from_config(config.store) == Retention(30 * DAY, 30 * DAY, 90 * DAY)
    forever = StoreConfig(inbox_retention_days=0)
    assert Retention.from_config(forever).inbox is None


def test_retention_settings_are_read_from_the_file(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text("[store]\ninbox_retention_days = 0\nsession_retention_days = 365\n")
    config = load(file, {})
    assert (config.store.inbox_retention_days, config.store.session_retention_days) == (0, 365)
    file.write_text("[store]\nprune_interval = 0\n")
    with pytest.raises(ConfigInvalidError, match=r"store\.prune_interval"):
        load(file, {})
