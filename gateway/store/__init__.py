"""The durable store: inbox, thread records, outcomes, session histories, key-pool state.

One adapter today, SQLite (:mod:`gateway.store.sqlite`); it implements the thread actor's
``ThreadStore``, the chat agent's ``SessionHistory`` and the credential pool's
``PoolStateStore``.
"""

from __future__ import annotations

from gateway.store.sqlite import InboxEntry, Store

__all__ = ["InboxEntry", "Store"]
