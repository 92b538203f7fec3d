"""Webhook mode: Telegram POSTs updates to us; each is written to the inbox before the 200.

Rules:

* A request without the configured secret token (header
  ``X-Telegram-Bot-Api-Secret-Token``) gets 401 and a log line; nothing of it is read.
* An update is confirmed (HTTP 200) only after it was written to the durable inbox; if the
  store cannot be written the answer is 500 and Telegram delivers it again later.
* A body that is not an update is confirmed and skipped with a log line (Telegram would
  otherwise retry it forever), as polling does.
* Updates are delivered to threads through the :class:`Resequencer`, so one thread's
  updates reach it in order even when Telegram's parallel deliveries overtake each other.
  The server and the resequencer's delivering task are two supervised services
  (``gateway.services``): either is restarted on its own if it fails.
"""

from __future__ import annotations

import hmac
from functools import partial
from urllib.parse import urlsplit

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Update
from aiohttp import web
from loguru import logger
from pydantic import ValidationError

from gateway.config import TelegramConfig
from gateway.exceptions import ConfigInvalidError, StoreUnavailableError
from gateway.telegram.bot import at_start, identify
from gateway.telegram.intake import ALLOWED_UPDATES, Intake
from gateway.telegram.resequencer import Resequencer

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


@attrs.define(eq=False)
class WebhookServer:
    """Serves the webhook path and registers it with Telegram."""

    _bot: Bot
    _config: TelegramConfig
    _intake: Intake
    _resequencer: Resequencer
    _runner: web.AppRunner | None = attrs.field(default=None, init=False)
    url: str = attrs.field(default="", init=False)
    """Where it listens (``http://host:port/path``), once started."""

    name = "webhook"

    def alive(self, now: float) -> bool:
        """Whether the server is listening (health check)."""
        return self._runner is not None

    async def run(self) -> None:
        """Listen and register the webhook with Telegram; serve until cancelled."""
        path = urlsplit(self._config.webhook_url).path or "/"
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post(path, self._receive)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        try:
            host, _, port = self._config.webhook_listen.rpartition(":")
            await web.TCPSite(runner, host, int(port)).start()
            self._runner = runner
            bound_host, bound_port = runner.addresses[0][:2]
            self.url = f"http://{bound_host}:{bound_port}{path}"
            self._intake.bot = await identify(self._bot, self._config)
            await self._register()
            logger.info(
                "webhook mode as @{name}: listening on {url}, Telegram posts to {public}",
                name=self._intake.bot.username,
                url=self.url,
                public=self._config.webhook_url,
            )
            await anyio.sleep_forever()
        finally:
            self._runner = None
            with anyio.CancelScope(shield=True):
                await runner.cleanup()

    async def _register(self) -> None:
        register = partial(
            self._bot.set_webhook,
            self._config.webhook_url,
            secret_token=self._config.webhook_secret,
            drop_pending_updates=False,
            allowed_updates=list(ALLOWED_UPDATES),
        )
        try:
            await at_start("setWebhook", register, self._config)
        except TelegramAPIError as error:
            raise ConfigInvalidError(
                "telegram.webhook_url", f"Telegram refused the webhook: {error.message}"
            ) from None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._config.webhook_secret.encode()):
            logger.warning(
                "webhook request from {peer} without the secret token; refused", peer=request.remote
            )
            return web.Response(status=401)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            logger.warning("webhook request that is not JSON; skipped")
            return web.Response(status=200)
        try:
            update = Update.model_validate(body, context={"bot": self._bot})
        except ValidationError as invalid:
            update_id = body.get("update_id") if isinstance(body, dict) else None
            logger.warning(
                "webhook update {id} is malformed ({n} problem(s)); skipped",
                id=update_id,
                n=invalid.error_count(),
            )
            if isinstance(update_id, int):
                self._resequencer.arrived(update_id)
            return web.Response(status=200)
        try:
            routed = await self._intake.take(update)
        except StoreUnavailableError as error:
            logger.error(
                "webhook update {id} not stored ({e}); Telegram will retry",
                id=update.update_id,
                e=error,
            )
            return web.Response(status=500)
        self._resequencer.arrived(update.update_id, routed)
        return web.Response(status=200)
