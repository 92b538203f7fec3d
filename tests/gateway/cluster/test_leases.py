"""The lease protocol on a real SQLite store: statements, balance, fence and the service."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from gateway.cluster import leases as sql
from gateway.cluster.balance import homes, plan, targets
from gateway.cluster.fence import LeaseFence
from gateway.cluster.leases import Lease
from gateway.cluster.manager import POLLER, ReplicaLeases
from gateway.cluster.schema import ensure
from gateway.cluster.shards import SHARDS, shard_of
from gateway.exceptions import ShardMovedError, StoreUnavailableError
from gateway.store.fence import Connection
from gateway.store.sqlite import Store

pytestmark = pytest.mark.anyio
TTL = 0.5


@attrs.define
class Wall:
    """The database's wall clock, moved by the test."""

    at: float = 1000.0

    async def now(self) -> float:
        return self.at


@attrs.define
class Hooks:
    """What a replica's hooks were told, in order."""

    events: list[tuple[str, object]] = attrs.field(factory=list)

    async def gained(self, shard: int) -> None:
        self.events.append(("gained", shard))

    async def lost(self, shard: int) -> None:
        self.events.append(("lost", shard))

    async def drain(self, shard: int) -> None:
        self.events.append(("drain", shard))

    async def leading(self, name: str, held: bool) -> None:
        self.events.append(("leading" if held else "not leading", name))

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.events if k == kind)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "db.sqlite3")
    yield store
    store.close()


def replica(store: Store, name: str, wall: Wall, hooks: Hooks, **kwargs: object) -> ReplicaLeases:
    options: dict[str, object] = {
        "wall": wall.now,
        "on_gained": hooks.gained,
        "on_lost": hooks.lost,
        "drain": hooks.drain,
        "on_leading": hooks.leading,
    }
    return ReplicaLeases(store, name, TTL, **(options | kwargs))  # type: ignore[arg-type]


def rows(store: Store) -> list[Lease]:
    db = store._writer._db
    return sql.shard_leases(db)


# -- balance (pure) ----------------------------------------------------------------------


def test_targets_share_the_shards_fairly_in_id_order() -> None:
    assert targets(["c", "a", "b"], SHARDS) == {"a": 86, "b": 85, "c": 85}
    assert targets([], SHARDS) == {}
    assert sum(targets([str(i) for i in range(7)], SHARDS).values()) == SHARDS
    assert homes(["b", "a"], 10) == {"a": range(0, 5), "b": range(5, 10)}


def test_a_plan_takes_only_free_or_expired_shards_home_first() -> None:
    leases = [
        Lease(0, "", 0, 0.0),
        Lease(1, "b", 3, 50.0),  # b holds it, valid: never taken from b
        Lease(2, "b", 3, 9.0),  # expired
        Lease(3, "", 1, 0.0),
    ]
    taken = plan("b", ["a", "b"], leases, held=(), now=10.0)
    assert taken.acquire == (2, 3)
    assert taken.release == ()
    assert plan("a", ["a", "b"], leases, held=(), now=10.0).acquire == (0, 2)
    alone = plan("a", ["a"], leases, held=(), now=10.0)
    assert alone.acquire == (0, 2, 3)  # 1 is b's until it expires, whatever a's share
    over = plan("a", ["a", "b"], leases, held=(0, 2, 3), now=10.0)
    assert over.acquire == ()
    assert over.release == (3,)


# -- statements and fence ----------------------------------------------------------------


async def test_acquire_bumps_the_epoch_and_renew_and_release_need_it(store: Store) -> None:
    await ensure(store, "sqlite")
    await ensure(store, "sqlite")  # idempotent
    assert len(rows(store)) == SHARDS

    def steps(db: Connection) -> list[object]:
        return [
            sql.acquire(db, 5, "a", 100.0, 10.0),  # epoch 1
            sql.acquire(db, 5, "b", 105.0, 10.0),  # held by a: refused
            sql.renew(db, 5, "a", 1, 105.0, 10.0),
            sql.acquire(db, 5, "b", 114.0, 10.0),  # renewed to 115: still a's
            sql.acquire(db, 5, "b", 115.0, 10.0),  # expired: b, epoch 2
            sql.renew(db, 5, "a", 1, 116.0, 10.0),  # a lost it
            sql.release(db, 5, "a", 1),
            sql.holder(db, 5),
            sql.release(db, 5, "b", 2),
            sql.acquire(db, 5, "a", 116.0, 10.0),  # free: a again, epoch 3
            sql.acquire(db, 5, "a", 126.0, 10.0),  # expired: a again (a restart), epoch 4
            sql.renew(db, 5, "a", 3, 127.0, 10.0),  # the same id at an older epoch: lost
            sql.release(db, 5, "a", 3),
        ]

    assert await store.write(steps, atomic=True) == [
        1, None, True, None, 2, False, False, ("b", 2), True, 3, 4, False, False
    ]  # fmt: skip


async def test_the_fence_passes_only_the_holder_at_its_epoch(store: Store) -> None:
    await ensure(store, "sqlite")
    mine: dict[int, int] = {}
    fence = LeaseFence("a", "sqlite")
    with pytest.raises(ShardMovedError):  # not bound: holds nothing
        await store.write(lambda db: fence.check(db, 3), atomic=True)
    fence.bind(mine.get)
    epoch = await store.write(lambda db: sql.acquire(db, 3, "a", 0.0, 10.0))
    assert epoch == 1
    mine[3] = epoch
    await store.write(lambda db: fence.check(db, 3), atomic=True)
    await store.write(lambda db: sql.acquire(db, 3, "a", 20.0, 10.0))  # a again: epoch 2
    with pytest.raises(ShardMovedError) as moved:
        await store.write(lambda db: fence.check(db, 3), atomic=True)
    assert (moved.value.shard, moved.value.epoch, moved.value.owner) == (3, 1, "a")
    assert fence.refused == 2


# -- the service -------------------------------------------------------------------------


async def test_a_joining_replica_gets_its_share_after_a_graceful_handoff(store: Store) -> None:
    await ensure(store, "sqlite")
    wall, ha, hb = Wall(), Hooks(), Hooks()
    a, b = replica(store, "a", wall, ha), replica(store, "b", wall, hb)
    await a.tick()
    assert a.held() == frozenset(range(SHARDS))
    assert ha.count("gained") == SHARDS
    assert a.leads(POLLER)
    assert ("leading", POLLER) in ha.events
    await b.tick()  # heartbeats: nothing is free yet
    assert b.held() == frozenset()
    assert b.live_replicas() == ("a", "b")
    await a.tick()  # a's share is now 128: drains and releases b's home
    assert a.held() == frozenset(range(128))
    assert ha.count("drain") == ha.count("lost") == 128
    await b.tick()
    assert b.held() == frozenset(range(128, 256))
    assert {b.epoch(s) for s in b.held()} == {2}
    assert not b.leads(POLLER)  # a still holds it
    assert a.statistics().released == 128
    assert b.statistics().acquired == 128
    status = b.status()
    assert status.replica_id == "b"
    assert len(status.shards) == 128
    assert status.sendable == 128


async def test_a_dead_replicas_shards_are_taken_over_at_a_higher_epoch(store: Store) -> None:
    await ensure(store, "sqlite")
    wall, ha, hb = Wall(), Hooks(), Hooks()
    fence_a, fence_b = LeaseFence("a", "sqlite"), LeaseFence("b", "sqlite")
    a = replica(store, "a", wall, ha, fence=fence_a)
    b = replica(store, "b", wall, hb, fence=fence_b)
    await a.tick()
    await b.tick()
    assert b.held() == frozenset()
    assert a.leads(POLLER)
    wall.at += TTL  # a stopped renewing: its leases and heartbeat expire
    await b.tick()
    assert b.live_replicas() == ("b",)
    assert b.held() == frozenset(range(SHARDS))
    assert b.leads(POLLER)
    await store.write(lambda db: fence_b.check(db, 9), atomic=True)
    with pytest.raises(ShardMovedError):  # a still believes it holds the shard
        await store.write(lambda db: fence_a.check(db, 9), atomic=True)
    await a.tick()  # back: every renewal fails
    assert a.held() == frozenset()
    assert ha.count("lost") == SHARDS
    assert ("not leading", POLLER) in ha.events
    assert not a.leads(POLLER)
    assert a.statistics().lost == SHARDS


async def test_a_shard_stops_being_sendable_before_its_lease_can_expire(store: Store) -> None:
    await ensure(store, "sqlite")
    wall, hooks = Wall(), Hooks()
    a = replica(store, "a", wall, hooks)
    chat = -1001234
    assert not a.sendable(chat)
    assert a.sendable(chat) is False, "not held: never"
    await a.tick()
    assert a.sendable(chat)
    assert a.owns(shard_of(chat))
    assert a.leads(POLLER)
    await anyio.sleep(TTL * 0.85)  # past ttl - margin (ttl / 5), not renewed
    assert not a.sendable(chat)
    assert a.sendable(chat) is None, "held but lapsed: wait for the next round"
    assert not a.leads(POLLER)
    assert a.owns(shard_of(chat))  # still its own: nobody took it
    await a.tick()
    assert a.sendable(chat)


async def test_leave_drains_and_releases_everything(store: Store) -> None:
    await ensure(store, "sqlite")
    wall, ha, hb = Wall(), Hooks(), Hooks()
    a, b = replica(store, "a", wall, ha), replica(store, "b", wall, hb)
    await a.tick()
    await b.tick()
    await a.leave()
    assert a.held() == frozenset()
    assert ha.count("drain") == SHARDS
    assert ("not leading", POLLER) in ha.events
    await a.tick()  # a left: takes nothing
    assert a.held() == frozenset()
    assert a.status().leaving
    await b.tick()
    assert b.live_replicas() == ("b",)
    assert b.held() == frozenset(range(SHARDS))
    assert b.leads(POLLER)


# The store's worker threads look idle to trio's autojumping clock: deadlines that race a
# write run on the real clock only.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_drain_that_hangs_or_fails_is_bounded_and_the_shard_released(
    store: Store,
) -> None:
    await ensure(store, "sqlite")
    wall, ha, hb = Wall(), Hooks(), Hooks()

    async def drain(shard: int) -> None:
        if shard % 2:
            await anyio.sleep_forever()
        raise RuntimeError("the drain failed")

    a = replica(store, "a", wall, ha, drain=drain, drain_timeout=0.05)
    b = replica(store, "b", wall, hb)
    await a.tick()
    await b.tick()
    with anyio.fail_after(5):
        await a.tick()
    stats = a.statistics()
    assert stats.released == 128
    assert stats.drains_overrun == 64
    assert stats.drains_failed == 64
    await b.tick()
    assert len(b.held()) == 128


async def test_a_failing_store_keeps_the_shards_only_within_the_ttl(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3", busy_timeout=0.01)
    await ensure(store, "sqlite")
    wall, hooks = Wall(), Hooks()
    a = replica(store, "a", wall, hooks)
    await a.tick()
    other = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the lock: every write fails
    await a.tick()
    assert a.statistics().failed_rounds == 1
    assert len(a.held()) == SHARDS
    await anyio.sleep(TTL)
    await a.tick()
    assert a.held() == frozenset()
    assert a.statistics().lost == SHARDS
    assert not a.leads(POLLER)
    assert ("not leading", POLLER) in hooks.events
    with pytest.raises(StoreUnavailableError):
        await store.write(lambda db: sql.release(db, 0, "a", 1))
    other.execute("ROLLBACK")
    other.close()
    store.close()


async def test_a_hook_that_raises_does_not_stop_the_rounds(store: Store) -> None:
    await ensure(store, "sqlite")

    async def broken(shard: int) -> None:
        raise RuntimeError(f"hook failed for {shard}")

    a = ReplicaLeases(store, "a", TTL, wall=Wall().now, on_gained=broken)
    await a.tick()
    assert len(a.held()) == SHARDS


# The store's worker threads look idle to trio's autojumping clock: deadlines that race a
# write run on the real clock only.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_run_renews_until_cancelled(store: Store) -> None:
    await ensure(store, "sqlite")
    a = ReplicaLeases(store, "a", TTL, wall=Wall().now)
    with anyio.move_on_after(TTL * 2):
        await a.run()
    assert a.statistics().rounds >= 6
    assert a.sendable(1)


def test_a_store_without_a_wall_clock_needs_one(store: Store) -> None:
    class Reads:
        """Reads and writes like the store, but tells no wall clock."""

        read = store.read
        write = store.write

    with pytest.raises(TypeError):
        ReplicaLeases(Reads(), "a", TTL)
    assert ReplicaLeases(store, "a", TTL).replica_id == "a"  # the store's clock: Store.now


async def test_of_two_processes_under_one_id_the_later_keeps_it(store: Store) -> None:
    await ensure(store, "sqlite")
    wall, old_hooks, new_hooks = Wall(), Hooks(), Hooks()
    old = replica(store, "a", wall, old_hooks, incarnation="1")
    await old.tick()
    wall.at += TTL  # the old process was stuck past its TTL: a new one starts
    new = replica(store, "a", wall, new_hooks, incarnation="2")
    await new.tick()
    assert new.held() == frozenset(range(SHARDS))
    await old.tick()  # it resumes: superseded, it steps down
    assert old.held() == frozenset()
    assert old.status().leaving
    assert old_hooks.count("lost") == SHARDS
    await old.leave()  # does not remove the new process's heartbeat
    await new.tick()
    assert new.live_replicas() == ("a",)
    assert len(new.held()) == SHARDS


async def test_a_stuck_process_cannot_write_once_its_successor_took_the_shard(
    store: Store,
) -> None:
    await ensure(store, "sqlite")
    wall = Wall()
    old_fence, new_fence = LeaseFence("a", "sqlite"), LeaseFence("a", "sqlite")
    old = replica(store, "a", wall, Hooks(), incarnation="1", fence=old_fence)
    await old.tick()
    wall.at += TTL  # stuck past its TTL; a restart under the same id takes over
    new = replica(store, "a", wall, Hooks(), incarnation="2", fence=new_fence)
    await new.tick()
    assert new.epoch(7) == 2
    assert old.epoch(7) == 1  # the stuck one has not noticed
    await store.write(lambda db: new_fence.check(db, 7), atomic=True)
    with pytest.raises(ShardMovedError):
        await store.write(lambda db: old_fence.check(db, 7), atomic=True)


async def test_a_leaving_replica_still_sends_while_it_drains_but_stops_polling(
    store: Store,
) -> None:
    await ensure(store, "sqlite")
    seen: list[tuple[bool, bool]] = []

    async def drain(shard: int) -> None:
        seen.append((a.valid(shard), a.leads(POLLER)))

    a = ReplicaLeases(store, "a", TTL, wall=Wall().now, drain=drain)
    await a.tick()
    assert a.leads(POLLER)
    await a.leave()
    assert len(seen) == SHARDS
    assert set(seen) == {(True, False)}  # running turns may finish; polling stopped
    assert not a.valid(0)
