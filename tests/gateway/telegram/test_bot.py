"""The calls the gateway starts with: transient failures retried, fatal ones at once."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BOT_ID, BOT_USERNAME, BotAPISimulator
from gateway.exceptions import BotTokenRejectedError, TelegramUnreachableError
from gateway.telegram.addressing import BotIdentity
from gateway.telegram.bot import identify, make_bot
from tests.gateway.harness import TOKEN, running_gateway, wait_until
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio


async def test_get_me_failing_twice_with_500_is_retried_with_a_log_line_each() -> None:
    with BotAPISimulator(getme_failures=2).serving_in_thread() as telegram:
        config = TelegramConfig(token=TOKEN, api_base=telegram.base_url, start_timeout=20)
        bot = make_bot(config)
        try:
            with captured_logs("WARNING") as logs:
                start = anyio.current_time()
                assert await identify(bot, config) == BotIdentity(BOT_ID, BOT_USERNAME)
                took = anyio.current_time() - start
        finally:
            await bot.session.close()
    assert telegram.getme_calls == 3
    retries = [line for line in logs if "getMe failed" in line]
    assert retries == [
        "WARNING getMe failed (TelegramServerError: Internal Server Error); try 2 again in 0.5s",
        "WARNING getMe failed (TelegramServerError: Internal Server Error); try 3 again in 1.0s",
    ]
    assert took >= 1.5, "each retry waited its backoff"


async def test_a_bot_api_failing_past_the_start_timeout_is_one_fatal_error() -> None:
    with BotAPISimulator(getme_failures=1000).serving_in_thread() as telegram:
        config = TelegramConfig(token=TOKEN, api_base=telegram.base_url, start_timeout=2)
        bot = make_bot(config)
        try:
            with pytest.raises(TelegramUnreachableError) as caught:
                await identify(bot, config)
        finally:
            await bot.session.close()
    assert str(caught.value) == (
        f"the Bot API at {telegram.base_url} did not answer (TelegramServerError: Internal "
        "Server Error); gave up on getMe after 3 tries in 2s"
    )


async def test_a_rejected_token_is_not_retried() -> None:
    with BotAPISimulator(token="123:another").serving_in_thread() as telegram:
        config = TelegramConfig(token=TOKEN, api_base=telegram.base_url)
        bot = make_bot(config)
        try:
            with pytest.raises(BotTokenRejectedError):
                await identify(bot, config)
        finally:
            await bot.session.close()


async def test_the_gateway_starts_when_get_me_failed_twice(tmp_path: Path) -> None:
    telegram = BotAPISimulator(getme_failures=2)
    with captured_logs("WARNING") as logs:
        async with running_gateway(tmp_path, telegram=telegram) as run:
            hello = telegram.say("hello", chat_id=5100, forum=False)
            await wait_until(lambda: any("hello" in m.text for m in run.replies_to(hello)))
            assert run.gateway.health()["poller_alive"]
    assert sum("getMe failed" in line for line in logs) == 2
    assert not any("service poller failed" in line for line in logs), "retried, not crashed"
