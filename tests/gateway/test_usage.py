"""Usage and limits end to end: the Bot API simulator, the real gateway, the LLM simulator.

A run's usage (the provider's, else estimated) is counted per user, chat and model, shown by
``/usage`` and ``/usage all``, exported as Prometheus counters and by the admin endpoint's
``/usage``; a user over a daily limit gets the ``LIMITED`` outcome and a reply saying when it
resets, while an admin is exempt.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import httpx
import pytest
from rich.console import Console

from actors.thread.messages import UserMessage
from actors.thread.records import ThreadKey
from gateway.app import open_gateway
from gateway.config import LimitsConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply
from gateway.ops.status_view import render
from gateway.store.sqlite import InboxEntry, Store
from gateway.store.usage import UsageStore
from gateway.telegram.routing import to_payload
from gateway.telegram.usage_texts import USAGE_ADMIN_ONLY
from tests.gateway.harness import ADMIN, KEYS, Running, wait_until
from tests.gateway.harness import test_config as harness_config
from tests.gateway.ops.test_metrics import sample

pytestmark = pytest.mark.anyio
DM = 4242  # a private chat (its id is its user's)
GROUP = -1007001
USER = 42
LIMITED_REPLY = re.compile(
    r"^⏳ You have used today's 2 messages\. The limit resets at 00:00 UTC "
    r"\(in (\d+ h \d+ min|\d+ h|\d+ min)\)\.$"
)


@asynccontextmanager
async def gateway_with(
    tmp_path: Path, limits: LimitsConfig | None = None, llm: LLMSimulator | None = None
) -> AsyncIterator[Running]:
    """The harness's gateway, with ``limits`` (default: none)."""
    telegram, llm = BotAPISimulator(), llm or LLMSimulator()
    with telegram.serving_in_thread(), llm.serving_in_thread():
        # Groups answer every message, as in the tests written before activation existed.
        config = harness_config(
            telegram, llm, tmp_path, None, (), None, None, group_activation="always"
        )
        async with open_gateway(attrs.evolve(config, limits=limits or LimitsConfig())) as gateway:
            yield Running(gateway, telegram, llm, tmp_path)


def detail(run: Running, message_id: int) -> str | None:
    with sqlite3.connect(run.data_dir / "threadgate.sqlite3") as db:
        row = db.execute(
            "SELECT detail FROM outcomes WHERE message_id = ? ORDER BY rowid DESC",
            (message_id,),
        ).fetchone()
    return None if row is None else str(row[0])


async def ask(run: Running, text: str, **where: int | bool) -> str:
    """Say ``text``; return the (one) reply to it, once there is one."""
    said = run.telegram.say(text, **where)  # type: ignore[arg-type]
    await wait_until(lambda: bool(run.replies_to(said)))
    return run.replies_to(said)[0].text


async def test_usage_shows_a_users_own_runs_by_model_today_and_this_month(tmp_path: Path) -> None:
    llm = LLMSimulator(default=lambda _: Reply("four words of answer", usage=(100, 4)))
    async with gateway_with(tmp_path, llm=llm) as run:
        run.telegram.say("hello", chat_id=DM, user_id=USER, forum=False)
        run.telegram.say("again", chat_id=GROUP, user_id=USER, forum=False)
        run.telegram.say("someone else", chat_id=GROUP, user_id=43, forum=False)
        await run.quiet()
        shown = await ask(run, "/usage", chat_id=DM, user_id=USER, forum=False)
        in_group = await ask(run, "/usage", chat_id=GROUP, user_id=USER, forum=False)
        await run.quiet()
    assert shown.startswith("📊 Your usage")
    assert "Today: 2 messages, 208 tokens (200 prompt, 8 completion)" in shown
    assert "• scripted: 208 tokens in 2 runs" in shown
    assert "This month (" in shown
    assert "~" not in shown, "the provider reported it: nothing estimated"
    assert in_group == shown, "in a group, /usage is about its sender"


async def test_usage_without_usage_data_is_estimated_and_marked(tmp_path: Path) -> None:
    llm = LLMSimulator(usage=False)
    async with gateway_with(tmp_path, llm=llm) as run:
        run.telegram.say("hello", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        shown = await ask(run, "/usage", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
    assert re.search(r"Today: 1 message, ~\d+ tokens \(~\d+ prompt, ~\d+ completion\)", shown)
    assert "~ estimated" in shown


async def test_an_endpoint_refusing_stream_options_is_answered_and_estimated(
    tmp_path: Path,
) -> None:
    llm = LLMSimulator(stream_options=False)
    async with gateway_with(tmp_path, llm=llm) as run:
        first = run.telegram.say("hello", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        shown = await ask(run, "/usage", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        assert run.outcome(first) == "answered"
    assert "You said: hello" in run.replies_to(first)[0].text
    assert "~" in shown


async def test_usage_all_is_every_users_for_an_admin_and_refused_to_others(
    tmp_path: Path,
) -> None:
    llm = LLMSimulator(default=lambda _: Reply("ok", usage=(10, 1)))
    async with gateway_with(tmp_path, llm=llm) as run:
        run.telegram.say("one", chat_id=GROUP, user_id=USER, forum=False)
        run.telegram.say("two", chat_id=DM, user_id=43, forum=False)
        await run.quiet()
        everyone = run.telegram.say("/usage all", chat_id=GROUP, user_id=ADMIN, forum=False)
        refused = run.telegram.say("/usage all", chat_id=GROUP, user_id=USER, forum=False)
        await run.quiet()
        assert (run.outcome(everyone), run.outcome(refused)) == ("answered", "answered")
        assert detail(run, refused) == "/usage all: not an admin"
    text = run.replies_to(everyone)[0].text
    assert text.startswith("📊 Usage of everyone")
    assert "• user 42: 1 message, 11 tokens (10 prompt, 1 completion)" in text
    assert "• user 43: 1 message, 11 tokens" in text
    assert "By model: scripted 22 tokens" in text
    assert run.replies_to(refused)[0].text == USAGE_ADMIN_ONLY


async def test_a_user_over_the_message_limit_is_told_when_it_resets_and_an_admin_is_not(
    tmp_path: Path,
) -> None:
    async with gateway_with(tmp_path, LimitsConfig(user_daily_messages=2)) as run:
        tg = run.telegram
        answered = [tg.say(f"m{n}", chat_id=DM, user_id=USER, forum=False) for n in range(2)]
        await run.quiet()
        over = tg.say("one too many", chat_id=DM, user_id=USER, forum=False)
        command = tg.say("/status", chat_id=DM, user_id=USER, forum=False)  # not limited
        skill = tg.say("/summarize this", chat_id=DM, user_id=USER, forum=False)  # a turn
        admin = [tg.say(f"a{n}", chat_id=GROUP, user_id=ADMIN, forum=False) for n in range(3)]
        await run.quiet()
        usage = await ask(run, "/usage", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        assert [run.outcome(m) for m in answered] == ["answered", "answered"]
        assert run.outcome(over) == "limited"
        assert detail(run, over) == "daily messages (2)"
        assert run.outcome(skill) == "limited"
        assert run.outcome(command) == "answered"
        assert [run.outcome(m) for m in admin] == ["answered"] * 3, "admins are exempt"
        assert run.unanswered_in_inbox() == []
    (reply,) = run.replies_to(over)
    assert LIMITED_REPLY.match(reply.text), reply.text
    assert not any("You said: one too many" in m.text for m in tg.sent), "no run"
    assert "Today: 2 messages" in usage, "a refused message is not counted"
    assert "Daily limits: 2 messages (0 left). The limit resets at 00:00 UTC" in usage


async def test_the_token_limit_stops_the_next_message_not_the_run(tmp_path: Path) -> None:
    llm = LLMSimulator(default=lambda _: Reply("a long answer", usage=(900, 200)))
    async with gateway_with(tmp_path, LimitsConfig(user_daily_tokens=1000), llm) as run:
        tg = run.telegram
        first = tg.say("spend it all", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        second = tg.say("and more", chat_id=DM, user_id=USER, forum=False)
        other = tg.say("my own budget", chat_id=DM + 1, user_id=USER + 1, forum=False)
        await run.quiet()
        assert run.outcome(first) == "answered", "the run that went over was not cut off"
        assert run.outcome(second) == "limited"
        assert detail(run, second) == "daily tokens (1000)"
        assert run.outcome(other) == "answered"
    (reply,) = run.replies_to(second)
    assert reply.text.startswith("⏳ You have used today's 1,000 tokens (1,100 so far).")
    assert "The limit resets at 00:00 UTC (in " in reply.text


async def test_usage_is_exported_by_model_and_served_by_the_admin_endpoint(
    tmp_path: Path,
) -> None:
    llm = LLMSimulator(default=lambda _: Reply("ok then", usage=(50, 2)))
    async with gateway_with(tmp_path, llm=llm) as run:
        run.telegram.say("hello", chat_id=DM, user_id=USER, forum=False)
        await run.quiet()
        async with httpx.AsyncClient(base_url=run.gateway.admin_url) as http:
            metrics = (await http.get("/metrics")).text
            usage = (await http.get("/usage")).json()
            status = (await http.get("/status")).json()
    labels = {"model": "scripted", "estimated": "false"}
    assert sample(metrics, "threadgate_tokens_total", kind="prompt", **labels) == 50
    assert sample(metrics, "threadgate_tokens_total", kind="completion", **labels) == 2
    assert sample(metrics, "threadgate_model_runs_total", model="scripted") == 1
    assert not any(key in metrics for key in KEYS)
    today = usage["today"]
    assert today["totals"] == {
        "messages": 1,
        "prompt_tokens": 50,
        "completion_tokens": 2,
        "tokens": 52,
        "estimated_tokens": 0,
        "runs": 1,
    }
    assert [u["user_id"] for u in today["users"]] == [USER]
    assert today["users"][0]["models"][0]["model"] == "scripted"
    assert [m["model"] for m in usage["month"]["models"]] == ["scripted"]
    assert status["usage"]["today"]["totals"]["tokens"] == 52
    short = status["usage"]["today"]
    assert short["users"] == [{"user_id": USER, **today["totals"]}], "without their models"
    assert short["users_total"] == 1
    console = Console(width=100, record=True)
    console.print(render(status))
    drawn = console.export_text()
    assert "Usage (UTC; ~ estimated)" in drawn
    assert re.search(r"today\s+│\s+52\s+│\s+1", drawn), drawn
    assert re.search(r"today: user 42\s+│\s+52", drawn), drawn


async def test_a_message_counted_before_a_crash_is_not_limited_at_its_replay(
    tmp_path: Path,
) -> None:
    """The state a crash leaves between delivery's count (the thread's mailbox took the
    message) and the thread's first save: the inbox entry unanswered, the message counted.
    Its replay must answer it, not refuse it as over the limit it was let through under."""
    store = Store(tmp_path / "threadgate.sqlite3")
    key, mid = ThreadKey(DM), 5
    await store.accept(InboxEntry(1, key, mid, to_payload(UserMessage(mid, "hello", USER))))
    await UsageStore(store).count_message(key, mid, USER)
    store.close()
    async with gateway_with(tmp_path, LimitsConfig(user_daily_messages=1)) as run:
        await wait_until(lambda: run.outcome(mid) is not None)
        await run.quiet()
        assert run.outcome(mid) == "answered"
