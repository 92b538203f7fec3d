"""The gateway process is killed with SIGKILL mid-run; after a restart every accepted message
is answered. Duplicates are possible only for runs whose outcome was unknown (killed while
streaming): those are answered again, from the start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from tests.gateway.harness import KEYS, TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gateway-processes")]
"""Whole gateway processes: one such test at a time (``make test``'s ``--dist loadgroup``),
so their start-ups (seconds of CPU each) do not crowd each other and the tests beside them."""


def slow(messages: list[dict[str, str]]) -> Reply:
    return Reply(
        default_answer(messages) + " " + " ".join(["more"] * 25) + " END", chunk_delay=0.15
    )


def wait(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


@contextmanager
def gateway_process(
    telegram: BotAPISimulator, llm: LLMSimulator, data_dir: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "THREADGATE_TELEGRAM_API_BASE": telegram.base_url,
        "THREADGATE_LLM_BASE_URL": llm.base_url,
        "THREADGATE_LLM_API_KEYS": ",".join(KEYS),
        "THREADGATE_DATA_DIR": str(data_dir),
        "THREADGATE_ADMIN_ADDR": "127.0.0.1:0",
        "THREADGATE_CONFIG": str(data_dir / "none.toml"),
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run"], env=env, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def finished(telegram: BotAPISimulator, chat: int) -> bool:
    return any(t.endswith(" END") for t in telegram.texts(chat))


def test_sigkill_mid_run_then_restart_answers_every_accepted_message(tmp_path: Path) -> None:
    telegram, llm = BotAPISimulator(), LLMSimulator(default=slow)
    chats = [5001, 5002, 5003]
    log = tmp_path / "gateway.log"
    with telegram.serving_in_thread(), llm.serving_in_thread():
        with gateway_process(telegram, llm, tmp_path, log) as first:
            for chat in chats:
                telegram.say(f"question for {chat}", chat_id=chat, forum=False)
            wait(lambda: all(telegram.texts(chat) for chat in chats))  # all three are streaming
            assert not any(finished(telegram, chat) for chat in chats)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        late = 5004
        telegram.say("sent while it was down", chat_id=late, forum=False)
        with gateway_process(telegram, llm, tmp_path, log) as second:
            wait(lambda: all(finished(telegram, chat) for chat in [*chats, late]), timeout=60)
            second.send_signal(signal.SIGINT)
            assert second.wait(20) == 0, log.read_text()[-2000:]
    output = log.read_text()
    for chat in chats:
        texts = telegram.texts(chat)
        assert any("answering your message again" in t for t in texts), texts
        assert any(t.startswith("You said: question for") and t.endswith(" END") for t in texts)
    assert telegram.texts(late)[-1].startswith("You said: sent while it was down")
    assert "Traceback" not in output.split("stopped")[0] or "KeyboardInterrupt" in output
