"""The replica's leases, as a service: heartbeat, renewals, balance, handoffs.

Every round (:meth:`ReplicaLeases.tick`, every ``ttl / 3`` in :meth:`ReplicaLeases.run`)
heartbeats, renews what the replica holds and its named leases (one transaction), then
takes its share of the free or expired shards, and drains and releases its excess.

Rules:

* A shard whose renewal does not match (somebody took it at a higher epoch) is lost at
  once: it leaves :meth:`~ReplicaLeases.held` and ``on_lost`` is told, with a log line.
* A shard is sendable (:meth:`~ReplicaLeases.sendable`) only until ``renewed_at + ttl -
  margin`` on the local monotonic clock, where ``renewed_at`` is when the round that last
  renewed it started (before the database's clock was read): a paused or cut-off replica
  stops sending before its lease can expire in the database, thus before anyone else can
  take the shard over. Named leases (:meth:`~ReplicaLeases.leads`) lapse the same way.
* A round that fails (the store is unavailable) is logged and retried next round; a shard
  not renewed within ``ttl`` is then dropped as lost (somebody may have taken it).
* Excess shards are released gracefully: ``drain(shard)`` first (new input waits, running
  turns finish or are interrupted), bounded by ``drain_timeout``; then the row is freed and
  ``on_lost`` told. A drain that fails or overruns is logged, and the shard released.
* Two processes under one replica id (a restart while the old process is stuck, then
  resumes): the later one keeps the id (its heartbeat wins); the older one steps down at
  its next round, releasing what it still holds, with a log line.
* :meth:`~ReplicaLeases.leave` drains and releases everything, named leases too, and
  removes the heartbeat: the others take the shards on their next round.
* Hooks that raise are logged and do not stop the rounds.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol, runtime_checkable

import anyio
import attrs
from loguru import logger

from gateway.cluster import leases as sql
from gateway.cluster.balance import plan
from gateway.cluster.fence import LeaseFence
from gateway.cluster.records import LeaseStatistics, LeaseStatus, spans
from gateway.cluster.schema import LeaseStore
from gateway.cluster.shards import shard_of
from gateway.exceptions import StoreUnavailableError
from gateway.store.fence import Connection

ShardHook = Callable[[int], Awaitable[None]]
NameHook = Callable[[str, bool], Awaitable[None]]
POLLER = "poller"
"""The named lease of the one replica that polls Telegram's getUpdates."""


@runtime_checkable
class WallClock(Protocol):
    """A store that tells the database's wall clock (``Store.now()``)."""

    async def now(self) -> float: ...


_Renewed = tuple[set[int], dict[str, int | None], tuple[str, ...], list[sql.Lease]]


@attrs.define
class _Held:
    epoch: int
    renewed_at: float


async def _nothing(_shard: int) -> None:
    return None


async def _no_name(_name: str, _held: bool) -> None:
    return None


class ReplicaLeases:
    """One replica's leases on the shards and on the named leases.

    Args:
        store: the shared store (``Store.read`` / ``Store.write``).
        replica_id: this replica's id (the owner written into the rows).
        ttl: the leases' time to live, in seconds; rounds run every ``ttl / 3``.
        wall: the database's wall clock (default ``store.now``).
        on_gained: told each shard taken (after the row says so).
        on_lost: told each shard no longer held: lost, lapsed or released.
        drain: awaited before a shard is released (bounded by ``drain_timeout``).
        on_leading: told ``(name, True)`` when a named lease is taken, ``(name, False)``
            when it is lost or released.
        names: the named leases this replica competes for.
        fence: a fence to bind to these leases (the store's).
        margin: how long before the TTL a shard stops being sendable (default ``ttl / 5``).
        drain_timeout: the bound of a drain (default ``ttl / 4``).
        incarnation: this process's token (default random): of two processes under one
            replica id, the one that started later (then the greater token) keeps the id,
            and the other steps down at its next round.
    """

    def __init__(
        self,
        store: LeaseStore,
        replica_id: str,
        ttl: float,
        *,
        wall: Callable[[], Awaitable[float]] | None = None,
        on_gained: ShardHook = _nothing,
        on_lost: ShardHook = _nothing,
        drain: ShardHook = _nothing,
        on_leading: NameHook = _no_name,
        names: Collection[str] = (POLLER,),
        fence: LeaseFence | None = None,
        margin: float | None = None,
        drain_timeout: float | None = None,
        incarnation: str | None = None,
    ) -> None:
        if wall is None:
            if not isinstance(store, WallClock):
                raise TypeError("the store tells no wall clock (Store.now): pass wall=")
            wall = store.now
        self._store = store
        self._id = replica_id
        self._ttl = ttl
        self._wall = wall
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._drain = drain
        self._on_leading = on_leading
        self._names = tuple(names)
        self._margin = ttl / 5 if margin is None else margin
        self._drain_timeout = ttl / 4 if drain_timeout is None else drain_timeout
        self._held: dict[int, _Held] = {}
        self._named: dict[str, _Held] = {}
        self._live: tuple[str, ...] = ()
        self._renewed_at: float | None = None
        self._started_at: float | None = None  # the database's clock at the first round
        self._incarnation = incarnation if incarnation is not None else uuid.uuid4().hex
        self._busy: anyio.Event | None = None
        self._leaving = False
        self._counts = dict.fromkeys(attrs.fields_dict(LeaseStatistics), 0)
        if fence is not None:
            fence.bind(self.epoch)

    # -- what the replica asks -----------------------------------------------------------

    @property
    def replica_id(self) -> str:
        return self._id

    def held(self) -> frozenset[int]:
        """The shards this replica holds (as its last round saw them)."""
        return frozenset(self._held)

    def owns(self, shard: int) -> bool:
        return shard in self._held

    def epoch(self, shard: int) -> int | None:
        """The epoch this replica holds ``shard`` at, or ``None``."""
        held = self._held.get(shard)
        return None if held is None else held.epoch

    def valid(self, shard: int) -> bool:
        """Whether ``shard`` is held and within its local validity (may send; also while
        it drains before a release, so running turns can finish)."""
        held = self._held.get(shard)
        return held is not None and self._within(held)

    def sendable(self, chat_id: int) -> bool | None:
        """Whether a thread of this replica may send to ``chat_id`` now (``ChatSender``'s
        ``sendable``): ``True`` while its shard is :meth:`valid`; ``None`` while held but
        lapsed on the local clock (the next round renews it or loses it); ``False`` once the
        shard is not held here (another replica may hold it)."""
        shard = shard_of(chat_id)
        if shard not in self._held:
            return False
        return True if self.valid(shard) else None

    def leads(self, name: str) -> bool:
        """Whether this replica holds the named lease and it is within its validity (not
        once it is leaving: the poller stops at once)."""
        held = self._named.get(name)
        return held is not None and not self._leaving and self._within(held)

    def live_replicas(self) -> tuple[str, ...]:
        """The live replicas the last round saw, sorted."""
        return self._live

    def status(self) -> LeaseStatus:
        now = anyio.current_time()
        return LeaseStatus(
            replica_id=self._id,
            ttl=self._ttl,
            shards=tuple(sorted((s, h.epoch) for s, h in self._held.items())),
            sendable=sum(self._within(h) for h in self._held.values()),
            leading=tuple(sorted(n for n in self._named if self.leads(n))),
            live_replicas=self._live,
            renewed_ago=None if self._renewed_at is None else now - self._renewed_at,
            leaving=self._leaving,
        )

    def statistics(self) -> LeaseStatistics:
        return LeaseStatistics(**self._counts)

    def _within(self, held: _Held) -> bool:
        return anyio.current_time() < held.renewed_at + self._ttl - self._margin

    # -- rounds --------------------------------------------------------------------------

    async def run(self) -> None:
        """Run a round every ``ttl / 3`` until :meth:`leave` (or cancellation)."""
        while not self._leaving:
            await self.tick()
            await anyio.sleep(self._ttl / 3)

    async def tick(self) -> None:
        """One round: heartbeat and renew, then take and release (see the module's rules)."""
        if self._leaving or self._busy is not None:
            return
        self._busy = anyio.Event()
        try:
            self._counts["rounds"] += 1
            await self._round()
        except StoreUnavailableError as error:
            self._counts["failed_rounds"] += 1
            logger.warning(
                "replica {r}: lease round failed (retried in {s:.1f}s): {e}",
                r=self._id,
                s=self._ttl / 3,
                e=error,
            )
            await self._lapse()
        finally:
            self._busy.set()
            self._busy = None

    async def leave(self) -> None:
        """Stop taking shards, drain and release every shard and named lease, and remove the
        heartbeat (a graceful stop). Rows it cannot release expire within the TTL."""
        self._leaving = True
        while self._busy is not None:
            await self._busy.wait()
        self._busy = anyio.Event()
        try:
            await self._stand_down(forget=True)
        finally:
            self._busy.set()
            self._busy = None
        logger.info("replica {r} left: its shards are free", r=self._id)

    async def _stand_down(self, *, forget: bool) -> None:
        self._leaving = True
        named = {name: held.epoch for name, held in self._named.items()}
        me, incarnation = self._id, self._incarnation

        def write(db: Connection) -> None:
            for name, epoch in named.items():
                sql.release_named(db, name, me, epoch)
            if forget:
                sql.forget_replica(db, me, incarnation)

        try:
            await self._release(tuple(sorted(self._held)), "leaving")
            await self._store.write(write, atomic=True)
        except StoreUnavailableError as error:
            logger.warning(
                "replica {r}: could not release its leases (they expire within {t}s): {e}",
                r=me,
                t=self._ttl,
                e=error,
            )
        for shard in sorted(self._held):
            await self._lose(shard, "left without releasing it")
        for name in list(self._named):
            del self._named[name]
            await self._call(self._on_leading, name, False)

    async def _round(self) -> None:
        started = anyio.current_time()
        now = await self._wall()
        held = {shard: h.epoch for shard, h in self._held.items()}
        named = {name: h.epoch for name, h in self._named.items()}
        me, ttl = self._id, self._ttl

        if self._started_at is None:
            self._started_at = now
        since, incarnation = self._started_at, self._incarnation

        def renew(db: Connection) -> _Renewed | None:
            if not sql.heartbeat(db, me, incarnation, since, now):
                return None  # a newer process took this replica id
            kept = sql.renew_all(db, held, me, now, ttl)
            names: dict[str, int | None] = {}
            for name in self._names:
                if name in named:
                    ok = sql.renew_named(db, name, me, named[name], now, ttl)
                    names[name] = named[name] if ok else None
                else:
                    names[name] = sql.acquire_named(db, name, me, now, ttl)
            return kept, names, sql.live_replicas(db, now, ttl), sql.shard_leases(db)

        renewed = await self._store.write(renew, atomic=True)
        if renewed is None:
            logger.error(
                "replica {r}: a newer process runs under this replica id: stepping down",
                r=me,
            )
            await self._stand_down(forget=False)
            return
        kept, names, live, rows = renewed
        self._renewed_at = started
        self._live = live
        for shard in held:
            if shard in kept:
                self._held[shard].renewed_at = started
            else:
                await self._lose(shard, "taken over")
        await self._update_named(names, started)
        todo = plan(me, live, rows, self._held.keys(), now)
        if todo.acquire:
            wanted = todo.acquire

            def take(db: Connection) -> dict[int, int]:
                return sql.acquire_all(db, wanted, me, now, ttl)

            got = await self._store.write(take, atomic=True)
            for shard, epoch in sorted(got.items()):
                self._held[shard] = _Held(epoch, started)
            self._counts["acquired"] += len(got)
            if got:
                logger.info("replica {r} took {n} shard(s): {s}", r=me, n=len(got), s=sorted(got))
            for shard in sorted(got):
                await self._call(self._on_gained, shard)
        if todo.release:
            await self._release(todo.release, "rebalancing")

    async def _update_named(self, names: dict[str, int | None], started: float) -> None:
        for name, epoch in names.items():
            had = name in self._named
            if epoch is None:
                if had:
                    del self._named[name]
                    logger.warning("replica {r} lost the {n} lease", r=self._id, n=name)
                    await self._call(self._on_leading, name, False)
                continue
            self._named[name] = _Held(epoch, started)
            if not had:
                logger.info("replica {r} holds the {n} lease", r=self._id, n=name)
                await self._call(self._on_leading, name, True)

    async def _lapse(self) -> None:
        """After a failed round: drop what was not renewed within the TTL."""
        now = anyio.current_time()
        for shard, held in sorted(self._held.items()):
            if now >= held.renewed_at + self._ttl:
                await self._lose(shard, "not renewed within the TTL")
        for name, held in list(self._named.items()):
            if now >= held.renewed_at + self._ttl:
                del self._named[name]
                logger.warning("replica {r} lost the {n} lease: lapsed", r=self._id, n=name)
                await self._call(self._on_leading, name, False)

    async def _lose(self, shard: int, why: str) -> None:
        held = self._held.pop(shard)
        self._counts["lost"] += 1
        logger.warning(
            "replica {r} lost shard {s} (epoch {e}): {w}", r=self._id, s=shard, e=held.epoch, w=why
        )
        await self._call(self._on_lost, shard)

    async def _release(self, shards: tuple[int, ...], why: str) -> None:
        """Drain ``shards`` (at once, each bounded), then free their rows."""
        if not shards:
            return
        async with anyio.create_task_group() as group:
            for shard in shards:
                group.start_soon(self._drained, shard)
        epochs = {s: self._held[s].epoch for s in shards if s in self._held}
        me = self._id

        def free(db: Connection) -> set[int]:
            return sql.release_all(db, epochs, me)

        freed = await self._store.write(free, atomic=True)
        for shard in sorted(epochs):
            if shard not in freed:
                await self._lose(shard, "taken over while draining")
                continue
            del self._held[shard]
            self._counts["released"] += 1
            await self._call(self._on_lost, shard)
        if freed:
            logger.info(
                "replica {r} released {n} shard(s) ({w}): {s}",
                r=me,
                n=len(freed),
                w=why,
                s=spans(freed),
            )

    async def _drained(self, shard: int) -> None:
        with anyio.move_on_after(self._drain_timeout) as scope:
            try:
                await self._drain(shard)
            except Exception as error:  # noqa: BLE001 - logged; the shard is released anyway
                self._counts["drains_failed"] += 1
                logger.error(
                    "replica {r}: drain of shard {s} failed: {e!r}", r=self._id, s=shard, e=error
                )
        if scope.cancelled_caught:
            self._counts["drains_overrun"] += 1
            logger.warning(
                "replica {r}: drain of shard {s} overran {t:.1f}s: released anyway",
                r=self._id,
                s=shard,
                t=self._drain_timeout,
            )

    async def _call(self, hook: Callable[..., Awaitable[None]], *args: object) -> None:
        try:
            await hook(*args)
        except Exception:  # noqa: BLE001 - a hook's bug must not stop the leases
            logger.opt(exception=True).error(
                "replica {r}: lease hook {h} failed for {a}", r=self._id, h=hook, a=args
            )
