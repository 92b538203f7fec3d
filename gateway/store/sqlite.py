"""The store's classes under the module name they had when SQLite was the only database
(``gateway.store.store`` holds them; importers of this name keep working)."""

from __future__ import annotations

from gateway.store.store import InboxEntry, Store, StoreStatistics

__all__ = ["InboxEntry", "Store", "StoreStatistics"]
