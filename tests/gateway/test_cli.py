"""The command line: its options, help and .env, in process; `threadgate run` as a process:
what stops the gateway is one line, no traceback, no secret, exit status 2; transient start
failures are retried; SIGTERM and SIGINT stop it gracefully (the threads drain) with exit
status 0; with no token outside a terminal it exits 2."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import attrs
import pytest

from gateway.cli import _parser, main
from gateway.config import AdminConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply, serve_in_thread
from gateway.ops.admin import AdminServer
from gateway.signals import STOP_TIMEOUT
from gateway.telegram.outbox import STOP_GRACE
from tests.gateway.ops.test_admin import Unhealthy

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


@pytest.mark.slow
def test_a_rejected_bot_token_stops_the_gateway_with_one_line(env: dict[str, str]) -> None:
    with BotAPISimulator(token="123456:another-token").serving_in_thread() as telegram:
        code, output = run(env, telegram.base_url)
    assert code == 2, output
    assert "threadgate: Telegram rejected the bot token" in output
    assert "Traceback" not in output
    assert "the-real-token" not in output


@pytest.mark.slow
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


@pytest.mark.slow
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
    def start(
        cls,
        env: dict[str, str],
        log: Path,
        command: str = "run",
        prefix: tuple[str, ...] = (),
    ) -> Gateway:
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own CLI, a test-chosen command
                [*prefix, sys.executable, "-m", "gateway.cli", command],
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_without_a_token_or_a_terminal_run_exits_2_saying_what_to_set(
    env: dict[str, str], tmp_path: Path
) -> None:
    del env["TELEGRAM_BOT_TOKEN"]
    (tmp_path / ".env").write_text("THREADGATE_LLM_MODEL=m\n")  # a .env without a token
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "threadgate: no bot token: set TELEGRAM_BOT_TOKEN (in the environment or in .env; "
        "`threadgate init` writes one), or run `threadgate demo` for the local demo"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("leave", [":quit", "SIGTERM"])
def test_without_a_token_in_a_terminal_run_starts_the_demo(
    env: dict[str, str], tmp_path: Path, leave: str
) -> None:
    """Left with ``:quit``, or with SIGTERM while the user is at the prompt (the thread that
    waited for the user's line kept the process alive after the demo had ended)."""
    del env["TELEGRAM_BOT_TOKEN"]
    controller, terminal = pty.openpty()
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run"],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=terminal,
            stdout=terminal,
            stderr=log,
        )
    os.close(terminal)
    shown = bytearray()
    try:
        deadline = time.monotonic() + 60
        while b":quit" not in shown:  # the demo console's help
            assert time.monotonic() < deadline, shown.decode(errors="replace")
            if select.select([controller], [], [], 0.5)[0]:
                shown += os.read(controller, 4096)
        if leave == "SIGTERM":
            process.send_signal(signal.SIGTERM)
        else:
            os.write(controller, b":quit\n")
        left = time.monotonic()
        with suppress(OSError):  # the terminal closes when the process exits
            while process.poll() is None:
                assert time.monotonic() - left < 15, f"still running after {leave}"
                if select.select([controller], [], [], 0.5)[0]:
                    os.read(controller, 4096)
        code = process.wait(15)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    output = (tmp_path / "log").read_text()
    assert code == 0, output
    assert "no TELEGRAM_BOT_TOKEN: starting the built-in local demo instead" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_sigterm_stops_the_local_demo_gracefully_with_exit_status_0(
    env: dict[str, str], tmp_path: Path
) -> None:
    del env["TELEGRAM_BOT_TOKEN"]
    gateway = Gateway.start(env, tmp_path / "log", "demo")
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


@pytest.mark.slow
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


def test_global_options_work_after_the_subcommand_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "t.toml"
    file.write_text('[llm]\nmodel = "from-file"\n')
    for argv in (
        ["--config", str(file), "--log-level", "debug", "check-config"],
        ["check-config", "--config", str(file), "--json-logs", "--log-level", "DEBUG"],
    ):
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["llm"]["model"] == "from-file"
    with pytest.raises(SystemExit):
        main(["check-config", "--log-level", "loud"])
    assert "invalid choice: 'LOUD'" in capsys.readouterr().err


def test_every_command_and_option_has_plain_help() -> None:
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {
        *("run", "demo", "init", "doctor", "status", "check-config", "pairing")
    }
    (actions,) = [
        a for a in commands.choices["pairing"]._actions if isinstance(a, argparse._SubParsersAction)
    ]
    assert set(actions.choices) == {"list", "approve", "revoke"}
    for choice in actions._choices_actions:
        assert choice.help, choice.dest
    nested = [(f"pairing {name}", sub) for name, sub in actions.choices.items()]
    for name, sub in [("threadgate", parser), *commands.choices.items(), *nested]:
        text = sub.format_help()
        for markup in ("``", ":class:", ":func:", ".. "):
            assert markup not in text, (name, text)
        for action in sub._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, (name, action.dest)
    for choice in commands._choices_actions:
        assert choice.help, choice.dest


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "THREADGATE_LLM_MODEL=from-dotenv\nTHREADGATE_BUSY_POLICY=interrupt\n"
        "THREADGATE_CONFIG=custom.toml\n"
    )
    (tmp_path / "custom.toml").write_text('[threads]\nreset_skills = ["cc"]\n')
    monkeypatch.delenv("THREADGATE_LLM_MODEL", raising=False)
    monkeypatch.delenv("THREADGATE_CONFIG", raising=False)
    monkeypatch.setenv("THREADGATE_BUSY_POLICY", "queue")
    assert main(["check-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["llm"]["model"] == "from-dotenv"
    assert printed["threads"]["busy_policy"] == "queue", "the real environment wins"
    assert printed["threads"]["reset_skills"] == ["cc"], "THREADGATE_CONFIG from .env"
    assert "THREADGATE_LLM_MODEL" not in os.environ, "the process environment is left alone"


@pytest.mark.slow
def test_status_json_into_a_closed_pipe_ends_quietly() -> None:
    server = AdminServer(Unhealthy("x", passes=True), AdminConfig(addr="127.0.0.1:0"))
    with serve_in_thread(server.start, server.stop, "admin"):
        addr = server.url.removeprefix("http://")
        command = ["status", "--json", "--watch", "--interval", "0.05", "--addr", addr]
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "gateway.cli", *command],
            env={**os.environ, "THREADGATE_CONFIG": "none.toml"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().strip() == b"{"  # `| head -1`
        process.stdout.close()
        code = process.wait(30)
        errors = process.stderr.read().decode()
        process.stderr.close()
    assert code == 0, errors
    assert errors == ""


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
        gateway = Gateway.start(env, tmp_path / "log", prefix=prefix)
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
