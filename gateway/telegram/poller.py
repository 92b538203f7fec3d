"""Long polling: every update is written to the durable inbox before it is confirmed.

Telegram confirms an update when the next ``getUpdates`` asks for a higher offset; this loop
asks only after the update was written (deduplicated by ``update_id``) and routed. Bad input
never stops it: an update that cannot be routed is logged and skipped. It runs as a supervised
service (``gateway.services``): an error it does not handle (a store that cannot be written,
a 409 because another instance polls) restarts it after a backoff, at the offset it had
reached, so the unconfirmed batch is fetched again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

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
from gateway.exceptions import BotTokenRejectedError
from gateway.store.sqlite import Store
from gateway.telegram.bot import at_start, identify
from gateway.telegram.intake import ALLOWED_UPDATES, Intake
from gateway.telegram.routing import Routed


@attrs.define(eq=False)
class Poller:
    """Fetches updates and hands them to the threads."""

    _bot: Bot
    _store: Store
    _config: TelegramConfig
    _intake: Intake
    _deliver: Callable[[Routed], Awaitable[None]]
    alive_at: float = attrs.field(default=0.0, init=False)
    _offset: int | None = attrs.field(default=None, init=False)
    _resumed: bool = attrs.field(default=False, init=False)
    """Whether ``_offset`` was read from the store (at the first start; restarts keep it)."""

    name = "poller"

    def alive(self, now: float) -> bool:
        """Whether a ``getUpdates`` was under way recently (health check)."""
        return bool(self.alive_at) and now - self.alive_at < self._config.poll_timeout + 30

    async def run(self) -> None:
        """Poll until cancelled."""
        self.alive_at = 0.0  # not alive until getUpdates is under way (after a restart too)
        self._intake.bot = await identify(self._bot, self._config)
        await at_start(
            "deleteWebhook",
            partial(self._bot.delete_webhook, drop_pending_updates=False),
            self._config,
        )
        if not self._resumed:
            last = await self._store.last_update_id()
            self._offset = None if last is None else last + 1
            self._resumed = True
        logger.info(
            "polling as @{name} from offset {offset}",
            name=self._intake.bot.username,
            offset=self._offset,
        )
        backoff = 1.0
        while True:
            self.alive_at = anyio.current_time()
            updates: Sequence[Update | int]
            try:
                updates = await self._bot.get_updates(
                    offset=self._offset,
                    timeout=self._config.poll_timeout,
                    allowed_updates=list(ALLOWED_UPDATES),
                    request_timeout=self._config.poll_timeout + 15,
                )
            except ClientDecodeError as error:
                updates = self._salvage(error)
            except TelegramRetryAfter as error:
                logger.warning("getUpdates flood control: waiting {s}s", s=error.retry_after)
                await anyio.sleep(error.retry_after)
                continue
            except TelegramUnauthorizedError:
                raise BotTokenRejectedError(
                    "Telegram rejected the bot token (TELEGRAM_BOT_TOKEN) while polling"
                ) from None
            except (TelegramNetworkError, TelegramServerError) as error:
                logger.warning("getUpdates failed: {e}; retrying in {s:.0f}s", e=error, s=backoff)
                await anyio.sleep(backoff)
                backoff = min(60.0, backoff * 2)
                continue
            backoff = 1.0
            for update in updates:
                if isinstance(update, Update):
                    await self.handle(update)
                    self._offset = update.update_id + 1
                else:
                    self._offset = update + 1  # malformed: logged by _salvage, confirmed, skipped

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
        routed = await self._intake.take(update)
        if routed is not None:
            await self._deliver(routed)
