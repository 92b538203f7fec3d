"""Long polling: every update is written to the durable inbox before it is confirmed.

Telegram confirms an update when the next ``getUpdates`` asks for a higher offset; this loop
asks only after the update was written (deduplicated by ``update_id``) and routed. Bad input
never stops it: an update that cannot be routed is logged and skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import Update
from loguru import logger
from pydantic import ValidationError

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
            updates: Sequence[Update | int]
            try:
                updates = await self._bot.get_updates(
                    offset=offset,
                    timeout=self._config.poll_timeout,
                    request_timeout=self._config.poll_timeout + 15,
                )
            except ClientDecodeError as error:
                updates = self._salvage(error)
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
                if isinstance(update, Update):
                    await self.handle(update)
                    offset = update.update_id + 1
                else:
                    offset = update + 1  # malformed: logged by _salvage, confirmed and skipped

    def _salvage(self, error: ClientDecodeError) -> list[Update | int]:
        """Parse a batch aiogram could not decode update by update; bad ones become their id."""
        data = error.data if isinstance(error.data, dict) else {}
        raw_updates = data.get("result")
        if not isinstance(raw_updates, list):
            logger.error("getUpdates answer could not be read at all: {e}", e=error.message)
            return []
        salvaged: list[Update | int] = []
        for raw in raw_updates:
            try:
                salvaged.append(Update.model_validate(raw, context={"bot": self._bot}))
            except ValidationError as invalid:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if not isinstance(update_id, int):
                    logger.error("an update without an id could not be read; skipped")
                    continue
                logger.warning(
                    "update {id} is malformed ({n} problem(s)); skipped",
                    id=update_id,
                    n=invalid.error_count(),
                )
                salvaged.append(update_id)
        return salvaged

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
