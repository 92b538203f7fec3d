"""End to end over real HTTP: simulated Bot API -> aiogram -> Threadgate -> simulated LLM."""

from __future__ import annotations

import json
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from gateway.cli import main
from gateway.config import FallbackConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from gateway.telegram.delivery import ADMIN_ONLY
from tests.gateway.harness import ADMIN, KEYS, running_gateway, wait_until

pytestmark = pytest.mark.anyio
FORUM = -1009001


def slow_when_long(messages: list[dict[str, str]]) -> Reply:
    last = messages[-1]["content"]
    if "long" in last:
        return Reply(" ".join(f"w{i}" for i in range(60)), chunk_delay=0.1)
    return Reply(default_answer(messages))


async def test_zombie_thread_end_to_end(tmp_path: Path) -> None:
    llm = LLMSimulator(default=slow_when_long)
    async with running_gateway(tmp_path, llm=llm) as run:
        tg = run.telegram
        for topic in (1, 3):
            tg.say("hi", chat_id=FORUM, topic=topic)
        long_task = tg.say("a long task", chat_id=FORUM, topic=2)
        await wait_until(lambda: bool(run.replies_to(long_task)))  # turn N is streaming

        # The last key gets HTTP 402 (with the provider's reset in 2 s) as /cc arrives mid-run.
        for key in KEYS:
            llm.script(key, Reply(status=402, retry_after="2"))
        reset = tg.say("/cc", chat_id=FORUM, topic=2)
        await wait_until(lambda: bool(run.replies_to(reset)))
        during = tg.say("are you there?", chat_id=FORUM, topic=2)
        await wait_until(lambda: any("API keys" in m.text for m in run.replies_to(during)))

        # Keys come back by themselves; the parked message is answered, then the next one.
        await wait_until(
            lambda: any("You said: are you there?" in m.text for m in run.replies_to(during))
        )
        after = tg.say("and now?", chat_id=FORUM, topic=2)
        await wait_until(lambda: any("You said: and now?" in m.text for m in run.replies_to(after)))
        for topic in (1, 3):
            tg.say("still fine?", chat_id=FORUM, topic=topic)
        await run.quiet()

        assert "New session started. 1 earlier message discarded" in run.replies_to(reset)[0].text
        assert run.outcome(long_task) == "discarded-by-reset"
        assert run.outcome(during) == "answered"
        assert run.outcome(after) == "answered"
        for topic in (1, 3):
            texts = tg.texts(FORUM, None if topic == 1 else topic)
            assert len(texts) == 2, (topic, [(m.thread_id, m.text[:50]) for m in tg.sent])
            assert all(t.startswith("You said:") for t in texts), "topics 1 and 3 never noticed"
        assert run.unanswered_in_inbox() == []


async def test_many_threads_with_mixed_commands_leave_nothing_unanswered(tmp_path: Path) -> None:
    llm = LLMSimulator(default=slow_when_long)
    async with running_gateway(tmp_path, llm=llm) as run:
        tg = run.telegram
        sent: list[int] = []
        script = [
            "hello",
            "a long answer please",
            "queued one",
            "/status",
            "/new",
            "after reset",
            "/stop",
            "bye",
        ]
        for step in script:
            for chat in range(5):
                sent.append(tg.say(step, chat_id=1000 + chat, forum=False))
            for topic in (1, 5, 6):
                sent.append(tg.say(step, chat_id=FORUM, topic=topic))
        await run.quiet(timeout=60)
        assert run.unanswered_in_inbox() == []
        for message_id in sent:
            outcome = run.outcome(message_id)
            assert outcome is not None, [m for m in run.telegram.sent if m.reply_to == message_id]
            assert outcome in {"answered", "stopped", "discarded-by-reset", "error-replied"}
        statuses = {dict(c.detail)["phase"] for c in run.gateway.thread_status().children}
        assert statuses == {"idle"}, "no thread is left busy"


async def test_flood_control_is_waited_out_and_nothing_is_lost(tmp_path: Path) -> None:
    telegram = BotAPISimulator(flood_every=3, flood_retry_after=1)
    async with running_gateway(tmp_path, telegram=telegram) as run:
        ids = [
            run.telegram.say(f"message {i}", chat_id=2000 + i % 2, forum=False) for i in range(6)
        ]
        await run.quiet(timeout=60)
        for i, message_id in enumerate(ids):
            assert run.outcome(message_id) == "answered"
            chat = 2000 + i % 2
            assert any(f"message {i}" in text for text in run.telegram.texts(chat)), "quoted"
        assert run.telegram.floods > 0
        metrics = run.gateway.metrics.render().decode()
        assert "threadgate_telegram_429_total" in metrics


async def test_odd_input_never_crashes_the_gateway(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        photo = tg.say("", chat_id=3000, forum=False)  # media without text
        tg.push_raw(
            {
                "edited_message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 3000, "type": "private"},
                    "text": "x",
                }
            }
        )
        tg.push_raw(
            {
                "poll": {
                    "id": "p",
                    "question": "?",
                    "options": [],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                }
            }
        )
        tg.push_raw(
            {"message": {"message_id": 5, "date": 0, "chat": {"id": 3000, "type": "private"}}}
        )
        other_bot = tg.say("/start@some_other_bot", chat_id=3001, forum=False)
        huge = tg.say("x" * 100_000, chat_id=3002, forum=False)
        odd_text = (
            "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c \u200b\u202e \u01c5 \U0001f916 \x00"
        )
        odd = tg.say(odd_text, chat_id=3003, forum=False)
        captioned = tg.say("a caption", chat_id=3004, forum=False, caption=True)
        await wait_until(lambda: bool(run.replies_to(odd)) and bool(run.replies_to(huge)))
        await wait_until(lambda: bool(run.replies_to(photo)) and bool(run.replies_to(captioned)))
        assert "I can read text, photos" in run.replies_to(photo)[0].text
        assert run.replies_to(other_bot) == []
        await run.quiet()
        assert run.telegram.unconfirmed == 0, "the odd updates were confirmed, not stuck"
        alive = tg.say("still alive?", chat_id=3005, forum=False)
        await wait_until(lambda: any("still alive" in m.text for m in run.replies_to(alive)))


async def test_admin_endpoint_status_health_metrics_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_gateway(tmp_path) as run:
        answered = run.telegram.say("hi", chat_id=4000, forum=False)
        await wait_until(lambda: bool(run.replies_to(answered)))
        await run.quiet()
        async with httpx.AsyncClient(base_url=run.gateway.admin_url) as http:
            status = (await http.get("/status")).json()
            health = await http.get("/healthz")
            metrics = (await http.get("/metrics")).text
        assert [t["key"] for t in status["threads"]] == ["4000"]
        assert status["threads"][0]["phase"] == "idle"
        assert [k["label"] for k in status["pools"][0]["keys"]] == ["key-1", "key-2"]
        assert health.status_code == 200
        assert health.json()["poller_alive"] is True
        assert "threadgate_messages_in_total 1.0" in metrics
        assert 'threadgate_outcomes_total{outcome="answered"} 1.0' in metrics
        addr = run.gateway.admin_url.removeprefix("http://")
        assert await anyio.to_thread.run_sync(main, ["status", "--addr", addr]) == 0
        table = capsys.readouterr().out
        assert "Threads" in table
        assert "key-1" in table
        assert await anyio.to_thread.run_sync(main, ["status", "--addr", addr, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["threads"][0]["key"] == "4000"
        everything = str(status) + metrics + table
        assert not any(key in everything for key in KEYS)


async def test_status_all_is_for_admin_users_only(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        tg.say("hi", chat_id=FORUM, topic=2)
        await run.quiet()
        mine = tg.say("/status all", chat_id=FORUM, topic=3, user_id=ADMIN)
        theirs = tg.say("/status all", chat_id=FORUM, topic=3, user_id=42)
        helped = tg.say("/help", chat_id=FORUM, topic=3, user_id=42)
        await wait_until(lambda: all(run.replies_to(asked) for asked in (mine, theirs, helped)))
        assert "/cc: start a new session" in run.replies_to(helped)[0].text
        everything = run.replies_to(mine)[0].text
        assert f"{FORUM}:2: idle" in everything
        assert "llm/key-1: usable" in everything
        assert run.replies_to(theirs)[0].text == ADMIN_ONLY
        await run.quiet()


@pytest.mark.parametrize("reject", [False, True])
async def test_markdown_is_rendered_or_sent_plain_when_rejected(
    tmp_path: Path, reject: bool
) -> None:
    telegram = BotAPISimulator(reject_markup=reject, enforce_limits=True)
    # The model thinks for a second: "typing…" is shown meanwhile.
    llm = LLMSimulator(default=lambda _: Reply("**Bold** claim with `code`", first_delay=1.0))
    async with running_gateway(tmp_path, telegram=telegram, llm=llm) as run:
        asked = run.telegram.say("format please", chat_id=6000, forum=False)
        await run.quiet()
        [answer] = run.replies_to(asked)
        # Rejected markup: the same text without its formatting (``Piece.plain``), sent at
        # the chat's next turn (a second request at once would go over Telegram's limits).
        assert answer.text == "Bold claim with code"
        assert run.telegram.floods == 0
        assert run.outcome(asked) == "answered"
        assert (6000, "typing") in run.telegram.actions


async def test_a_fallback_provider_answers_while_every_primary_key_is_exhausted(
    tmp_path: Path,
) -> None:
    backup = LLMSimulator(default=lambda messages: Reply("backup: " + default_answer(messages)))
    with backup.serving_in_thread():
        fallback = FallbackConfig("backup", backup.base_url, "backup-model", ("sk-backup-999999",))
        async with running_gateway(tmp_path, fallbacks=(fallback,)) as run:
            for key in KEYS:
                run.llm.script(key, Reply(status=402))
            asked = run.telegram.say("anyone?", chat_id=7000, forum=False)
            await run.quiet()
            assert [m.text for m in run.replies_to(asked)] == [
                "backup: You said: anyone? (turn 1 of this session)"
            ]
            assert run.outcome(asked) == "answered"
            assert [body["model"] for _, body in backup.requests] == ["backup-model"]
            pools = {pool.name: pool for pool in run.gateway.pool_status()}
            assert set(pools) == {"llm", "backup"}
            assert pools["llm"].usable == 0
            assert pools["backup"].usable == 1


async def test_messages_sent_in_quick_succession_are_one_turn_with_debounce(
    tmp_path: Path,
) -> None:
    """``threads.debounce``: three messages a user sends within the window are answered by
    one run (one model request holding all three); a message after a pause is its own."""
    async with running_gateway(tmp_path, debounce=0.6) as run:
        tg = run.telegram
        said = [tg.say(text, chat_id=5100, forum=False) for text in ("one", "two", "three")]
        await wait_until(lambda: all(run.outcome(m) == "answered" for m in said))
        assert len(run.llm.requests) == 1
        [(_, body)] = run.llm.requests
        asked = json.dumps(body["messages"])
        assert all(text in asked for text in ("one", "two", "three"))
        later = tg.say("four", chat_id=5100, forum=False)
        await wait_until(lambda: run.outcome(later) == "answered")
        assert len(run.llm.requests) == 2
