"""The chats' shards: what a replica holds a lease on.

Rules:

* The chat-id space is split into :data:`SHARDS` shards by a stable hash of the chat id
  (the same on every replica, in every version). A chat's topics and per-user threads share
  its shard, so one replica alone paces a chat's sends.
* The shard is written with every inbox entry (``inbox.shard``), so an owner reads its
  shards' entries without hashing in SQL.
"""

from __future__ import annotations

import zlib

SHARDS = 256
"""How many shards the chats are split into (fixed: changing it would move every chat)."""


def shard_of(chat_id: int) -> int:
    """The shard of ``chat_id`` (0 to ``SHARDS - 1``)."""
    return zlib.crc32(str(chat_id).encode()) % SHARDS
