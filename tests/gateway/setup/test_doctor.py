"""``threadgate doctor`` against the Bot API and model simulators, working and failing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator
from gateway.setup.doctor import Check, checks

TOKEN = "123456:doctor-test-token-AAAA"
SECRETS = (TOKEN, "sk-first-key", "sk-second-key")


@pytest.fixture
def telegram() -> Iterator[BotAPISimulator]:
    with BotAPISimulator(token=TOKEN).serving_in_thread() as simulator:
        yield simulator


@pytest.fixture
def model() -> Iterator[LLMSimulator]:
    simulator = LLMSimulator(
        models=("m1", "m2"),
        accepted_keys=frozenset({"sk-first-key", "sk-second-key"}),
        known_models_only=True,
    )
    with simulator.serving_in_thread():
        yield simulator


@pytest.fixture
def env(tmp_path: Path, telegram: BotAPISimulator, model: LLMSimulator) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "THREADGATE_TELEGRAM_API_BASE": telegram.base_url,
        "THREADGATE_LLM_BASE_URL": model.base_url,
        "THREADGATE_LLM_MODEL": "m1",
        "THREADGATE_LLM_API_KEYS": "sk-first-key,sk-second-key",
        "THREADGATE_ALLOWED_USERS": "42",
        "THREADGATE_DATA_DIR": str(tmp_path / "data"),
        "THREADGATE_ADMIN_ADDR": "127.0.0.1:0",
    }


def run(env: dict[str, str]) -> dict[str, Check]:
    """Every check, by name (they are unique in these set-ups)."""
    found = list(checks(partial(load, None, env)))
    assert len({c.name for c in found}) == len(found), found
    for check in found:
        for secret in SECRETS:
            assert secret not in check.detail + check.fix
    return {c.name: c for c in found}


def test_a_working_set_up_is_ok_throughout(env: dict[str, str]) -> None:
    found = run(env)
    assert [(name, c.level) for name, c in found.items()] == [
        ("config", "ok"),
        ("telegram", "ok"),
        ("webhook", "ok"),
        ("llm endpoint", "ok"),
        ("llm key-1", "ok"),
        ("llm key-2", "ok"),
        ("data_dir", "ok"),
        ("admin.addr", "ok"),
    ]
    assert found["telegram"].detail == "the token is @threadgate_demo_bot's (bot id 7000001)"
    assert "offers 'm1'" in found["llm endpoint"].detail
    assert found["data_dir"].detail.endswith("does not exist yet; run will create it")
    assert not Path(env["THREADGATE_DATA_DIR"]).exists(), "doctor changes nothing"


def test_failures_each_name_their_fix(
    env: dict[str, str], telegram: BotAPISimulator, model: LLMSimulator, tmp_path: Path
) -> None:
    env["THREADGATE_LLM_API_KEYS"] = "sk-first-key,sk-stale-key"
    (tmp_path / "file").write_text("")
    env["THREADGATE_DATA_DIR"] = str(tmp_path / "file" / "data")  # under a file: unwritable
    telegram.webhook = ("https://old.example/hook", "s")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["THREADGATE_ADMIN_ADDR"] = f"127.0.0.1:{taken.getsockname()[1]}"
        found = run(env)
    assert found["webhook"].level == "warn"
    assert "a webhook is set (https://old.example/hook) but the mode is polling" in (
        found["webhook"].detail
    )
    assert found["llm key-1"].level == "ok"
    assert found["llm key-2"].level == "fail"
    assert found["llm key-2"].detail.endswith("answered HTTP 401 invalid_api_key")
    assert "replace key-2" in found["llm key-2"].fix
    assert found["data_dir"].level == "fail"
    assert "THREADGATE_DATA_DIR" in found["data_dir"].fix
    assert found["admin.addr"].level == "fail"
    assert found["admin.addr"].detail.endswith("is taken")
    assert "threadgate status" in found["admin.addr"].fix


def test_a_rejected_token_and_an_unknown_model(env: dict[str, str]) -> None:
    env["TELEGRAM_BOT_TOKEN"] = "123456:not-this-one"
    env["THREADGATE_LLM_MODEL"] = "gpt-9"
    found = run(env)
    assert found["telegram"].level == "fail"
    assert found["telegram"].detail == "getMe: Telegram rejected the bot token (401 Unauthorized)"
    assert "@BotFather" in found["telegram"].fix
    assert "webhook" not in found
    assert found["llm model"].level == "fail"
    assert "does not offer 'gpt-9' (it offers: m1, m2)" in found["llm model"].detail
    assert "llm key-1" not in found, "no key is tried with a model that is not there"


def test_an_endpoint_without_models_tries_the_model_with_each_key(
    env: dict[str, str], model: LLMSimulator
) -> None:
    model.models_status = 404
    env["THREADGATE_LLM_MODEL"] = "gpt-9"
    found = run(env)
    assert found["llm endpoint"].level == "ok"
    assert "it lists no models" in found["llm endpoint"].detail
    assert found["llm key-1"].level == "fail"
    assert "the model is unknown" in found["llm key-1"].detail


def test_unreachable_endpoints_fail(env: dict[str, str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env.update(THREADGATE_TELEGRAM_API_BASE=nowhere, THREADGATE_LLM_BASE_URL=nowhere + "/v1")
    found = run(env)
    assert found["telegram"].level == "fail"
    assert found["telegram"].detail == f"getMe: no answer from {nowhere} (ConnectError)"
    assert found["llm endpoint"].level == "fail"
    assert "no answer from 127.0.0.1 (ConnectError)" in found["llm endpoint"].detail


def test_webhook_mode_compares_the_webhook_set(
    env: dict[str, str], telegram: BotAPISimulator
) -> None:
    env.update(
        THREADGATE_TELEGRAM_MODE="webhook",
        THREADGATE_WEBHOOK_URL="https://bot.example/hook",
        THREADGATE_WEBHOOK_SECRET="secret-1",
        THREADGATE_WEBHOOK_LISTEN="127.0.0.1:0",
    )
    assert run(env)["webhook"].detail == "none set yet; threadgate run sets telegram.webhook_url"
    telegram.webhook = ("https://elsewhere.example/hook", "x")
    assert run(env)["webhook"].level == "warn"
    telegram.webhook = ("https://bot.example/hook", "secret-1")
    assert run(env)["webhook"].level == "ok"
    telegram.webhook_last_error = "Connection timed out"
    found = run(env)
    assert found["webhook"].detail.endswith("its last delivery failed: Connection timed out")
    assert found["telegram.webhook_listen"].level == "ok"


def test_the_command_prints_one_line_per_check_and_exits_1_on_a_failure(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("THREADGATE_ALLOWED_USERS")
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ok   config: valid"
    assert lines[1].startswith("warn config: telegram.allowed_users and telegram.allowed_chats")
    assert lines[1].endswith("→ set THREADGATE_ALLOWED_USERS")
    assert len(lines) == 9
    monkeypatch.setenv("THREADGATE_LLM_API_KEYS", "sk-wrong")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "fail llm key-1: refused: " in out
    for secret in (*SECRETS, "sk-wrong"):
        assert secret not in out


def test_an_invalid_config_is_one_failed_check(env: dict[str, str]) -> None:
    env["THREADGATE_LLM_BASE_URL"] = "api.openai.com/v1"
    found = list(checks(partial(load, None, env)))
    assert [(c.level, c.name) for c in found] == [("fail", "config")]
    assert "config llm.base_url: must be a URL" in found[0].detail
