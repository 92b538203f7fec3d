"""The durable store: inbox, thread records, outcomes, session histories, key-pool state.

One class (:class:`Store`, in :mod:`gateway.store.store`) on either database: SQLite, a file
in ``data_dir`` (one gateway process), or PostgreSQL (``store.url``: a database replicas
share; :mod:`gateway.store.postgres`, :mod:`gateway.store.pg_schema`). It implements the
thread actor's ``ThreadStore``, the chat agent's ``SessionHistory`` and the credential
pool's ``PoolStateStore``. :func:`open_store` chooses the database from the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from actors.thread.records import Concluded, ThreadKey
from gateway.exceptions import StoreUnavailableError
from gateway.store.fence import NO_FENCE, Fence
from gateway.store.postgres import is_url, redacted
from gateway.store.store import InboxEntry, Store

SQLITE_FILE = "threadgate.sqlite3"
"""The SQLite store's file in ``data_dir`` (when ``store.url`` is empty)."""

__all__ = ["SQLITE_FILE", "InboxEntry", "Store", "open_store", "store_location"]


def store_location(url: str, data_dir: Path) -> str | Path:
    """Where the store is: ``url`` (PostgreSQL), or the SQLite file in ``data_dir``.

    Raises:
        StoreUnavailableError: ``url`` is neither empty nor a ``postgresql://`` URL.
    """
    if not url:
        return data_dir / SQLITE_FILE
    if not is_url(url):
        raise StoreUnavailableError(
            f"store.url must be a postgresql:// URL (or empty for SQLite), not {redacted(url)!r}"
        )
    return url


def open_store(
    url: str,
    data_dir: Path,
    on_outcome: Callable[[ThreadKey, Concluded], None] = lambda _key, _concluded: None,
    *,
    fence: Fence = NO_FENCE,
    clock: Callable[[], float] = time.time,
) -> Store:
    """The store ``store.url`` names: PostgreSQL at ``url``, or (``url`` empty) the SQLite
    file ``threadgate.sqlite3`` in ``data_dir``.

    Raises:
        StoreUnavailableError: it cannot be opened (the URL's password is never in it).
    """
    return Store(store_location(url, data_dir), on_outcome, clock=clock, fence=fence)
