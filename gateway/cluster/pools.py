"""The credential pools of several replicas, told of each other's saves through the bus.

Rules: after a pool saved its key states it notifies ``pool`` (payload: the pool's name);
a replica that hears it from another replica has that pool refresh (``refresh_soon``: the
pool's own task reads the store). A name this replica has no pool of is a debug line (the
replicas' configs differ for a moment during a rolling deploy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from loguru import logger

from gateway.cluster.bus import Bus, Notification
from providers.pool import CredentialPool


def share_pools(pools: Sequence[CredentialPool], bus: Bus) -> Callable[[Notification], None]:
    """Have every pool notify ``pool`` on ``bus`` after it saved; return the handler of the
    ``pool`` channel (the caller's bus handler hands it that channel's notifications)."""
    by_name = {pool.name: pool for pool in pools}
    for pool in pools:
        pool.share(lambda name: _tell(bus, name))

    def heard(note: Notification) -> None:
        if note.mine:
            return  # this replica's own save
        pool = by_name.get(note.payload)
        if pool is None:
            logger.debug("bus: no pool {name!r} here to refresh", name=note.payload)
            return
        pool.refresh_soon()

    return heard


async def _tell(bus: Bus, name: str) -> None:
    await bus.notify("pool", name)  # a failure is the bus's log line: a hint, not a duty


def by_channel(
    handlers: Mapping[str, Callable[[Notification], None]],
) -> Callable[[Notification], None]:
    """One bus handler that hands each notification to its channel's handler; a channel
    without one is a debug line."""

    def handle(note: Notification) -> None:
        handler = handlers.get(note.channel)
        if handler is None:
            logger.debug("bus: nothing here handles {channel}", channel=note.channel)
            return
        handler(note)

    return handle
