"""Eviction: the supervisor forgets some children at once (a shard moved to another owner).

Rules (also in ``docs/architecture.md``):

* Every matching child is removed from the table at once: its activation is cancelled (the
  message in hand and its background tasks), its mailbox closed and discarded, its timers
  die with it. ``on_stop`` does not run, and nothing is dead-lettered: whoever owns the key
  now answers its messages. An asker still waiting gets :class:`ActorStoppedError` (an ask
  is in-process, never a user's message).
* One log line says how many children and messages went, and why.
* The key can be spawned again later: the next message builds a fresh child.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from loguru import logger

from actors._cell import Cell
from actors.exceptions import ActorStoppedError

K = TypeVar("K", bound=Hashable)


def evict_matching(cells: dict[K, Cell], predicate: Callable[[K], bool], reason: str) -> int:
    """Remove every cell of ``cells`` whose key matches ``predicate``; return how many."""
    keys = [key for key in cells if predicate(key)]
    messages = 0
    for key in keys:
        for envelope in cells.pop(key).evict():
            messages += 1
            if envelope.reply is not None:
                envelope.reply.set_error(ActorStoppedError(f"actor {key!r} evicted: {reason}"))
    if keys:
        logger.info(
            "evicted {n} actor(s) ({reason}); {m} message(s) in hand or queued discarded",
            n=len(keys),
            reason=reason,
            m=messages,
        )
    return len(keys)
