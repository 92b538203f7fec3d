"""Webhook mode over real HTTP: the test POSTs updates as Telegram would, in any order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from gateway.demo import botapi_updates
from gateway.telegram.webhook import SECRET_HEADER, WebhookServer
from tests.gateway.harness import Running, running_gateway, wait_until

pytestmark = pytest.mark.anyio
SECRET = "webhook-secret_42"
PUBLIC = "https://bot.example.invalid/telegram/hook"


@attrs.define
class Telegram:
    """Posts updates to the webhook, as Telegram does."""

    http: httpx.AsyncClient
    url: str

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> int:
        response = await self.http.post(self.url, json=update, headers={SECRET_HEADER: secret})
        return response.status_code

    async def post_raw(self, body: bytes) -> int:
        response = await self.http.post(self.url, content=body, headers={SECRET_HEADER: SECRET})
        return response.status_code


@asynccontextmanager
async def webhook_gateway(tmp_path: Path) -> AsyncIterator[tuple[Running, Telegram]]:
    bot = {
        "mode": "webhook",
        "webhook_url": PUBLIC,
        "webhook_listen": "127.0.0.1:0",
        "webhook_secret": SECRET,
        "webhook_reorder_window": 1.0,
    }
    async with running_gateway(tmp_path, bot=bot) as run:
        updates = run.gateway.updates
        assert isinstance(updates, WebhookServer)
        await wait_until(lambda: bool(updates.url) and run.telegram.webhook is not None)
        async with httpx.AsyncClient() as http:
            yield run, Telegram(http, updates.url)


def said(run: Running, chat_id: int) -> list[str]:
    """What the model was asked in a chat, in answer order (notices left out)."""
    answers = [t for t in run.telegram.texts(chat_id) if t.startswith("You said: ")]
    return [t.removeprefix("You said: ").split(" (turn")[0] for t in answers]


async def test_webhook_is_registered_with_its_secret_and_checks_it(tmp_path: Path) -> None:
    async with webhook_gateway(tmp_path) as (run, http):
        assert run.telegram.webhook == (PUBLIC, SECRET)
        assert http.url.endswith("/telegram/hook"), "the public URL's path is served"
        forged = run.telegram.make_update("let me in", chat_id=5000, forum=False)
        assert await http.post(forged, secret="guess") == 401
        assert await http.post(forged, secret="") == 401
        honest = run.telegram.make_update("hello", chat_id=5001, forum=False)
        assert await http.post(honest) == 200
        await run.quiet()
        assert run.telegram.texts(5000) == [], "a forged update reaches no thread"
        assert said(run, 5001) == ["hello"]
        health = (await http.http.get(run.gateway.admin_url + "/healthz")).json()
        assert health["webhook_alive"] is True


async def test_out_of_order_deliveries_reach_their_thread_in_order(tmp_path: Path) -> None:
    async with webhook_gateway(tmp_path) as (run, http):
        tg = run.telegram
        first = tg.make_update("first", chat_id=5100, forum=False)
        other = tg.make_update("elsewhere", chat_id=5101, forum=False)
        second = tg.make_update("second", chat_id=5100, forum=False)
        # Telegram's parallel deliveries overtake each other: the later ones land first.
        for update in (second, other, first):
            assert await http.post(update) == 200
        await run.quiet()
        assert said(run, 5100) == ["first", "second"]
        assert said(run, 5101) == ["elsewhere"]


async def test_a_gap_that_never_fills_delays_a_thread_by_one_window_at_most(
    tmp_path: Path,
) -> None:
    async with webhook_gateway(tmp_path) as (run, http):
        tg = run.telegram
        assert await http.post(tg.make_update("before", chat_id=5200, forum=False)) == 200
        await run.quiet()
        tg.make_update("lost in transit", chat_id=5201, forum=False)  # never delivered
        after = tg.make_update("after the gap", chat_id=5200, forum=False)
        assert await http.post(after) == 200
        await wait_until(lambda: said(run, 5200) == ["before", "after the gap"], timeout=10)


async def test_redeliveries_and_bad_bodies_are_confirmed_once(tmp_path: Path) -> None:
    async with webhook_gateway(tmp_path) as (run, http):
        tg = run.telegram
        update = tg.make_update("only once", chat_id=5300, forum=False)
        assert await http.post(update) == 200
        assert await http.post(update) == 200  # Telegram retried: deduplicated
        bad = {"update_id": update["update_id"] + 1, "message": {"message_id": "x"}}
        assert await http.post(bad) == 200  # malformed: confirmed and skipped
        assert await http.post_raw(b"{") == 200
        after = tg.make_update("still here", chat_id=5300, forum=False)
        after["update_id"] = update["update_id"] + 2
        assert await http.post(after) == 200
        await run.quiet()
        assert said(run, 5300) == ["only once", "still here"]


async def test_the_webhook_asks_for_presses_and_answers_one_posted_to_it(tmp_path: Path) -> None:
    async with webhook_gateway(tmp_path) as (run, telegram):
        tg = run.telegram
        assert {"callback_query", "stopped_message_generation"} <= set(tg.allowed_updates or ())
        first = tg.make_update("hi", chat_id=42, forum=False)
        assert await telegram.post(first) == 200
        asked = first["message"]["message_id"]
        await wait_until(lambda: run.outcome(asked) == "answered")
        answer = tg.bot_message(run.replies_to(asked)[0].message_id)
        press = botapi_updates.callback_query("q-hook", botapi_updates.user(42), answer, "poll:1")
        assert await telegram.post({"update_id": first["update_id"] + 1, **press}) == 200
        await wait_until(lambda: bool(tg.answers_to("q-hook")))
        assert [a.text for a in tg.answers_to("q-hook")] == ["This button is no longer active."]
        assert run.unanswered_in_inbox() == []
