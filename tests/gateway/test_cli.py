"""`threadgate run`, as a process, reports what stops the gateway in one line: no traceback,
no secret, exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.demo.botapi_sim import BotAPISimulator

pytestmark = pytest.mark.slow
TOKEN = "123456:the-real-token-for-this-test"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "THREADGATE_DATA_DIR": str(tmp_path),
        "THREADGATE_ADMIN_ADDR": "127.0.0.1:0",
        "THREADGATE_CONFIG": str(tmp_path / "none.toml"),
    }


def run(env: dict[str, str], api_base: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run"],
        env={**env, "THREADGATE_TELEGRAM_API_BASE": api_base},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_rejected_bot_token_stops_the_gateway_with_one_line(env: dict[str, str]) -> None:
    with BotAPISimulator(token="123456:another-token").serving_in_thread() as telegram:
        code, output = run(env, telegram.base_url)
    assert code == 2, output
    assert "threadgate: Telegram rejected the bot token" in output
    assert "Traceback" not in output
    assert "the-real-token" not in output


def test_an_unreachable_bot_api_stops_the_gateway_with_one_line(env: dict[str, str]) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, output = run(env, f"http://127.0.0.1:{port}")
    assert code == 2, output
    assert f"threadgate: the Bot API at http://127.0.0.1:{port} did not answer" in output
    assert "Traceback" not in output
    assert "the-real-token" not in output


def test_a_config_error_found_while_starting_is_one_line_too(env: dict[str, str]) -> None:
    env["THREADGATE_ADMIN_ADDR"] = "0.0.0.0:0"  # off loopback, and no admin token
    with BotAPISimulator(token=TOKEN).serving_in_thread() as telegram:
        code, output = run(env, telegram.base_url)
    assert code == 2, output
    assert "threadgate: config admin.token: required when admin.addr is not loopback" in output
    assert "Traceback" not in output
