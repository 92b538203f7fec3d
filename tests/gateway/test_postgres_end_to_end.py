"""End to end on PostgreSQL (``store.url``): the gateway answers from its database, and a
restart (with an empty data directory) replays what a crash left unanswered in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.thread.messages import UserMessage
from actors.thread.records import ThreadKey
from gateway.store.sqlite import InboxEntry, Store
from gateway.telegram.routing import to_payload
from tests.gateway.harness import running_gateway, wait_until

pytestmark = pytest.mark.anyio
GROUP = -1001
LEFT = 9001
"""The message id of what a crash left in the inbox."""


async def test_a_gateway_on_postgresql_answers_and_its_restart_replays_the_unanswered(
    tmp_path: Path, postgres_url: str
) -> None:
    async with running_gateway(tmp_path / "first", store_url=postgres_url) as run:
        hello = run.telegram.say("hello", chat_id=GROUP)
        await wait_until(lambda: any("You said: hello" in m.text for m in run.replies_to(hello)))
        await run.quiet()
        assert run.outcome(hello) == "answered", "read from PostgreSQL"
        [(thread_key, last)] = run.query("SELECT thread_key, MAX(update_id) FROM inbox GROUP BY 1")
    assert not (tmp_path / "first" / "threadgate.sqlite3").exists(), "no SQLite file"

    # A crash between the inbox write and the thread's run leaves an entry unanswered.
    key = ThreadKey.parse(thread_key)
    store = Store(postgres_url)
    try:
        payload = to_payload(UserMessage(LEFT, "left behind", 42))
        assert await store.accept(InboxEntry(int(last) + 1, key, LEFT, payload))
        assert [e.message_id for e in await store.unanswered()] == [LEFT]
    finally:
        store.close()

    async with running_gateway(tmp_path / "second", store_url=postgres_url) as run:
        await wait_until(
            lambda: any("You said: left behind" in m.text for m in run.replies_to(LEFT))
        )
        await run.quiet()
        assert run.outcome(LEFT) == "answered"
        assert run.outcome(hello) == "answered"
        assert not [m for m in run.telegram.sent if "You said: hello" in m.text], (
            "what was answered is not answered again"
        )
        assert run.unanswered_in_inbox() == []
