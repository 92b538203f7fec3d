from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from gateway.config import Config, LLMConfig, TelegramConfig
from gateway.parts import started_line
from tests.gateway.harness import KEYS, TOKEN, running_gateway
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_one_line_at_start_and_one_at_shutdown_with_no_secret(tmp_path: Path) -> None:
    with captured_logs() as lines:
        async with running_gateway(tmp_path, bot={"allowed_users": (5, 6)}) as run:
            admin_url = run.gateway.admin_url
            llm_host = run.llm.base_url.split("//")[1].split("/")[0]
        [started] = [line for line in lines if "threadgate started" in line]
        [stopped] = [line for line in lines if "threadgate stopped" in line]
    assert lines.index(stopped) == len(lines) - 1, "the stop line is the last one"
    assert f"polling, model scripted at {llm_host} (2 API keys)" in started
    assert "allowlist 2 user(s)" in started
    assert f"admin {admin_url}" in started
    assert not any(secret in line for line in lines for secret in (TOKEN, *KEYS))


def test_the_start_line_shows_the_endpoint_host_only_and_who_is_allowed() -> None:
    config = Config(
        telegram=TelegramConfig(token=TOKEN, mode="webhook", allowed_chats=(-100,)),
        llm=LLMConfig(
            base_url="https://user:pa55word@llm.example/v1?api_key=sk-in-a-query",
            api_keys=(KEYS[0],),
        ),
    )
    line = started_line(config, "http://127.0.0.1:8787")
    assert line.startswith(
        "threadgate started: webhook, model gpt-4o-mini at llm.example (1 API key)"
    )
    assert "allowlist 1 chat(s)" in line
    assert not any(secret in line for secret in ("pa55word", "sk-in-a-query", KEYS[0]))
    everyone = started_line(attrs.evolve(config, telegram=TelegramConfig()), "")
    assert "allowlist everyone" in everyone
