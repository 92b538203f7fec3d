"""A chat's sender is passivated with the chat's threads (``threads.idle_ttl``), but never
within the pace's minute, nor later than ``SENDER_IDLE_TTL``; on trio's MockClock (the
sweeps take no time)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gateway.app import SENDER_IDLE_TTL, chat_senders
from gateway.config import Config, LLMConfig, TelegramConfig, ThreadsConfig
from gateway.ops.metrics import Metrics
from gateway.telegram.bot import make_bot
from gateway.telegram.pacing import WINDOW, GlobalPace
from gateway.telegram.sender_messages import Wake
from tests.backends import trio_mockclock
from tests.gateway.harness import KEYS, TOKEN

pytestmark = pytest.mark.anyio

CHAT = 5301


@pytest.fixture
def anyio_backend() -> Any:
    return trio_mockclock()


def config(threads_idle_ttl: float) -> Config:
    telegram = TelegramConfig(token=TOKEN, api_base="http://127.0.0.1:9")  # never asked
    llm = LLMConfig(api_keys=(KEYS[0],))
    return Config(telegram=telegram, llm=llm, threads=ThreadsConfig(idle_ttl=threads_idle_ttl))


async def live_after(threads_idle_ttl: float, *moments: float) -> list[bool]:
    """Whether the chat's sender is live at each of ``moments`` (seconds after it was told
    something that needs no request, and went dormant)."""
    cfg = config(threads_idle_ttl)
    bot = make_bot(cfg.telegram)
    live: list[bool] = []
    async with chat_senders(cfg, bot, Metrics(), GlobalPace(), lambda chat_id: True) as senders:
        start = anyio.current_time()
        senders.ref_for(CHAT).send_nowait(Wake())
        for moment in moments:
            await anyio.sleep(start + moment - anyio.current_time())
            live.append(CHAT in senders)
    return live


async def test_a_sender_goes_with_its_chats_threads() -> None:
    ttl = 2 * WINDOW
    assert await live_after(ttl, ttl - 1, ttl * 1.25 + 1) == [True, False]


async def test_a_sender_stays_the_paces_minute_even_if_its_threads_go_sooner() -> None:
    assert await live_after(3.0, 10, WINDOW - 1, WINDOW * 1.25 + 1) == [True, True, False]


async def test_a_sender_goes_after_five_minutes_even_if_its_threads_stay() -> None:
    ttl = SENDER_IDLE_TTL
    assert await live_after(3600.0, ttl - 1, ttl * 1.25 + 1) == [True, False]
