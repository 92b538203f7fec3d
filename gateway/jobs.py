"""Two small services of the gateway: WAL checkpoints, and waking parked threads.

Both run supervised (``gateway.services``): an error they do not handle themselves is logged
and restarts them after a backoff.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from loguru import logger

from actors import Supervisor
from actors.thread.messages import CredentialsAvailable
from actors.thread.records import ThreadKey
from gateway.exceptions import StoreUnavailableError
from gateway.store.sqlite import Store

CHECKPOINT_INTERVAL = 2.0
"""Seconds between two copies of the write-ahead log into the database file."""


async def checkpoints(store: Store, interval: float = CHECKPOINT_INTERVAL) -> None:
    """Keep the SQLite write-ahead log short, off the event loop, every ``interval`` s."""
    while True:
        await anyio.sleep(interval)
        try:
            await store.checkpoint()
        except StoreUnavailableError as error:
            logger.warning("store checkpoint failed (retried in {s}s): {e}", s=interval, e=error)


def waker(threads: Supervisor[ThreadKey]) -> Callable[[], None]:
    """What a credential pool calls when a key is usable again: wake every thread."""

    def wake_parked() -> None:
        count = threads.broadcast(CredentialsAvailable(), control=True)
        logger.info("credentials available: woke {n} thread(s)", n=count)

    return wake_parked
