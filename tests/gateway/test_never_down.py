"""Nothing a user sends and no failure of a part stops the gateway (issue 17, items 8 and 9).

Each test runs the whole gateway between the simulators and breaks a real edge: a Bot API
that answers 409, an update with half an emoji, an SQLite file that refuses writes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import httpx
import pytest

from actors import ChildState
from actors.thread.records import ThreadKey
from tests.gateway.harness import Running, running_gateway, wait_until
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio


async def health(run: Running) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(base_url=run.gateway.admin_url) as http:
        response = await http.get("/healthz")
    return response.status_code, response.json()


async def test_every_long_running_service_is_supervised_and_reported(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        await wait_until(lambda: run.gateway.health()["poller_alive"])
        code, body = await health(run)
    assert code == 200
    assert body["status"] == "ok"
    services = body["services"]
    assert isinstance(services, dict)
    assert set(services) == {
        "replies",
        "admin",
        "checkpoints",
        "retention",
        "pool llm",
        "poller",
        "albums",
        "callbacks",
        "commands",
    }
    # The command menu is set once at start; then that service has finished.
    menu = services.pop("commands")
    assert isinstance(menu, dict)
    assert (menu["state"], menu["restarts"]) == ("stopped", 0)
    assert all(s["state"] == "running" and s["restarts"] == 0 for s in services.values())


async def test_a_failing_poller_is_restarted_and_healthz_is_degraded_meanwhile(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        first = tg.say("before", chat_id=5200, forum=False)
        await wait_until(lambda: bool(run.replies_to(first)))
        seen: list[tuple[int, object]] = []

        async def sample() -> None:
            while True:
                code, body = await health(run)
                seen.append((code, body.get("status")))
                await anyio.sleep(0.02)

        with captured_logs() as logs:
            async with anyio.create_task_group() as sampling:
                sampling.start_soon(sample)
                # Another instance took the bot over with a webhook: getUpdates answers 409.
                tg.webhook = ("https://elsewhere.example.invalid/hook", "")
                after = tg.say("after", chat_id=5200, forum=False)
                await wait_until(lambda: any("after" in m.text for m in run.replies_to(after)))
                await wait_until(lambda: bool(seen) and seen[-1] == (200, "ok"))
                sampling.cancel_scope.cancel()
            _, body = await health(run)
        assert (503, "degraded") in seen, seen
        services = body["services"]
        assert isinstance(services, dict)
        assert services["poller"]["restarts"] == 1
        assert services["poller"]["last_error"] == "TelegramConflictError"
        assert tg.webhook is None, "the restarted poller removed the webhook again"
        assert any("service poller failed (TelegramConflictError" in line for line in logs)


async def test_half_an_emoji_is_answered_and_the_gateway_stays_up(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        text = tg.say("half \ud83d of an emoji\x00", chat_id=5300, forum=False)
        caption = tg.say("a \udc80 caption", chat_id=5301, forum=False, caption=True)
        command = tg.say("/cc half \ud83d of a topic", chat_id=5302, forum=False)
        await wait_until(
            lambda: any("You said: half \ufffd of an emoji" in m.text for m in run.replies_to(text))
        )
        await wait_until(
            lambda: any("You said: a \ufffd caption" in m.text for m in run.replies_to(caption))
        )
        await wait_until(lambda: any("half \ufffd of a topic" in m.text for m in tg.sent))
        await run.quiet()
        for message_id in (text, caption, command):
            assert run.outcome(message_id) == "answered"
        with sqlite3.connect(tmp_path / "threadgate.sqlite3") as db:
            payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM inbox")]
        written = " ".join(p.get("text", p.get("args", "")) for p in payloads)
        assert "\ufffd" in written
        assert "\x00" not in written
        alive = tg.say("still alive?", chat_id=5303, forum=False)
        await wait_until(lambda: any("still alive" in m.text for m in run.replies_to(alive)))


def refuse_writes(data_dir: Path) -> None:
    """Make the SQLite file refuse thread records and outcomes (the inbox stays writable)."""
    with sqlite3.connect(data_dir / "threadgate.sqlite3") as db:
        for table, event in (("threads", "INSERT"), ("threads", "UPDATE"), ("outcomes", "INSERT")):
            db.execute(
                f"CREATE TRIGGER refuse_{table}_{event.lower()} BEFORE {event} ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'injected: the disk is full'); END"
            )


def accept_writes(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "threadgate.sqlite3") as db:
        for name in ("threads_insert", "threads_update", "outcomes_insert"):
            db.execute(f"DROP TRIGGER refuse_{name}")


async def test_a_store_that_refuses_writes_is_answered_and_the_gateway_stays_up(
    tmp_path: Path,
) -> None:
    chat = 5400
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        warm = tg.say("hello", chat_id=chat, forum=False)
        await wait_until(lambda: bool(run.replies_to(warm)))
        await run.quiet()
        with captured_logs() as logs:
            refuse_writes(tmp_path)
            # Its thread cannot save: it crashes twice on the message, a dead letter; the
            # refusal cannot be recorded either, and the user is told all the same.
            lost = tg.say("are you there?", chat_id=chat, forum=False)
            await wait_until(
                lambda: any("could not be handled" in m.text for m in run.replies_to(lost))
            )
            # More of the same mark the thread failed; then a message for it is refused by
            # the delivery, whose outcome cannot be recorded either.
            for n in range(3):
                tg.say(f"more {n}", chat_id=chat, forum=False)

            def failed() -> bool:
                states = {c.key: c.state for c in run.gateway.thread_status().children}
                return states.get(ThreadKey(chat)) is ChildState.FAILED

            await wait_until(failed, timeout=30)
            refused = tg.say("and now?", chat_id=chat, forum=False)
            await wait_until(lambda: any("recovering" in m.text for m in run.replies_to(refused)))
        assert any("is not recorded" in line for line in logs)
        accept_writes(tmp_path)
        other = tg.say("another chat", chat_id=chat + 1, forum=False)
        await wait_until(lambda: any("another chat" in m.text for m in run.replies_to(other)))
        assert run.gateway.threads.running
