"""The aiogram ``Bot`` the gateway talks to Telegram with."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.methods import (
    DeleteWebhook,
    EditMessageText,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendMessage,
    SetWebhook,
)
from aiogram.methods.base import Response

from gateway.config import TelegramConfig
from gateway.exceptions import BotTokenRejectedError, TelegramUnreachableError

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
    )
)


async def identify(bot: Bot, config: TelegramConfig) -> str:
    """Ask Telegram who the bot is; return its username.

    Raises:
        BotTokenRejectedError: the token is wrong or revoked.
        TelegramUnreachableError: the Bot API did not answer.
    """
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        raise BotTokenRejectedError(
            "Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); check it with @BotFather"
        ) from None
    except TelegramNetworkError as error:
        raise TelegramUnreachableError(
            f"the Bot API at {config.api_base} did not answer ({type(error).__name__})"
        ) from None
    return me.username or ""


def make_bot(config: TelegramConfig) -> Bot:
    """A bot for ``config.token`` talking to ``config.api_base``."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base))
    return Bot(config.token, session=session)
