"""This process as one replica among several: where a message goes, and what happens when
a shard comes or goes.

Rules:

* A message this replica received (by polling, or a webhook POST) was written to the shared
  inbox first. If its shard is held here it goes to the shard's intake actor
  (``gateway.cluster.shard_intake``); otherwise the shard's owner is notified (``inbox``
  on the bus) and takes it from the inbox. A shard nobody holds (its owner just died) keeps
  its entries in the inbox until a replica takes it and replays them.
* Notifications can be missed (a dropped connection); so every ``lease_ttl / 3`` the
  replica also sweeps: each held shard with unanswered entries is scanned. A notice is a
  shortcut, never the only way an entry is found.
* Exactly one replica polls Telegram: the one holding the ``poller`` lease. It stops
  polling the moment it loses that lease. In webhook mode every replica takes POSTs.
* A Stop press (or a stopped draft) for a thread held elsewhere is forwarded to its owner
  (``control`` on the bus); the press is answered that the stop was sent.
* A key state saved by one replica's credential pool is adopted by every other's at once
  (``pool`` on the bus): a 402 seen by one rests the key for all.
* Losing a shard evicts its threads and chat senders here (the shard's intake actor does it,
  in order with what it delivers).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from loguru import logger

from actors import (
    ActorError,
    ChildState,
    Supervisor,
    SupervisorConfig,
)
from actors.thread.messages import StopRun
from actors.thread.records import ThreadKey
from gateway.cluster.shard_intake import (
    Drain,
    Gained,
    Lost,
    Scan,
    ShardIntake,
    ShardMessage,
    Take,
)
from gateway.cluster.shards import shard_of
from gateway.store import Store
from gateway.store.fence import Connection
from gateway.telegram.delivery import Delivery
from gateway.telegram.routing import Routed

SHARD_MAILBOX = 100_000
"""Messages a shard's intake can hold (each one small); beyond, entries wait in the inbox for
the next sweep."""

DRAIN_SLACK = 5.0
"""Seconds a shard's intake stays drained after the drain's own bound, for its release to be
written; a shard still held after that delivers again (a release that failed)."""
STOP_ASK_TIMEOUT = 5.0
"""Seconds a forwarded stop waits for the thread's answer (for the log)."""


@attrs.define(eq=False)
class Replica:
    """Routes messages by shard, and applies what the lease manager and the bus report.

    Its shards' intake actors (:attr:`shards`, one per shard that is or was held here) are
    entered by the gateway, after its threads (so they stop before the threads drain)."""

    _store: Store
    _threads: Supervisor[ThreadKey]
    _senders: Supervisor[int]
    _delivery: Delivery
    _owns: Callable[[int], bool]
    _notify: Callable[[str, str], Awaitable[object]]
    """Sends a notification on the bus (channel, payload)."""
    _pools: Sequence[Callable[[], Awaitable[None]]] = ()
    """Each credential pool's ``refresh``."""
    _album_hold: float = 10.0
    """Seconds an album item not yet joined is left to the replica collecting it."""
    shards: Supervisor[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.shards = Supervisor(
            lambda shard: ShardIntake(shard, self._delivery, self._owns, self._album_hold),
            SupervisorConfig(mailbox_capacity=SHARD_MAILBOX, idle_ttl=None, stall_timeout=600),
        )

    # -- messages in ----------------------------------------------------------------------

    async def route(self, routed: Routed) -> None:
        """Hand an update that is in the inbox to its shard's intake, here or at its owner."""
        shard = shard_of(routed.key.chat_id)
        if self._owns(shard):
            self._tell(shard, Take(routed))
        else:
            await self._notify("inbox", str(shard))

    async def forward_stop(self, key: ThreadKey, stop: StopRun) -> bool:
        """Send a stop to ``key``'s owner if the thread is not held here; whether it was."""
        if self._owns(shard_of(key.chat_id)):
            return False
        payload = {
            "chat": key.chat_id,
            "topic": key.thread_id,
            "user": key.user_id,
            "run": stop.run_id,
            "by": stop.user_id,
        }
        await self._notify("control", json.dumps(payload))
        return True

    # -- what the lease manager reports ---------------------------------------------------

    def gained(self, shard: int, epoch: int) -> None:
        """The shard is held here now: whatever is left of an earlier holding is evicted
        (nothing of it may write under the new epoch), and its intake replays the shard's
        unanswered entries."""
        self.step_down(shard)
        self._tell(shard, Gained(epoch), control=True)

    def lost(self, shard: int, reason: str) -> None:
        """The shard is held here no more: its threads and senders are evicted at once,
        here (not by its intake, which may be restarting), then its intake is reset."""
        evicted = self.step_down(shard)
        logger.log(
            "DEBUG" if reason == "released" and not evicted else "WARNING",
            "stepped down from shard {shard} ({reason}): {n} thread(s) stopped here;"
            " its chats are answered by the replica that holds it now",
            shard=shard,
            reason=reason,
            n=evicted,
        )
        self._tell(shard, Lost(reason), control=True)

    async def drain(self, shard: int, timeout: float) -> None:
        """Before a shard is released: deliver nothing more of it, and give its running
        turns up to ``timeout`` seconds to finish; what is left is parked (the record holds
        it) and resumed by the next owner."""
        self._tell(shard, Drain(timeout + DRAIN_SLACK), control=True)
        with anyio.move_on_after(timeout):
            while self._busy_threads(shard):  # noqa: ASYNC110 - no event says a shard went idle
                await anyio.sleep(0.1)

    def step_down(self, shard: int) -> int:
        """Evict the shard's threads and chat senders; how many threads."""
        evicted = self._threads.evict(lambda key: shard_of(key.chat_id) == shard, "shard moved")
        self._senders.evict(lambda chat: shard_of(chat) == shard, "shard moved")
        return evicted

    # -- what the bus reports -------------------------------------------------------------

    async def notified(self, channel: str, payload: str) -> None:
        """A notification from another replica (never raises for a bad payload)."""
        try:
            if channel == "inbox":
                shard = int(payload)
                if self._owns(shard):
                    self._tell(shard, Scan("notified"))
            elif channel == "control":
                await self._stop_here(json.loads(payload))
        except (ValueError, TypeError, KeyError) as error:
            logger.warning(
                "bus notification on {channel} not understood: {kind}",
                channel=channel,
                kind=type(error).__name__,
            )

    async def resync(self) -> None:
        """The bus reconnected (notifications may have been missed): sweep now."""
        await self.sweep("resync")
        for refresh in self._pools:
            await refresh()

    async def sweep(self, reason: str = "sweep") -> None:
        """Scan every held shard that has unanswered entries."""
        for shard in await self._store.read(_unanswered_shards):
            if self._owns(shard):
                self._tell(shard, Scan(reason))

    async def keep_sweeping(self, interval: float) -> None:
        """``sweep`` every ``interval`` seconds (a supervised service)."""
        while True:
            await anyio.sleep(interval)
            await self.sweep()

    # -- inside ---------------------------------------------------------------------------

    async def _stop_here(self, data: dict[str, object]) -> None:
        chat, topic, user = data["chat"], data.get("topic"), data.get("user")
        run, by = data["run"], data.get("by")
        if not isinstance(chat, int) or not isinstance(run, int):
            raise TypeError("chat and run")
        key = ThreadKey(
            chat,
            topic if isinstance(topic, int) else None,
            user if isinstance(user, int) else None,
        )
        if not self._owns(shard_of(chat)):
            logger.info("forwarded stop for {key}: not held here either", key=key)
            return
        try:
            stopped = await self._threads.ref_for(key).ask(
                StopRun(run, by if isinstance(by, int) else None),
                timeout=STOP_ASK_TIMEOUT,
                control=True,
            )
        except ActorError as error:
            logger.warning(
                "forwarded stop for {key} not taken: {kind}", key=key, kind=type(error).__name__
            )
            return
        logger.info("forwarded stop of run {run} in {key}: {s}", run=run, key=key, s=stopped)

    def _busy_threads(self, shard: int) -> int:
        return sum(
            1
            for child in self._threads.status().children
            if child.state in (ChildState.STARTING, ChildState.BUSY, ChildState.BACKING_OFF)
            and isinstance(child.key, ThreadKey)
            and shard_of(child.key.chat_id) == shard
        )

    def _tell(self, shard: int, message: ShardMessage, *, control: bool = False) -> None:
        try:
            self.shards.ref_for(shard).send_nowait(message, control=control)
        except ActorError as error:
            logger.warning(
                "shard {shard} intake not told {what}: {kind}; its inbox is swept again"
                " within a third of the lease time",
                shard=shard,
                what=type(message).__name__,
                kind=type(error).__name__,
            )


def _unanswered_shards(db: Connection) -> set[int]:
    rows = db.execute(
        "SELECT DISTINCT shard FROM inbox WHERE outcome IS NULL AND album_of IS NULL"
    ).fetchall()
    return {int(shard) for (shard,) in rows}


async def while_leading(
    leads: Callable[[], bool], service: Callable[[], Awaitable[object]], check: float
) -> None:
    """Run ``service`` while ``leads()`` says this replica holds its lease (checked every
    ``check`` seconds): it is cancelled as soon as the lease is lost, and started again when
    it is regained. An error of ``service`` is raised (its supervisor restarts it)."""
    while True:
        while not leads():  # noqa: ASYNC110 - the lease manager's word, read at its pace
            await anyio.sleep(check)
        async with anyio.create_task_group() as group:

            async def watch(scope: anyio.CancelScope = group.cancel_scope) -> None:
                while leads():  # noqa: ASYNC110 - as above
                    await anyio.sleep(check)
                logger.info("lease lost: stopping {name}", name=getattr(service, "__name__", ""))
                scope.cancel()

            group.start_soon(watch)
            await service()
            group.cancel_scope.cancel()
