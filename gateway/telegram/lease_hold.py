"""A chat sender's wait while its chat's shard lease lapsed on this replica's own clock.

``sendable(chat_id)`` says whether this replica may send to the chat now (``True``), not
yet (``None``: the lease lapsed here; the lease manager's next round renews it or finds the
shard lost) or never (``False``: another replica holds the chat). ``settle`` waits out
``None`` with a log line when it starts and one when it ends, asking every ``HOLD_CHECK``
seconds, and returns what the chat became.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from loguru import logger

HOLD_CHECK = 0.05
"""Seconds between two looks at whether a held-back chat is sendable again."""


async def settle(sendable: Callable[[int], bool | None], chat_id: int) -> bool:
    """Whether the chat is sendable here, once that is known (see the module)."""
    state = sendable(chat_id)
    if state is not None:
        return state
    since = anyio.current_time()
    logger.warning(
        "chat {chat} not sendable here (its shard's lease lapsed): requests held"
        " until the lease is renewed or lost",
        chat=chat_id,
    )
    while (state := sendable(chat_id)) is None:  # noqa: ASYNC110 - leases
        await anyio.sleep(HOLD_CHECK)
    logger.info(
        "chat {chat} {what} after {s:.1f}s",
        chat=chat_id,
        what="sendable again" if state else "moved to another replica",
        s=anyio.current_time() - since,
    )
    return state
