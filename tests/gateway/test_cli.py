"""`threadgate run`, as a process: what stops the gateway is one line, no traceback, no secret,
exit status 2; transient start failures are retried; SIGTERM and SIGINT stop it gracefully
(the threads drain) with exit status 0."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply
from gateway.signals import STOP_TIMEOUT
from gateway.telegram.outbox import STOP_GRACE

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
    env["THREADGATE_TELEGRAM_START_TIMEOUT"] = "2"
    code, output = run(env, f"http://127.0.0.1:{port}")
    assert code == 2, output
    assert f"threadgate: the Bot API at http://127.0.0.1:{port} did not answer" in output
    assert "gave up on getMe after 3 tries in 2s" in output
    assert output.count("getMe failed (TelegramNetworkError)") == 2, "each retry logged"
    assert "Traceback" not in output
    assert "the-real-token" not in output


def test_a_config_error_found_while_starting_is_one_line_too(env: dict[str, str]) -> None:
    env["THREADGATE_ADMIN_ADDR"] = "0.0.0.0:0"  # off loopback, and no admin token
    with BotAPISimulator(token=TOKEN).serving_in_thread() as telegram:
        code, output = run(env, telegram.base_url)
    assert code == 2, output
    assert "threadgate: config admin.token: required when admin.addr is not loopback" in output
    assert "Traceback" not in output


@attrs.define
class Gateway:
    """``threadgate run`` as a child process, its log in a file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, prefix: tuple[str, ...] = ()) -> Gateway:
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own commands
                [*prefix, sys.executable, "-m", "gateway.cli", "run"],
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in: {self.output}"
            time.sleep(0.05)

    def stop(self, signum: signal.Signals, timeout: float = 15) -> tuple[int, float]:
        """Send ``signum``; return the exit status and how long the process took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, time.monotonic() - sent


def test_get_me_failing_twice_is_retried_and_the_gateway_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    with BotAPISimulator(token=TOKEN, getme_failures=2).serving_in_thread() as telegram:
        env["THREADGATE_TELEGRAM_API_BASE"] = telegram.base_url
        gateway = Gateway.start(env, tmp_path / "log")
        gateway.wait_for("polling as @")
        code, _ = gateway.stop(signal.SIGTERM)
    output = gateway.output
    assert code == 0, output
    assert output.count("getMe failed (TelegramServerError: Internal Server Error)") == 2
    assert "Traceback" not in output
    assert "the-real-token" not in output


def test_sigterm_stops_the_local_demo_gracefully_with_exit_status_0(
    env: dict[str, str], tmp_path: Path
) -> None:
    del env["TELEGRAM_BOT_TOKEN"]
    gateway = Gateway.start(env, tmp_path / "log")
    gateway.wait_for("[topic 1] bot →")  # the walkthrough is under way (its log is in a file)
    code, took = gateway.stop(signal.SIGTERM, timeout=30)
    output, log = gateway.output, (tmp_path / "demo.log").read_text()
    assert code == 0, output
    # The demo's console is the conversation's: its log is in a file, and the console says so.
    assert log.count("stopping on SIGTERM: draining (at most 8s), then exiting") == 1
    assert "polling as @" in log
    assert "polling as @" not in output
    assert "stopping on SIGTERM" not in output
    assert f"The demo has ended. Its log: {tmp_path / 'demo.log'}" in output
    # The drain is cut short after STOP_TIMEOUT; a reply being shown then waits STOP_GRACE more
    # at most (the outbox's streams stop waiting when the threads drain).
    assert took < STOP_TIMEOUT + STOP_GRACE + 3, took
    assert "Traceback" not in output


def test_sigint_drains_the_answer_under_way_then_exits_0(
    env: dict[str, str], tmp_path: Path
) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    llm = LLMSimulator(default=lambda messages: Reply(words, chunk_delay=0.05))
    with (
        BotAPISimulator(token=TOKEN).serving_in_thread() as telegram,
        llm.serving_in_thread(),
    ):
        env.update(
            THREADGATE_TELEGRAM_API_BASE=telegram.base_url, THREADGATE_LLM_BASE_URL=llm.base_url
        )
        gateway = Gateway.start(env, tmp_path / "log")
        gateway.wait_for("polling as @")
        asked = telegram.say("a long answer, please", chat_id=7100, forum=False)
        deadline = time.monotonic() + 20
        while not any(m.reply_to == asked for m in telegram.sent):  # it is streaming
            assert time.monotonic() < deadline, gateway.output
            time.sleep(0.02)
        code, took = gateway.stop(signal.SIGINT)
        answer = [m.text for m in telegram.sent if m.reply_to == asked]
    output = gateway.output
    assert code == 0, output
    assert "stopping on SIGINT: draining (at most 8s), then exiting" in output
    assert answer == [words], "the answer under way was finished, not cut off"
    with sqlite3.connect(tmp_path / "threadgate.sqlite3") as db:
        (outcome,) = db.execute(
            "SELECT outcome FROM inbox WHERE message_id = ?", (asked,)
        ).fetchone()
    assert outcome == "answered"
    assert took < 10
    assert "Traceback" not in output


def _pid_1_namespace() -> tuple[str, ...] | None:
    """A command prefix that runs its command as PID 1 of a new PID namespace, as Docker
    does, where this machine allows it (root, util-linux's unshare)."""
    prefix = ("unshare", "--pid", "--fork", "--kill-child")
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command
            [*prefix, "sh", "-c", "echo $$"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if done.returncode == 0 and done.stdout.strip() == b"1" else None


def test_sigterm_from_outside_stops_the_gateway_running_as_pid_1(
    env: dict[str, str], tmp_path: Path
) -> None:
    """As in a container (``docker stop``): the kernel delivers a signal from outside to a
    namespace's PID 1 only if it installed a handler for it."""
    prefix = _pid_1_namespace()
    if prefix is None:
        pytest.skip("cannot make a PID namespace here (needs root and unshare)")
    with BotAPISimulator(token=TOKEN).serving_in_thread() as telegram:
        env["THREADGATE_TELEGRAM_API_BASE"] = telegram.base_url
        gateway = Gateway.start(env, tmp_path / "log", prefix)
        gateway.wait_for("polling as @")
        pid = gateway.process.pid
        [child] = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        nspid = next(
            line
            for line in Path(f"/proc/{child}/status").read_text().splitlines()
            if line.startswith("NSpid:")
        )
        assert nspid.split()[-1] == "1", nspid
        sent = time.monotonic()
        os.kill(int(child), signal.SIGTERM)
        code = gateway.process.wait(15)
        took = time.monotonic() - sent
    output = gateway.output
    assert code == 0, output
    assert "stopping on SIGTERM" in output
    assert "threadgate stopped after" in output
    assert took < 10, took
