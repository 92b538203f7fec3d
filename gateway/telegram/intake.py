"""From a Telegram update to a thread's mailbox: route, write to the inbox, then deliver.

Polling and the webhook share this path, so an update is handled the same way whichever
way it came: ignored with a log line (and a reply where one helps), or written to the
durable inbox (deduplicated by ``update_id``) before anything confirms it to Telegram.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from aiogram.types import Update
from loguru import logger

from gateway.config import TelegramConfig
from gateway.ops.metrics import Metrics
from gateway.store.sqlite import InboxEntry, Store
from gateway.telegram.routing import Ignored, Routed, route, to_payload


@attrs.define(eq=False)
class Intake:
    """Routes updates and writes them to the inbox; the caller delivers what it returns."""

    _store: Store
    _config: TelegramConfig
    _reply: Callable[[Ignored], Awaitable[None]]
    _metrics: Metrics
    username: str = ""
    """The bot's username (for ``/command@bot``); set once ``getMe`` answered."""
    _users: frozenset[int] = attrs.field(init=False)
    _chats: frozenset[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._users = frozenset(self._config.allowed_users)
        self._chats = frozenset(self._config.allowed_chats)

    async def take(self, update: Update) -> Routed | None:
        """Return the routed message if ``update`` is new and for a thread, else ``None``.

        Bad input never raises: it is logged (and answered where that helps). A store that
        cannot be written raises ``StoreUnavailableError``: the update is then not confirmed.
        """
        try:
            routed = route(
                update,
                bot_username=self.username,
                allowed_users=self._users,
                allowed_chats=self._chats,
            )
        except Exception:  # noqa: BLE001 - bad input must not stop the gateway
            logger.exception("update {id} could not be routed; skipped", id=update.update_id)
            return None
        if isinstance(routed, Ignored):
            logger.info("update {id} ignored: {why}", id=routed.update_id, why=routed.reason)
            if routed.reply:
                await self._reply(routed)
            return None
        entry = InboxEntry(
            routed.update_id, routed.key, routed.message.message_id, to_payload(routed.message)
        )
        if not await self._store.accept(entry):
            logger.info("update {id} was already in the inbox (redelivered)", id=routed.update_id)
            return None
        self._metrics.messages_in.inc()
        return routed
