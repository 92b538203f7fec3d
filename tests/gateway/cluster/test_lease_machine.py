"""Property test of the lease protocol: replicas join, leave gracefully, pause (stop
ticking), resume, die (never release) and restart under the same id while the old process
is stuck (a zombie that may resume), over a real SQLite store, with drains that work, fail
or hang, while messages are accepted into an inbox, taken by the owners of their shards and
concluded through a fenced write. Time is a fake: the replicas' monotonic clock is trio's
``MockClock`` and the database's wall clock follows it.

Invariants after every step: at most one process can write a shard (pass its fence) at any
time, and every fenced write at one epoch came from one process; a process may send for a
shard only while the database still says it holds it at its epoch, unexpired (so nobody
else could have taken it); epochs never go down; the replicas' hooks agree with what they
hold; no message is concluded twice. And when the live replicas tick for a TTL and a few
rounds, every shard is held by a live replica, each holding its fair share (of two
processes under one id, the later one: the other stood down).
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.cluster import leases as sql
from gateway.cluster.balance import targets
from gateway.cluster.fence import LeaseFence
from gateway.cluster.manager import POLLER, ReplicaLeases
from gateway.cluster.schema import ensure
from gateway.exceptions import ShardMovedError
from gateway.store.fence import Connection
from gateway.store.sqlite import Store
from tests.actors.clocked_loop import ClockedLoop
from tests.strategies import machine_settings, machine_timeout

SHARDS = 6
TTL = 3.0
ROUND = TTL / 3
EPOCH = 1000.0  # the database's wall clock at the loop's time 0
replica_ids = st.sampled_from(["a", "b", "c"])
steps = st.sampled_from([0.2, 0.5, 1.0, 2.0, 3.5])
MACHINE_TABLES = [
    "CREATE TABLE machine_inbox (id INTEGER PRIMARY KEY, shard INTEGER NOT NULL,"
    " concluded INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE machine_conclusions (message INTEGER NOT NULL, shard INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, process TEXT NOT NULL)",
]


@attrs.define(eq=False)
class Process:
    """One gateway process: its replica id, leases, fence, and the messages it took."""

    name: str
    replica_id: str
    leases: ReplicaLeases
    fence: LeaseFence
    state: str = "running"  # running, paused, dead, left
    taken: dict[int, int] = attrs.field(factory=dict)  # message -> shard
    told: set[int] = attrs.field(factory=set)  # the shards its hooks say it holds
    leading: set[str] = attrs.field(factory=set)

    async def gained(self, shard: int) -> None:
        assert shard not in self.told
        self.told.add(shard)

    async def lost(self, shard: int) -> None:
        self.told.remove(shard)
        # The replica steps down from the shard: its threads (and what they took) go.
        self.taken = {m: s for m, s in self.taken.items() if s != shard}

    async def lead(self, name: str, held: bool) -> None:
        (self.leading.add if held else self.leading.discard)(name)


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = ClockedLoop()
        self.folder = Path(tempfile.mkdtemp(prefix="leases-"))
        self.store = Store(self.folder / "db.sqlite3")
        self.loop.call_async(ensure, self.store, "sqlite", SHARDS)

        def tables(db: Connection) -> None:
            for statement in MACHINE_TABLES:
                db.execute(statement)

        self.loop.call_async(self.store.write, tables)
        self.processes: list[Process] = []
        self.serial = itertools.count()
        self.messages = itertools.count()
        self.drains = "ok"
        self.epochs = [0] * SHARDS

    # -- the world -----------------------------------------------------------------------

    async def _wall(self) -> float:
        return EPOCH + anyio.current_time()

    async def _drain(self, _shard: int) -> None:
        if self.drains == "fail":
            raise RuntimeError("scripted: the drain failed")
        if self.drains == "hang":
            await anyio.sleep_forever()

    def _drive(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Await ``func`` on the loop, time jumping whenever every task waits (a hung drain
        runs into its bound); else time moves only in :meth:`advance`."""
        self.loop.portal.call(setattr, self.loop.clock, "autojump_threshold", 0)
        try:
            return self.loop.call_async(func, *args)
        finally:
            self.loop.portal.call(setattr, self.loop.clock, "autojump_threshold", math.inf)

    def _in(self, *states: str) -> list[Process]:
        return [p for p in self.processes if p.state in states]

    # -- rules ---------------------------------------------------------------------------

    @rule(replica_id=replica_ids)
    def a_replica_starts(self, replica_id: str) -> None:
        """A new process; a stuck (paused) one of the same id, if any, stays a zombie."""
        if any(p.replica_id == replica_id for p in self._in("running")):
            return
        serial = next(self.serial)
        name = f"{replica_id}{serial}"
        fence = LeaseFence(replica_id, "sqlite")
        process = Process(name, replica_id, None, fence)  # type: ignore[arg-type]
        process.leases = ReplicaLeases(
            self.store,
            replica_id,
            TTL,
            wall=self._wall,
            on_gained=process.gained,
            on_lost=process.lost,
            drain=self._drain,
            on_leading=process.lead,
            fence=fence,
            drain_timeout=TTL / 10,
            incarnation=f"{serial:04d}",  # a later process, a greater token
        )
        self.processes.append(process)

    @rule(data=st.data())
    def a_stuck_replica_is_restarted(self, data: st.DataObject) -> None:
        """The orchestrator restarts a stuck replica under its id; the old process lives on."""
        paused = self._in("paused")
        if paused:
            self.a_replica_starts(data.draw(st.sampled_from(paused)).replica_id)

    @rule(data=st.data())
    def a_replica_ticks(self, data: st.DataObject) -> None:
        running = self._in("running")
        if running:
            self._drive(data.draw(st.sampled_from(running)).leases.tick)

    @rule()
    def every_running_replica_ticks(self) -> None:
        for process in self._in("running"):
            self._drive(process.leases.tick)

    @rule(seconds=steps)
    def time_passes(self, seconds: float) -> None:
        self.loop.advance(seconds, step=seconds)

    @rule(data=st.data())
    def a_replica_pauses(self, data: st.DataObject) -> None:
        running = self._in("running")
        if running:
            data.draw(st.sampled_from(running)).state = "paused"

    @rule(data=st.data())
    def a_paused_replica_resumes(self, data: st.DataObject) -> None:
        paused = self._in("paused")
        if paused:
            data.draw(st.sampled_from(paused)).state = "running"

    @rule(data=st.data())
    def a_replica_dies(self, data: st.DataObject) -> None:
        alive = self._in("running", "paused")
        if alive:
            data.draw(st.sampled_from(alive)).state = "dead"

    @rule(data=st.data())
    def a_replica_leaves(self, data: st.DataObject) -> None:
        running = self._in("running")
        if running:
            process = data.draw(st.sampled_from(running))
            self._drive(process.leases.leave)
            process.state = "left"
            assert not process.told
            assert not process.leading

    @rule(drains=st.sampled_from(["ok", "ok", "fail", "hang"]))
    def drains_change(self, drains: str) -> None:
        self.drains = drains

    @rule(shard=st.integers(0, SHARDS - 1))
    def a_message_is_accepted(self, shard: int) -> None:
        message = next(self.messages)
        self.loop.call_async(
            self.store.write,
            lambda db: db.execute(
                "INSERT INTO machine_inbox (id, shard) VALUES (?, ?)", (message, shard)
            ),
        )

    @rule(data=st.data())
    def a_replica_takes_its_shards_messages(self, data: st.DataObject) -> None:
        running = self._in("running")
        if not running:
            return
        process = data.draw(st.sampled_from(running))
        rows = self.loop.call_async(
            self.store.read,
            lambda db: db.execute(
                "SELECT id, shard FROM machine_inbox WHERE concluded = 0"
            ).fetchall(),
        )
        held = process.leases.held()
        process.taken.update({m: s for m, s in rows if s in held})

    @precondition(lambda self: any(p.taken for p in self._in("running")))
    @rule(data=st.data())
    def a_replica_concludes_a_message(self, data: st.DataObject) -> None:
        process = data.draw(st.sampled_from([p for p in self._in("running") if p.taken]))
        message = data.draw(st.sampled_from(sorted(process.taken)))
        shard = process.taken.pop(message)

        def conclude(db: Connection) -> None:
            process.fence.check(db, shard)
            _, epoch = sql.holder(db, shard)
            db.execute(
                "INSERT INTO machine_conclusions (message, shard, epoch, process)"
                " VALUES (?, ?, ?, ?)",
                (message, shard, epoch, process.name),
            )
            db.execute(
                "UPDATE machine_inbox SET concluded = concluded + 1 WHERE id = ?", (message,)
            )

        try:
            self.loop.call_async(partial(self.store.write, atomic=True), conclude)
        except ShardMovedError as moved:
            refused = moved.shard
            assert refused == shard
            # A refused write: the replica steps down from the shard's messages.
            process.taken = {m: s for m, s in process.taken.items() if s != shard}

    @precondition(lambda self: bool(self._in("running")))
    @rule()
    def the_live_replicas_settle(self) -> None:
        """Ticking for a TTL and a few rounds, the running replicas hold every shard, each
        its fair share, and exactly one of them polls."""
        for _ in range(math.ceil(TTL / ROUND) + 3):
            self.loop.advance(ROUND, step=ROUND)
            for process in self._in("running"):
                self._drive(process.leases.tick)
        # A process superseded under its replica id (a zombie that resumed) stood down.
        running = [p for p in self._in("running") if not self.loop.call(p.leases.status).leaving]
        if not running:
            return  # every running process was superseded: nobody is live to hold a shard
        live = sorted({p.replica_id for p in running})
        share = targets(live, SHARDS)
        now = EPOCH + self.loop.call(anyio.current_time)
        rows = self.loop.call_async(self.store.read, sql.shard_leases)
        for row in rows:
            assert row.owner in live, f"shard {row.key} is held by {row.owner!r}, not live"
            assert row.expires_at > now
            holders = [p for p in running if p.leases.epoch(int(row.key)) == row.epoch]
            assert [p.replica_id for p in holders] == [row.owner]
        for process in running:
            assert len(process.leases.held()) == share[process.replica_id]
        polling = [p for p in running if self.loop.call(p.leases.leads, POLLER)]
        assert len(polling) == 1

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def at_most_one_process_can_write_a_shard(self) -> None:
        candidates = self._in("running", "paused")  # a dead process writes nothing more

        def writers(db: Connection) -> list[list[str]]:
            found: list[list[str]] = [[] for _ in range(SHARDS)]
            for shard, process in itertools.product(range(SHARDS), candidates):
                try:
                    process.fence.check(db, shard)
                except ShardMovedError:
                    continue
                found[shard].append(process.name)
            return found

        for shard, names in enumerate(self.loop.call_async(self.store.read, writers)):
            assert len(names) <= 1, f"shard {shard} is writable by {names}"

    @invariant()
    def no_message_is_concluded_twice_and_one_process_wrote_at_an_epoch(self) -> None:
        def read(db: Connection) -> tuple[list[Any], list[Any]]:
            twice = db.execute(
                "SELECT message, COUNT(*) FROM machine_conclusions GROUP BY message"
                " HAVING COUNT(*) > 1"
            ).fetchall()
            shared = db.execute(
                "SELECT shard, epoch FROM machine_conclusions GROUP BY shard, epoch"
                " HAVING COUNT(DISTINCT process) > 1"
            ).fetchall()
            return twice, shared

        twice, shared = self.loop.call_async(self.store.read, read)
        assert not twice, f"concluded twice: {twice}"
        assert not shared, f"written by two processes at one epoch: {shared}"

    @invariant()
    def a_process_sends_only_while_nobody_else_can_take_the_shard(self) -> None:
        rows = self.loop.call_async(self.store.read, sql.shard_leases)
        now = EPOCH + self.loop.call(anyio.current_time)
        for row, process in itertools.product(rows, self._in("running", "paused")):
            shard = int(row.key)
            if self.loop.call(process.leases.valid, shard):
                assert row.owner == process.replica_id
                assert row.epoch == process.leases.epoch(shard)
                assert row.expires_at > now
        for row in rows:
            assert row.epoch >= self.epochs[int(row.key)]
            self.epochs[int(row.key)] = row.epoch

    @invariant()
    def the_hooks_agree_with_the_leases(self) -> None:
        for process in self._in("running", "paused", "left"):
            assert process.told == process.leases.held()
            assert set(process.taken.values()) <= process.told

    def teardown(self) -> None:
        try:
            self.store.close()
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)


TestLeaseMachine = pytest.mark.timeout(machine_timeout())(LeaseMachine.TestCase)
TestLeaseMachine.settings = machine_settings(40)
