"""The aiogram ``Bot`` the gateway talks to Telegram with."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
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


def make_bot(config: TelegramConfig) -> Bot:
    """A bot for ``config.token`` talking to ``config.api_base``."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base))
    return Bot(config.token, session=session)
