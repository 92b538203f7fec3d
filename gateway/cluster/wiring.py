"""A replica's parts, built when the store is shared (PostgreSQL): its id, the fence its
store writes through, its leases, the bus, the shards' intake actors and the router.

Rules:

* On SQLite none of this exists: one process holds every shard, nothing is fenced, and
  the gateway behaves as it always did.
* The fence is made before the store (the store writes through it) and bound to the
  leases when they are made; until a round took a shard, every write of its threads is
  refused and nothing of it is delivered.
* Notifications are handed from the bus's listening task to the ``bus work`` service
  through a bounded queue: the bus never waits on a thread. One that finds the queue full
  is a log line; the sweep finds what it announced.
* The bot's global send rate is divided among the live replicas, as the last round saw
  them (``GlobalPace.share``).
* At a graceful stop the replica leaves (``Cluster.leave``): it drains and releases its
  shards and the poller lease, so the others take them at their next round, before its
  threads drain.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from actors import Supervisor
from actors.thread.records import ThreadKey
from gateway.cluster.bus import Bus, Notification
from gateway.cluster.fence import LeaseFence
from gateway.cluster.manager import POLLER, ReplicaLeases
from gateway.cluster.pools import share_pools
from gateway.cluster.replica import Replica, while_leading
from gateway.cluster.status import ClusterStatus, assemble
from gateway.config import Config
from gateway.exceptions import StoreUnavailableError
from gateway.store import Store
from gateway.store.fence import Connection
from gateway.store.store import WALL_CLOCK
from gateway.telegram.delivery import Delivery
from gateway.telegram.pacing import GlobalPace
from providers.pool import CredentialPool

ALBUM_SLACK = 5.0
"""Seconds beyond ``media.album_window`` an album item is left to the replica collecting it
(its items arrive within about a second; that replica may be slow)."""
FORGET_AFTER = 3600.0
"""Seconds after its last heartbeat a replica's row is deleted."""
QUEUE = 1024
"""Notifications waiting for the ``bus work`` service, at most."""
LEAD_CHECK = 0.25
"""Seconds between two looks at whether this replica still holds the poller lease."""

Service = Callable[[], Awaitable[object]]


def replica_id(config: Config) -> str:
    """``cluster.replica_id``, or the host's name with a random suffix (new each start)."""
    return config.cluster.replica_id or f"{socket.gethostname()}-{secrets.token_hex(3)}"


def fence_for(config: Config) -> LeaseFence | None:
    """The fence of this replica's store (``None`` on SQLite: nothing is fenced)."""
    return LeaseFence(replica_id(config), "postgresql") if config.store.url else None


@attrs.define(eq=False)
class Cluster:
    """This replica's parts (see the module's rules)."""

    leases: ReplicaLeases
    replica: Replica
    _store: Store
    _pace: GlobalPace | None = None
    _threads_live: Callable[[], int] = lambda: 0
    _bus: Bus = attrs.field(init=False)
    _pools: Callable[[Notification], None] = attrs.field(default=lambda _note: None, init=False)
    _status: ClusterStatus | None = attrs.field(default=None, init=False)
    _send: MemoryObjectSendStream[Notification] = attrs.field(init=False)
    _receive: MemoryObjectReceiveStream[Notification] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[Notification](QUEUE)

    @property
    def replica_id(self) -> str:
        return self.leases.replica_id

    @property
    def bus(self) -> Bus:
        return self._bus

    def bind(self, bus: Bus, pools: Sequence[CredentialPool]) -> None:
        """Take the bus (made after this), and share the credential pools over it."""
        self._bus = bus
        self._pools = share_pools(pools, bus)

    def status(self) -> ClusterStatus | None:
        """The replicas and the shards each holds, as the last lease round read them
        (``None`` before the first)."""
        return self._status

    def services(self, poll: Service | None) -> dict[str, Service]:
        """The replica's services. ``poll`` (the poller's run; ``None`` with the webhook,
        which every replica serves) runs only while this replica holds the poller lease."""
        ttl = self.leases.status().ttl
        services: dict[str, Service] = {
            "leases": self._leases,
            "bus": self._bus.run,
            "bus work": self._work,
            "sweep": lambda: self.replica.keep_sweeping(ttl / 3),
        }
        if poll is not None:
            services["poller"] = lambda: while_leading(
                lambda: self.leases.leads(POLLER), poll, LEAD_CHECK
            )
        return services

    def hand(self, notification: Notification) -> None:
        """The bus's handler: queue ``notification`` for ``bus work`` (never blocks)."""
        if notification.mine:
            return  # this replica said it: it knows
        if notification.channel == "pool":
            self._pools(notification)  # the pool's own task reads the store
            return
        try:
            self._send.send_nowait(notification)
        except anyio.WouldBlock:
            logger.warning(
                "bus: a notification on {channel} found the queue full; the sweep reads"
                " what it said",
                channel=notification.channel,
            )

    async def leave(self) -> None:
        """Drain and release every shard and the poller lease (a graceful stop)."""
        await self.leases.leave()
        logger.info("replica {id} left its shards to the others", id=self.replica_id)

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    async def _leases(self) -> None:
        """The lease rounds; and, at their pace, the global send rate's share and the
        cluster's status (a failed read is logged; the last status stays)."""
        ttl = self.leases.status().ttl
        async with anyio.create_task_group() as group:
            group.start_soon(self.leases.run)
            while True:
                if self._pace is not None:
                    self._pace.share(len(self.leases.live_replicas()))
                live = self._threads_live()
                try:
                    rows = await self._store.write(
                        partial(_status_rows, replica=self.replica_id, threads=live), atomic=True
                    )
                except StoreUnavailableError as error:
                    logger.warning("cluster status not read: {e}", e=error)
                else:
                    now, replicas, shards, poller, threads = rows
                    self._status = assemble(
                        self.replica_id, now, ttl, replicas, shards, poller, live, threads=threads
                    )
                await anyio.sleep(ttl / 3)

    async def _work(self) -> None:
        async for notification in self._receive:
            await self.replica.notified(notification.channel, notification.payload)


_Rows = tuple[
    float,
    list[tuple[str, float]],
    list[tuple[int, str, float]],
    tuple[str, float] | None,
    dict[str, int],
]


def _status_rows(db: Connection, replica: str, threads: int) -> _Rows:
    """Write this replica's live threads; read the database's clock and the lease tables'
    rows, for ``assemble``."""
    db.execute("UPDATE replicas SET threads = ? WHERE replica_id = ?", (threads, replica))
    now = float(db.execute(WALL_CLOCK).fetchone()[0])
    # A replica gone for an hour is forgotten (else status and metrics would list every
    # crashed one forever); one that comes back heartbeats a new row.
    db.execute("DELETE FROM replicas WHERE heartbeat_at < ?", (now - FORGET_AFTER,))
    replicas = db.execute("SELECT replica_id, heartbeat_at, threads FROM replicas").fetchall()
    leases = db.execute("SELECT shard, owner, expires_at FROM shard_leases").fetchall()
    poller = db.execute(
        "SELECT owner, expires_at FROM named_leases WHERE name = ?", (POLLER,)
    ).fetchone()
    return (
        float(now),
        [(str(r), float(at)) for r, at, _threads in replicas],
        [(int(s), str(o), float(at)) for s, o, at in leases],
        None if poller is None else (str(poller[0]), float(poller[1])),
        {str(r): int(n) for r, _at, n in replicas},
    )


def build(
    config: Config,
    store: Store,
    fence: LeaseFence,
    threads: Supervisor[ThreadKey],
    senders: Supervisor[int],
    delivery: Delivery,
    *,
    pace: GlobalPace,
    pools: Sequence[CredentialPool] = (),
) -> Cluster:
    """This replica's parts; the gateway enters ``cluster.replica.shards`` and starts
    ``cluster.services``."""
    ttl = config.cluster.lease_ttl

    def owns(shard: int) -> bool:
        return leases.owns(shard)

    async def notify(channel: str, payload: str) -> object:
        return await cluster.bus.notify(channel, payload)

    async def on_gained(shard: int) -> None:
        replica.gained(shard, leases.epoch(shard) or 0)

    drained: set[int] = set()  # the leases' task alone calls these hooks

    async def on_lost(shard: int) -> None:
        if shard in drained:
            drained.discard(shard)
            replica.lost(shard, "released")
        else:
            replica.lost(shard, "taken over, or not renewed in time")

    async def drain(shard: int) -> None:
        drained.add(shard)
        await replica.drain(shard, ttl / 4)

    async def on_leading(name: str, held: bool) -> None:
        logger.info(
            "replica {id} {verb} the {name} lease",
            id=fence.replica_id,
            verb="took" if held else "lost",
            name=name,
        )

    refreshes = [pool.refresh for pool in pools]
    hold = config.media.album_window + ALBUM_SLACK
    replica = Replica(store, threads, senders, delivery, owns, notify, refreshes, hold)
    leases = ReplicaLeases(
        store,
        fence.replica_id,
        ttl,
        on_gained=on_gained,
        on_lost=on_lost,
        drain=drain,
        on_leading=on_leading,
        fence=fence,
    )
    cluster = Cluster(leases, replica, store, pace, lambda: threads.statistics().live)
    bus = Bus(config.store.url, cluster.hand, replica.resync, name=fence.replica_id)
    cluster.bind(bus, pools)
    return cluster
