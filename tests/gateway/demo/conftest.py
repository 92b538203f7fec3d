"""The Bot API simulator served on loopback, with the real aiogram ``Bot`` talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot

from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.telegram.bot import make_bot


@pytest.fixture
async def sim() -> AsyncIterator[tuple[BotAPISimulator, Bot]]:
    with BotAPISimulator().serving_in_thread() as telegram:
        bot = make_bot(TelegramConfig(token="123456:TEST-token", api_base=telegram.base_url))
        try:
            yield telegram, bot
        finally:
            await bot.session.close()
