"""Controls end to end: the command menu, Stop button presses (every one answered) and
stopped drafts, between the simulated Bot API and the real gateway."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from aiogram.types import Update

from actors import Supervisor, SupervisorConfig
from actors.thread.records import ThreadKey
from gateway.config import Config, TelegramConfig, ThreadsConfig
from gateway.demo import botapi_updates
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.botapi_updates import CallbackAnswer
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from gateway.telegram import callbacks
from gateway.telegram.bot import make_bot
from gateway.telegram.callbacks import Callbacks
from gateway.telegram.commands import menus
from gateway.telegram.stop_button import callback_data
from tests.gateway.harness import ADMIN, TOKEN, Running, running_gateway, wait_until
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio
GROUP = -100700
DM = 42


def slow_when_long(messages: list[dict[str, str]]) -> Reply:
    if "long" in str(messages[-1]["content"]):
        return Reply(" ".join(f"w{i}" for i in range(80)), chunk_delay=0.1)
    return Reply(default_answer(messages))


async def answered(run: Running, text: str, chat_id: int = DM, user_id: int = DM) -> int:
    """Say ``text``; wait for the answer; the id of the bot's answer."""
    said = run.telegram.say(text, chat_id=chat_id, forum=False, user_id=user_id)
    await wait_until(lambda: run.outcome(said) == "answered")
    return run.replies_to(said)[0].message_id


async def answer_to(run: Running, query_id: str) -> CallbackAnswer:
    await wait_until(lambda: bool(run.telegram.answers_to(query_id)))
    await anyio.sleep(0.2)  # a second answer, if any, would be recorded by now
    (answer,) = run.telegram.answers_to(query_id)
    return answer


def names(commands: list[dict[str, str]]) -> list[str]:
    return [command["command"] for command in commands]


async def test_the_command_menus_are_set_for_private_chats_and_groups(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, allowed_models=("scripted", "other")) as run:
        tg = run.telegram
        await wait_until(lambda: len(tg.menus) == 2)
        session = ["new", "reset", "stop", "retry", "status", "model", "help", "usage", "cc"]
        assert names(tg.menus["all_private_chats"]) == session
        assert names(tg.menus["all_group_chats"]) == [*session, "activation"]
        assert all(0 < len(c["description"]) <= 60 for c in tg.menus["all_group_chats"])
        asked = set(tg.allowed_updates or ())
        assert {"message", "callback_query", "stopped_message_generation"} <= asked


async def test_without_allowed_models_the_menu_has_no_model(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        await wait_until(lambda: "all_private_chats" in run.telegram.menus)
        assert "model" not in names(run.telegram.menus["all_private_chats"])


async def test_a_menu_telegram_keeps_failing_is_a_warning_per_menu_and_the_gateway_goes_on(
    tmp_path: Path,
) -> None:
    telegram = BotAPISimulator(fail_set_commands=10_000)
    with captured_logs("WARNING") as logs:
        async with running_gateway(tmp_path, telegram, bot={"start_timeout": 1}) as run:
            await answered(run, "still here?")
            await wait_until(lambda: any("command menu" in line for line in logs))
    assert run.telegram.menus == {}
    menu_lines = [line for line in logs if "command menu" in line]
    # One each: the private chats' menu that failed did not keep the groups' from being tried.
    assert len(menu_lines) == 2, menu_lines
    assert "all_private_chats" in menu_lines[0]
    assert "all_group_chats" in menu_lines[1]
    assert all("the commands work without it" in line for line in menu_lines)


async def test_a_press_of_a_button_that_is_no_stop_button_is_answered(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        answer = await answered(run, "hi")
        with captured_logs() as logs:
            query = run.telegram.press(DM, answer, "vote:yes", user_id=DM)
            got = await answer_to(run, query)
        assert got == CallbackAnswer(query, callbacks.INACTIVE, False)
        assert any(f"button press {query} by {DM}" in line for line in logs)
        assert run.unanswered_in_inbox() == []  # presses are not inbox messages


async def test_a_press_from_a_user_who_is_not_allowed_gets_an_alert(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, bot={"allowed_users": (DM,)}) as run:
        answer = await answered(run, "hi", chat_id=GROUP)
        query = run.telegram.press(GROUP, answer, "stop:1", user_id=9)
        assert await answer_to(run, query) == CallbackAnswer(query, callbacks.NOT_ALLOWED, True)


async def test_another_members_stop_button_in_a_per_user_thread_is_refused_with_an_alert(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, group_sessions="per_user") as run:
        answer = await answered(run, "hi", chat_id=GROUP, user_id=1)
        data = callback_data(ThreadKey(GROUP, None, 1), 1)
        query = run.telegram.press(GROUP, answer, data, user_id=2)
        assert await answer_to(run, query) == CallbackAnswer(query, callbacks.NOT_YOURS, True)


async def test_a_failed_answer_is_a_log_line_and_the_next_press_is_answered(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as run:
        answer = await answered(run, "hi")
        run.telegram.fail_callback_answers = 1
        with captured_logs("WARNING") as logs:
            first = run.telegram.press(DM, answer, "vote:1", user_id=DM)
            await wait_until(lambda: any(f"button press {first} not answered" in x for x in logs))
        second = run.telegram.press(DM, answer, "vote:2", user_id=DM)
        assert (await answer_to(run, second)).text == callbacks.INACTIVE
        assert run.telegram.answers_to(first) == []


async def test_a_full_queue_answers_busy_at_once(tmp_path: Path) -> None:
    """The handler's workers are not running here: the queue fills, and the next press is
    answered at once by the caller (the poller would be), never waited for."""
    with BotAPISimulator().serving_in_thread() as telegram:
        bot = make_bot(TelegramConfig(token=TOKEN, api_base=telegram.base_url))

        async def allows(user: int | None, chat: int | None) -> bool:
            return True

        threads: Supervisor[ThreadKey] = Supervisor(lambda key: None, SupervisorConfig())  # type: ignore[arg-type, return-value]
        handler = Callbacks(bot, threads, allows, frozenset())
        message = {"message_id": 1, "date": 0, "chat": {"id": DM, "type": "private"}, "text": "x"}
        presser = botapi_updates.user(DM)
        try:
            with captured_logs("WARNING") as logs:
                for n in range(callbacks.CAPACITY + 1):
                    body = botapi_updates.callback_query(f"q{n}", presser, message, "stop:1")
                    await handler.offer(Update.model_validate({"update_id": n + 1, **body}))
        finally:
            handler.close()
            await bot.session.close()
        last = f"q{callbacks.CAPACITY}"
        assert telegram.callback_answers == [CallbackAnswer(last, callbacks.BUSY, False)]
        assert any("presses are waiting" in line for line in logs)


async def test_a_stopped_draft_reaches_its_thread(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        await answered(run, "hi")
        with captured_logs() as logs:
            run.telegram.stop_generation(DM, 1)
            await wait_until(lambda: any(f"draft 1 in {DM} stopped by the user" in x for x in logs))
        await run.quiet()


async def test_a_stale_stop_button_says_the_answer_already_finished(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        answer = await answered(run, "hi")
        query = run.telegram.press(DM, answer, callback_data(ThreadKey(DM), 1), user_id=DM)
        assert await answer_to(run, query) == CallbackAnswer(query, callbacks.FINISHED, False)


async def test_a_press_stops_the_current_run_and_an_admin_may_stop_a_members_own(
    tmp_path: Path,
) -> None:
    llm = LLMSimulator(default=slow_when_long)
    async with running_gateway(tmp_path, llm=llm, group_sessions="per_user") as run:
        tg = run.telegram
        said = tg.say("a long answer", chat_id=GROUP, forum=False, user_id=1)
        await wait_until(lambda: bool(run.replies_to(said)))
        streaming = run.replies_to(said)[0].message_id
        data = callback_data(ThreadKey(GROUP, None, 1), 1)  # the thread's first run
        query = tg.press(GROUP, streaming, data, user_id=ADMIN)
        assert await answer_to(run, query) == CallbackAnswer(query, callbacks.STOPPED, False)
        await wait_until(lambda: run.outcome(said) == "stopped")


async def test_a_stopped_draft_stops_its_run(tmp_path: Path) -> None:
    llm = LLMSimulator(default=slow_when_long)
    async with running_gateway(tmp_path, llm=llm) as run:
        said = run.telegram.say("a long answer", chat_id=DM, forum=False, user_id=DM)
        await wait_until(lambda: bool(run.replies_to(said)))
        run.telegram.stop_generation(DM, 1)  # the draft id is the run id
        await wait_until(lambda: run.outcome(said) == "stopped")


def test_a_reset_skill_telegram_would_refuse_is_left_out_of_the_menu() -> None:
    config = Config(threads=ThreadsConfig(reset_skills=("cc", "Bad-Name", "new")))
    with captured_logs("WARNING") as logs:
        private, group = menus(config)
    assert [c.command for c in private.commands].count("new") == 1
    assert "cc" in [c.command for c in private.commands]
    assert "Bad-Name" not in [c.command for c in group.commands]
    assert any("/Bad-Name left out" in line for line in logs)
    assert (private.scope.type, group.scope.type) == ("all_private_chats", "all_group_chats")
