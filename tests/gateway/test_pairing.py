"""Pairing end to end: the gateway between the simulators, and ``threadgate pairing ...`` run
for real against its data directory while it runs (in a worker thread, on its own connection
and event loop, as another process would)."""

from __future__ import annotations

import io
import re
import time
from functools import partial
from pathlib import Path

import anyio.to_thread
import pytest

from gateway.cli import main
from gateway.config import Config, TelegramConfig
from gateway.config_check import warnings as config_warnings
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.pairing_cli import WELCOME, approve_pairing, list_pairing, revoke_pairing
from gateway.parts import started_line
from gateway.store.pairing import ALPHABET, VALIDITY
from gateway.store.sqlite import Store
from tests.gateway.harness import TOKEN, Running, running_gateway, wait_until

pytestmark = pytest.mark.anyio
FRIEND, STRANGER = 7, 8
PAIRING: dict[str, object] = {"dm_policy": "pairing", "allowed_users": (FRIEND,)}
CODE = re.compile(f"[{ALPHABET}]{{8}}")


async def said(run: Running, text: str, user: int) -> str:
    """``user`` writes ``text`` in their private chat; the bot's reply to it (a pairing code;
    or an answer, once it is whole)."""
    message = run.telegram.say(text, chat_id=user, user_id=user)
    await wait_until(lambda: bool(run.replies_to(message)))
    if not CODE.search(run.replies_to(message)[0].text):
        await wait_until(lambda: run.outcome(message) == "answered")
    return run.replies_to(message)[0].text


async def cli(func: partial[int]) -> tuple[int, str, str]:
    """A ``threadgate pairing`` function in a worker thread: status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = await anyio.to_thread.run_sync(partial(func, out=out, err=err))
    return status, out.getvalue(), err.getvalue()


async def test_a_stranger_gets_a_code_the_operator_approves_it_then_revokes_them(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, bot=PAIRING) as run:
        assert (await said(run, "hi from a friend", FRIEND)).startswith("You said:")
        requests = len(run.llm.requests)

        reply = await said(run, "let me in", STRANGER)
        match = CODE.search(reply)
        assert match is not None, reply
        code = match.group(0)
        assert f"Ask the operator to run: threadgate pairing approve {code}" in reply
        listing = io.StringIO()
        assert await anyio.to_thread.run_sync(partial(list_pairing, tmp_path, out=listing)) == 0
        assert f"{code}  user {STRANGER} user{STRANGER}, asked " in listing.getvalue()
        assert len(run.llm.requests) == requests, "no model request for a stranger"
        assert run.unanswered_in_inbox() == []
        assert run.outcome(run.telegram.sent[-1].reply_to or 0) is None, "not in the inbox"

        bot = (run.telegram.base_url, TOKEN)
        assert await cli(partial(approve_pairing, tmp_path, code.lower(), bot=bot)) == (
            0,
            f"approved user {STRANGER} user{STRANGER}: they can write to the bot now\n",
            "",
        )
        assert run.telegram.texts(STRANGER)[-1] == WELCOME, "told, by the CLI"
        assert (await said(run, "am I in?", STRANGER)).startswith("You said: am I in?")
        assert len(run.llm.requests) == requests + 1
        status, _, err = await cli(partial(approve_pairing, tmp_path, code))
        assert (status, err) == (1, f"threadgate: pairing code {code} is unknown or expired\n")

        assert (await cli(partial(revoke_pairing, tmp_path, STRANGER)))[0] == 0
        again = await said(run, "still in?", STRANGER)
        assert CODE.search(again), "a stranger again: a new code"
        assert len(run.llm.requests) == requests + 1
        assert (await said(run, "and me?", FRIEND)).startswith("You said: and me?")
        status, _, err = await cli(partial(revoke_pairing, tmp_path, STRANGER))
        assert (status, err) == (1, f"threadgate: user {STRANGER} is not an approved user\n")
        await run.quiet()


async def test_an_expired_code_is_refused_by_approve(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, bot=PAIRING) as run:
        match = CODE.search(await said(run, "let me in", STRANGER))
        assert match is not None
        later = time.time() + VALIDITY
        status, out, err = await cli(partial(approve_pairing, tmp_path, match.group(0), now=later))
        assert (status, out) == (1, "")
        assert err == f"threadgate: pairing code {match.group(0)} is unknown or expired\n"
        listing = io.StringIO()
        assert await anyio.to_thread.run_sync(partial(list_pairing, tmp_path, out=listing)) == 0
        assert "Approved users (0):" in listing.getvalue(), "still a stranger"


async def test_open_admits_strangers_in_private_chats(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, bot={"dm_policy": "open", "allowed_users": (1,)}) as run:
        assert (await said(run, "hello", STRANGER)).startswith("You said: hello")
        group = run.telegram.say("in a group", chat_id=-1001, user_id=STRANGER)
        await anyio.sleep(1)
        assert run.replies_to(group) == [], "groups keep their allowlist"
        assert run.outcome(group) is None


async def test_an_approval_survives_a_restart(tmp_path: Path) -> None:
    telegram = BotAPISimulator(token=TOKEN)
    async with running_gateway(tmp_path, telegram=telegram, bot=PAIRING) as run:
        match = CODE.search(await said(run, "let me in", STRANGER))
        assert match is not None
        wrong = (telegram.base_url, "123456:not-the-token")
        status, _, err = await cli(partial(approve_pairing, tmp_path, match.group(0), bot=wrong))
        assert status == 0, "approved all the same"
        assert err == (
            "threadgate: warning: the user was not told (the Bot API answered 401: Unauthorized)\n"
        )
        assert "not-the-token" not in err
    async with running_gateway(tmp_path, telegram=telegram, bot=PAIRING) as run:
        assert (await said(run, "after the restart", STRANGER)).startswith("You said:")


def test_the_commands_in_process_with_the_data_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THREADGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("THREADGATE_CONFIG", str(tmp_path / "none.toml"))
    assert main(["pairing", "list"]) == 2
    assert capsys.readouterr().err == (
        f"threadgate: no store at {tmp_path / 'threadgate.sqlite3'}: start the gateway once "
        "with this data_dir (see --config)\n"
    )
    Store(tmp_path / "threadgate.sqlite3").close()  # as a gateway leaves it
    assert main(["pairing", "list"]) == 0
    assert capsys.readouterr().out == "Pending codes (0):\nApproved users (0):\n"
    assert main(["pairing", "approve", "abcd-efgh"]) == 1
    assert capsys.readouterr().err == "threadgate: pairing code ABCDEFGH is unknown or expired\n"
    assert main(["pairing", "revoke", "5"]) == 1
    assert capsys.readouterr().err == "threadgate: user 5 is not an approved user\n"
    with pytest.raises(SystemExit):
        main(["pairing", "revoke", "@eve"])
    assert "invalid int value: '@eve'" in capsys.readouterr().err


def test_the_config_warnings_and_the_start_line_know_the_dm_policy() -> None:
    pairing = Config(telegram=TelegramConfig(dm_policy="pairing"))
    assert config_warnings(pairing) == [], "an empty allowlist admits nobody here"
    opened = Config(telegram=TelegramConfig(dm_policy="open", allowed_users=(1,)))
    [warning] = config_warnings(opened)
    assert warning.startswith("telegram.dm_policy is open: anyone who finds the bot can use it")
    assert "allowlist approved users (private chats: pairing)," in started_line(pairing, "")
    listed = Config(telegram=TelegramConfig(dm_policy="pairing", allowed_users=(1, 2)))
    assert "allowlist 2 user(s) and approved users (private chats: pairing)," in started_line(
        listed, ""
    )
    assert "allowlist everyone, " in started_line(Config(), "")


async def test_the_commands_work_on_a_postgresql_store_beside_its_gateway(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(tmp_path, bot=PAIRING, store_url=postgres_url) as run:
        match = CODE.search(await said(run, "let me in", STRANGER))
        assert match is not None
        code = match.group(0)
        listing = io.StringIO()
        listed = partial(list_pairing, tmp_path / "elsewhere", url=postgres_url, out=listing)
        assert await anyio.to_thread.run_sync(listed) == 0
        assert f"{code}  user {STRANGER} user{STRANGER}, asked " in listing.getvalue()
        status, out, _ = await cli(partial(approve_pairing, tmp_path, code, url=postgres_url))
        assert (status, out.startswith(f"approved user {STRANGER}")) == (0, True)
        assert (await said(run, "am I in?", STRANGER)).startswith("You said: am I in?")
        monkeypatch.setenv("THREADGATE_DATABASE_URL", postgres_url)
        monkeypatch.setenv("THREADGATE_CONFIG", str(tmp_path / "none.toml"))
        monkeypatch.setenv("THREADGATE_DATA_DIR", str(tmp_path / "empty"))
        assert await anyio.to_thread.run_sync(main, ["pairing", "revoke", str(STRANGER)]) == 0
        again = await said(run, "still in?", STRANGER)
        assert CODE.search(again), "revoked through THREADGATE_DATABASE_URL: a stranger again"
        assert not (tmp_path / "empty" / "threadgate.sqlite3").exists()
        await run.quiet()
