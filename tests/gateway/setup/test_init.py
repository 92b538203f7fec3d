"""``threadgate init`` driven with scripted input against the Bot API and model simulators."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values
from rich.console import Console

from gateway.config import load
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator
from gateway.exceptions import SetupAbortedError
from gateway.setup.init import PRESETS, run_init

TOKEN = "123456:init-test-token-AAAA"
VLLM = str(next(n for n, p in enumerate(PRESETS, 1) if p.name == "vLLM"))
OPENAI = str(next(n for n, p in enumerate(PRESETS, 1) if p.name == "OpenAI"))


@pytest.fixture
def telegram() -> Iterator[BotAPISimulator]:
    with BotAPISimulator(token=TOKEN).serving_in_thread() as simulator:
        yield simulator


@pytest.fixture
def model() -> Iterator[LLMSimulator]:
    simulator = LLMSimulator(models=("alpha", "beta"), accepted_keys=frozenset({"sk-a", "sk-b"}))
    with simulator.serving_in_thread():
        yield simulator


def drive(
    directory: Path,
    api_base: str,
    *lines: str,
    env: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> tuple[int | str, str]:
    """Run init with ``lines`` as its input: its exit status (or the error that stopped it)
    and everything it printed. ``env`` is what the CLI passes (an earlier ``.env`` merged
    with the environment), ``environment`` the process's own."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    script = io.StringIO("".join(f"{line}\n" for line in lines))
    env = {"THREADGATE_TELEGRAM_API_BASE": api_base, **(env or {})}
    try:
        result: int | str = run_init(
            console, directory, env, script, wait_for_message=1, environment=environment
        )
    except SetupAbortedError as error:
        result = str(error)
    return result, out.getvalue()


def test_a_whole_set_up_writes_the_config_and_the_secrets(
    tmp_path: Path, telegram: BotAPISimulator, model: LLMSimulator
) -> None:
    telegram.say("hi bot", chat_id=555, user_id=555, forum=False)
    code, shown = drive(
        tmp_path,
        telegram.base_url,
        TOKEN,
        VLLM,
        model.base_url,
        "sk-a, sk-b",
        "2",  # beta
        "",  # "Sent it?"
        "y",  # allow user 555
        "777",
    )
    assert code == 0, shown
    assert "ok: this is @threadgate_demo_bot" in shown
    assert "1. alpha\n  2. beta" in shown
    assert "Allow user555 (user id 555)?" in shown
    config = load(tmp_path / "threadgate.toml", dotenv_values(tmp_path / ".env"))  # type: ignore[arg-type]
    assert config.telegram.token == TOKEN
    assert config.llm.api_keys == ("sk-a", "sk-b")
    assert (config.llm.base_url, config.llm.model) == (model.base_url, "beta")
    assert config.telegram.allowed_users == (555, 777)
    assert config.telegram.admin_users == (555, 777)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert TOKEN not in (tmp_path / "threadgate.toml").read_text()
    for secret in (TOKEN, "sk-a", "sk-b"):
        assert secret not in shown
    assert telegram.confirmed == 0, "init confirms no update: the gateway still gets them"


@pytest.mark.slow
def test_every_step_asks_again_after_a_failure(tmp_path: Path, telegram: BotAPISimulator) -> None:
    refusing = LLMSimulator(models_status=404, accepted_keys=frozenset({"sk-good"}))
    (tmp_path / ".env").write_text("KEEP_ME=1\n")
    with refusing.serving_in_thread():
        code, shown = drive(
            tmp_path,
            telegram.base_url,
            "not a token",
            "999:wrong-token",
            TOKEN,
            "9",  # no such provider
            VLLM,
            "127.0.0.1:8000/v1",  # no scheme
            refusing.base_url,
            "sk-bad",
            "sk-good",
            "my-model",  # no /models: typed
            "",  # "Sent it?" (nothing was sent)
            "@alice",  # not a user id
            "42",
        )
    assert code == 0, shown
    assert "That is not a bot token" in shown
    assert "Telegram rejected the bot token (401 Unauthorized)" in shown
    assert "Pick a number from 1 to" in shown
    assert "The URL must be a URL starting http:// or https://" in shown
    assert "answered HTTP 401 invalid_api_key" in shown
    assert "The endpoint refused the key; enter it again." in shown
    assert "No message arrived." in shown
    assert "User ids are numbers" in shown
    config = load(tmp_path / "threadgate.toml", dotenv_values(tmp_path / ".env"))  # type: ignore[arg-type]
    assert (config.llm.model, config.llm.api_keys) == ("my-model", ("sk-good",))
    assert config.telegram.allowed_users == (42,)
    assert dotenv_values(tmp_path / ".env")["KEEP_ME"] == "1", "other lines of .env are kept"
    for secret in ("sk-bad", "wrong-token"):
        assert secret not in shown


def test_an_unreachable_telegram_and_provider(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    code, shown = drive(
        tmp_path,
        nowhere,
        TOKEN,
        "y",  # keep the token although Telegram could not be asked
        VLLM,
        nowhere + "/v1",
        "",  # no keys
        "local-model",  # the models cannot be listed
        "",  # no user ids
    )
    assert code == 0, shown
    assert f"no answer from {nowhere} (ConnectError)" in shown
    assert "The models cannot be listed; type the model's name." in shown
    assert "Nobody listed: anyone who finds the bot can use it." in shown
    assert "Send any message" not in shown, "no getUpdates without a bot that answered"
    config = load(tmp_path / "threadgate.toml", dotenv_values(tmp_path / ".env"))  # type: ignore[arg-type]
    assert (config.llm.model, config.llm.api_keys) == ("local-model", ())


def test_a_hosted_provider_needs_a_key_and_ending_input_writes_nothing(
    tmp_path: Path, telegram: BotAPISimulator
) -> None:
    code, shown = drive(tmp_path, telegram.base_url, TOKEN, OPENAI, "")
    assert code == "init stopped: the input ended; nothing was written"
    assert "OpenAI needs a key" in shown
    assert not (tmp_path / "threadgate.toml").exists()
    assert not (tmp_path / ".env").exists()


def test_an_existing_config_is_kept_unless_replacing_it_is_confirmed(
    tmp_path: Path, telegram: BotAPISimulator
) -> None:
    (tmp_path / "threadgate.toml").write_text("# mine\n")
    code, _ = drive(tmp_path, telegram.base_url, "n")
    assert code == f"init stopped: {tmp_path / 'threadgate.toml'} is kept as it is"
    assert (tmp_path / "threadgate.toml").read_text() == "# mine\n"


def test_three_wrong_tokens_stop_init(tmp_path: Path, telegram: BotAPISimulator) -> None:
    code, _ = drive(tmp_path, telegram.base_url, "1:a", "2:b", "3:c")
    assert code == "init stopped: no working bot token after 3 tries"


@pytest.mark.parametrize("in_environment", [False, True])
def test_a_second_init_warns_only_of_secrets_the_real_environment_sets(
    tmp_path: Path,
    telegram: BotAPISimulator,
    model: LLMSimulator,
    in_environment: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI passes the earlier ``.env`` merged into ``env``: its token is not "also set in
    the environment" (it said so, found by review); one the process has is."""
    monkeypatch.chdir(tmp_path)
    earlier = {"TELEGRAM_BOT_TOKEN": TOKEN, "THREADGATE_LLM_API_KEYS": "sk-a"}
    telegram.say("hi bot", chat_id=555, user_id=555, forum=False)
    code, shown = drive(
        tmp_path,
        telegram.base_url,
        TOKEN,
        VLLM,
        model.base_url,
        "sk-a",
        "1",
        "",
        "y",
        "",
        env=earlier,
        environment={"TELEGRAM_BOT_TOKEN": TOKEN} if in_environment else {},
    )
    assert code == 0, shown
    warned = "TELEGRAM_BOT_TOKEN is also set in the environment" in shown
    assert warned is in_environment, shown
    assert "THREADGATE_LLM_API_KEYS is also set" not in shown
    assert "Next: threadgate doctor" in shown


def test_init_in_another_directory_says_to_go_there(
    tmp_path: Path, telegram: BotAPISimulator, model: LLMSimulator
) -> None:
    elsewhere = tmp_path / "bot"
    elsewhere.mkdir()
    code, shown = drive(
        elsewhere, telegram.base_url, TOKEN, VLLM, model.base_url, "sk-a", "1", "", "", ""
    )
    assert code == 0, shown
    assert f"Next: cd {elsewhere}, threadgate doctor" in shown


@pytest.mark.slow
def test_init_with_piped_input_reads_secrets_without_a_getpass_warning(
    tmp_path: Path, telegram: BotAPISimulator, model: LLMSimulator
) -> None:
    """getpass, asked to read from a pipe, warns that the password may be echoed (review)."""
    telegram.say("hi bot", chat_id=555, user_id=555, forum=False)
    lines = [TOKEN, VLLM, model.base_url, "sk-a", "1", "", "y", ""]
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "gateway.cli", "init", "--dir", str(tmp_path)],
        input="".join(f"{line}\n" for line in lines),
        env={**os.environ, "THREADGATE_TELEGRAM_API_BASE": telegram.base_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GetPassWarning" not in done.stderr
    assert "may be echoed" not in done.stdout + done.stderr
    assert dotenv_values(tmp_path / ".env")["TELEGRAM_BOT_TOKEN"] == TOKEN
