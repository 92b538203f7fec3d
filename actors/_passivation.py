"""Passivation: children dormant for ``idle_ttl`` are forgotten, then their ``on_stop`` runs.

Rules (also in ``docs/architecture.md``): a child is passivated only when dormant (no task,
empty mailbox, its actor willing: ``Actor.can_passivate``) for ``idle_ttl``; a failed child
is forgotten once its cooldown is over and its last word is done. ``on_stop`` gets at most
``drain_timeout``, shielded; its failure is logged, and the actor is gone either way.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

import anyio
from loguru import logger

from actors._cell import Cell
from actors.actor import Actor

K = TypeVar("K", bound=Hashable)


def collect_idle(cells: dict[K, Cell], now: float, idle_ttl: float) -> list[tuple[K, Actor[Any]]]:
    """Remove the passivatable and the expired failed cells; return the actors to stop."""
    stopped: list[tuple[K, Actor[Any]]] = []
    for key, cell in list(cells.items()):
        failed_until = cell.failed_until
        if failed_until is not None:
            if now >= failed_until and not cell.active:  # and its last word is done
                del cells[key]
            continue
        actor = cell.actor
        if actor is not None and cell.dormant_for(now) >= idle_ttl:
            cell.mailbox.close()  # empty: checked by dormant_for()
            del cells[key]
            stopped.append((key, actor))
    return stopped


async def stop_actor(key: Hashable, actor: Actor[Any], drain_timeout: float) -> None:
    """Run ``actor``'s ``on_stop`` (if it has one), shielded, for at most ``drain_timeout``."""
    if type(actor).on_stop is Actor.on_stop:
        return  # nothing to run: skip the scopes (a sweep may stop 100,000 actors)
    with anyio.CancelScope(shield=True), anyio.move_on_after(drain_timeout):
        try:
            await actor.on_stop()
        except Exception as error:  # noqa: BLE001 - the actor is gone either way
            logger.warning("actor {key!r} on_stop failed: {error!r}", key=key, error=error)
