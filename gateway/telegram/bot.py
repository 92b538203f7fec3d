"""The aiogram ``Bot`` the gateway talks to Telegram with, and the calls it starts with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendMessage,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import Response
from loguru import logger

from gateway.config import TelegramConfig
from gateway.exceptions import BotTokenRejectedError, TelegramUnreachableError
from gateway.telegram.addressing import BotIdentity

T = TypeVar("T")

# aiogram parametrizes its generic ``Response`` model for every answer it reads. pydantic
# caches those classes only weakly, so after a garbage collection the next answer builds the
# class again (milliseconds of schema building on the hot path, measured with bench/).
# Holding the ones the gateway uses keeps them built.
_RESPONSE_MODELS = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        GetUpdates,
        GetMe,
        SendMessage,
        EditMessageText,
        SendChatAction,
        SetWebhook,
        DeleteWebhook,
        SetMyCommands,
        AnswerCallbackQuery,
    )
)


START_BACKOFF_INITIAL = 0.5
"""Seconds before the first retry of a call at start; each retry waits twice as long."""
START_BACKOFF_MAX = 15.0
"""Seconds between two tries of a call at start, at most."""


async def at_start(what: str, call: Callable[[], Awaitable[T]], config: TelegramConfig) -> T:
    """Make a call the gateway needs to start (``getMe``, ``setWebhook``, ...).

    Transient failures (HTTP 5xx, an answer that is not the Bot API's, no answer at all, 429)
    are retried with a doubling backoff and a log line each, for ``config.start_timeout``
    seconds.

    Raises:
        BotTokenRejectedError: the token is wrong or revoked (HTTP 401); never retried.
        TelegramUnreachableError: no good answer within ``config.start_timeout``.
    """
    deadline = anyio.current_time() + config.start_timeout
    backoff = START_BACKOFF_INITIAL
    tries = 0
    while True:
        tries += 1
        try:
            return await call()
        except TelegramUnauthorizedError:
            raise BotTokenRejectedError(
                "Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); check it with @BotFather"
            ) from None
        except TelegramRetryAfter as error:
            wait, reason = (
                float(error.retry_after),
                f"flood control, retry after {error.retry_after}s",
            )
        except TelegramServerError as error:
            wait, reason = backoff, f"{type(error).__name__}: {error.message}"
        except (TelegramNetworkError, ClientDecodeError) as error:
            wait, reason = backoff, type(error).__name__
        if anyio.current_time() + wait > deadline:
            raise TelegramUnreachableError(
                f"the Bot API at {config.api_base} did not answer ({reason}); "
                f"gave up on {what} after {tries} tries in {config.start_timeout:g}s"
            )
        logger.warning(
            "{what} failed ({reason}); try {n} again in {s:.1f}s",
            what=what,
            reason=reason,
            n=tries + 1,
            s=wait,
        )
        await anyio.sleep(wait)
        backoff = min(START_BACKOFF_MAX, backoff * 2)


async def identify(bot: Bot, config: TelegramConfig) -> BotIdentity:
    """Ask Telegram who the bot is (retried as :func:`at_start` says): its id and username."""
    me = await at_start("getMe", bot.get_me, config)
    return BotIdentity(me.id, me.username or "")


def make_bot(config: TelegramConfig) -> Bot:
    """A bot for ``config.token`` talking to ``config.api_base``."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base))
    return Bot(config.token, session=session)
