"""Long polling: every update is written to the durable inbox before it is confirmed.

Telegram confirms an update when the next ``getUpdates`` asks for a higher offset; this loop
asks only after the update was written (deduplicated by ``update_id``) and routed. Bad input
never stops it: an update that cannot be routed is logged and skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import Update
from loguru import logger

from gateway.config import TelegramConfig
from gateway.metrics import Metrics
from gateway.routing import Ignored, Routed, route, to_payload
from gateway.store import InboxEntry, Store


@attrs.define(eq=False)
class Poller:
    """Fetches updates and hands them to the threads."""

    _bot: Bot
    _store: Store
    _config: TelegramConfig
    _deliver: Callable[[Routed], Awaitable[None]]
    _reply: Callable[[Ignored], Awaitable[None]]
    _metrics: Metrics
    alive_at: float = attrs.field(default=0.0, init=False)
    username: str = attrs.field(default="", init=False)

    async def run(self) -> None:
        me = await self._bot.get_me()
        self.username = me.username or ""
        await self._bot.delete_webhook(drop_pending_updates=False)
        last = await self._store.last_update_id()
        offset = None if last is None else last + 1
        logger.info("polling as @{name} from offset {offset}", name=self.username, offset=offset)
        backoff = 1.0
        while True:
            self.alive_at = anyio.current_time()
            try:
                updates = await self._bot.get_updates(
                    offset=offset,
                    timeout=self._config.poll_timeout,
                    request_timeout=self._config.poll_timeout + 15,
                )
            except TelegramRetryAfter as error:
                logger.warning("getUpdates flood control: waiting {s}s", s=error.retry_after)
                await anyio.sleep(error.retry_after)
                continue
            except TelegramUnauthorizedError:
                logger.critical("Telegram rejected the bot token; stopping")
                raise
            except (TelegramNetworkError, TelegramServerError) as error:
                logger.warning("getUpdates failed: {e}; retrying in {s:.0f}s", e=error, s=backoff)
                await anyio.sleep(backoff)
                backoff = min(60.0, backoff * 2)
                continue
            backoff = 1.0
            for update in updates:
                await self.handle(update)
                offset = update.update_id + 1

    async def handle(self, update: Update) -> None:
        """Write, route and deliver one update; never raises for bad input."""
        try:
            routed = route(
                update,
                bot_username=self.username,
                allowed_users=frozenset(self._config.allowed_users),
                allowed_chats=frozenset(self._config.allowed_chats),
            )
        except Exception:  # noqa: BLE001 - bad input must not stop the gateway
            logger.exception("update {id} could not be routed; skipped", id=update.update_id)
            return
        if isinstance(routed, Ignored):
            logger.info("update {id} ignored: {why}", id=routed.update_id, why=routed.reason)
            if routed.reply:
                await self._reply(routed)
            return
        entry = InboxEntry(
            routed.update_id, routed.key, routed.message.message_id, to_payload(routed.message)
        )
        if not await self._store.accept(entry):
            logger.info("update {id} was already in the inbox (redelivered)", id=routed.update_id)
            return
        self._metrics.messages_in.inc()
        await self._deliver(routed)
