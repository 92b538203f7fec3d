"""A shard's intake on a replica: the one owner of which of the shard's inbox entries this
replica handed to its threads.

Rules:

* Every way a message reaches a thread of the shard goes through the shard's actor, one at a
  time, in order: an update this replica received and wrote to the inbox (:class:`Take`),
  a sign that the shard's inbox has entries written elsewhere (:class:`Scan`: a notice from
  the replica that received them, or the periodic sweep), the shard gained
  (:class:`Gained`: its unanswered entries are replayed as at a start), drained
  (:class:`Drain`) or lost (:class:`Lost`).
* Whether the shard is held is the lease manager's to say (``owns``), asked at every
  message: a restarted actor knows it as well as the one before.
* An album item not yet joined into its album, written less than ``album_hold`` seconds
  ago, is left alone: the replica that received it is collecting the album, and delivers
  it whole (joined, it is an entry like any other). A later scan takes it if that replica
  died meanwhile.
* An entry is handed to a thread at most once while the shard is held here: the actor keeps
  the update ids it handed until they are no longer unanswered. A Scan after a restart of
  the actor may hand one again; the thread recognizes a message it already accepted.
* While the shard is not held here, or is draining (for at most the drain's ``seconds``:
  a shard still held after them, its release failed or undone, delivers again), nothing is
  delivered: the entry waits
  in the durable inbox for the shard's next owner, which takes it when it gains the shard.
  That is a wait, never a drop.
* Lost: the intake forgets what it handed. The shard's threads and chat senders were
  evicted before (``Replica.lost``, which does not depend on this actor being able to take
  the message). Nothing more of theirs is written (the store's fence refuses it) or sent
  (their chats are not sendable).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import attrs
from loguru import logger

from actors import Actor, ActorContext
from gateway.telegram.delivery import Delivery
from gateway.telegram.routing import Routed


@attrs.frozen
class Take:
    """An update this replica received for the shard, already written to the inbox."""

    routed: Routed
    """The update, routed."""


@attrs.frozen
class Scan:
    """The shard's inbox may hold entries no thread of this replica was handed."""

    reason: str
    """Why it is scanned (``notified``, ``sweep``), for the debug log."""


@attrs.frozen
class Gained:
    """The lease manager took the shard's lease."""

    epoch: int
    """The epoch it holds the shard at."""


@attrs.frozen
class Drain:
    """The shard is being handed over: deliver nothing more (entries wait in the inbox)."""

    seconds: float
    """For how long at most: if the shard is still held then (its release failed, or the
    balance kept it), the intake delivers again."""


@attrs.frozen
class Lost:
    """The shard is no longer held here (released after a drain, or taken over)."""

    reason: str
    """Why (``released``, ``taken over``, ``renewal failed``), for the log line."""


ShardMessage = Take | Scan | Gained | Drain | Lost
"""What a shard's intake actor is told."""


@attrs.define(eq=False)
class ShardIntake(Actor[ShardMessage]):
    """One shard's intake on this replica."""

    _shard: int
    _delivery: Delivery
    _owns: Callable[[int], bool]
    """Whether this replica holds a shard now (the lease manager's word)."""
    _album_hold: float = 10.0
    """Seconds an album item not yet joined is left to the replica collecting its album."""
    _handed: set[int] = attrs.field(factory=set, init=False)
    _drain_until: float = attrs.field(default=-math.inf, init=False)

    @property
    def _draining(self) -> bool:
        return anyio.current_time() < self._drain_until

    async def receive(self, message: ShardMessage, ctx: ActorContext[Any]) -> object:
        shard = self._shard
        match message:
            case Take(routed):
                if not self._owns(shard) or self._draining:
                    logger.debug(
                        "update {id} waits in the inbox: shard {shard} is not taken here",
                        id=routed.update_id,
                        shard=shard,
                    )
                elif routed.update_id not in self._handed:
                    self._handed.add(routed.update_id)
                    await self._delivery.deliver(routed)
            case Scan():
                if self._owns(shard) and not self._draining:
                    await self._delivery.replay({shard}, self._handed, album_hold=self._album_hold)
            case Gained(epoch):
                self._drain_until = -math.inf
                self._handed.clear()
                logger.debug("shard {shard} taken at epoch {epoch}", shard=shard, epoch=epoch)
                await self._delivery.replay({shard}, self._handed, album_hold=self._album_hold)
            case Drain(seconds):
                self._drain_until = anyio.current_time() + seconds
            case Lost(reason):
                self._drain_until = -math.inf
                self._handed.clear()
                logger.debug("shard {shard} intake reset: {reason}", shard=shard, reason=reason)
        return None

    def describe(self) -> dict[str, object]:
        return {"handed": len(self._handed), "draining": self._draining}
