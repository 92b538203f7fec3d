"""``ChatSender(sendable=...)``: once a chat is not sendable on this replica (its shard's
lease lapsed), nothing more of it reaches Telegram; its sender can be evicted and spawned
again. Real chat senders over the Bot API simulator (HTTP)."""

from __future__ import annotations

import anyio
import pytest

from actors.thread.records import ThreadKey
from gateway.exceptions import SendFailedError
from tests.gateway.logs import captured_logs
from tests.gateway.telegram.senders import DM, FORUM, Sending, sending, until, words

pytestmark = pytest.mark.anyio
TOPIC = ThreadKey(FORUM, 4)


def calls_for(s: Sending, chat_id: int) -> list[str]:
    return [method for method, chat in list(s.telegram.api_calls) if chat == chat_id]


@pytest.mark.parametrize("streaming", ["edit", "draft"])
async def test_nothing_reaches_telegram_while_a_chat_is_not_sendable(streaming: str) -> None:
    """Held back while not sendable; sent once sendable again (the lease was renewed)."""
    allowed: dict[int, bool | None] = {DM: True, FORUM: True}
    async with sending(
        streaming=streaming, reactions=True, sendable=lambda chat: allowed[chat]
    ) as s:
        key = ThreadKey(DM)
        stream = s.outbox.open_stream(key, reply_to=10, run_id=1)
        await s.stream(stream, words(8))
        await until(lambda: len(calls_for(s, DM)) >= 1)
        allowed[DM] = None  # the lease lapsed here: held until the next round says
        await anyio.sleep(0.3)  # a request already on its way lands
        before = calls_for(s, DM)
        with captured_logs("WARNING") as logs:
            await s.stream(stream, words(8, start=8), more=True)
            await s.outbox.notice(key, "a notice")
            s.outbox.react(key, 10, "👀")
            later = s.outbox.open_stream(key, reply_to=11, run_id=2)
            later.keepalive()  # "typing…"
            async with anyio.create_task_group() as group:
                group.start_soon(stream.finish)
                await anyio.sleep(2.5)  # several of the chat's turns
                assert calls_for(s, DM) == before  # nothing more reached the simulator
                held = [line for line in logs if f"chat {DM} not sendable here" in line]
                assert held, logs

                await s.outbox.notice(TOPIC, "elsewhere")  # another chat is not concerned
                await until(lambda: [m.text for m in s.messages(TOPIC)] == ["elsewhere"])

                allowed[DM] = True  # the next round renewed the lease: what waited goes
        texts = [m.text for m in s.messages(key)]
        assert "a notice" in texts
        assert any(text.endswith("w15") for text in texts), texts
        assert s.senders.statistics().dead_letters == 0


async def test_an_evicted_sender_never_sends_what_it_held() -> None:
    """The shard was lost: the replica evicts the chat's sender, and what it held is gone;
    once the chat is sendable here again, a fresh sender serves it."""
    allowed: dict[int, bool | None] = {DM: True, FORUM: True}
    async with sending(sendable=lambda chat: allowed[chat]) as s:
        key = ThreadKey(DM)
        allowed[DM] = None
        await s.outbox.notice(key, "held")
        await anyio.sleep(1.0)
        assert calls_for(s, DM) == []
        assert s.senders.evict(lambda chat: chat == DM, "shard moved") == 1
        assert DM not in s.senders
        allowed[DM] = True
        await s.outbox.notice(key, "back")
        await until(lambda: any(m.text == "back" for m in s.messages(key)))
        await anyio.sleep(0.5)
        assert [m.text for m in s.messages(key)] == ["back"]  # "held" never went


async def test_a_chat_sendable_all_along_is_not_concerned() -> None:
    asked: list[int] = []

    def sendable(chat: int) -> bool:
        asked.append(chat)
        return True

    async with sending(sendable=sendable) as s:
        await s.outbox.notice(TOPIC, "hello")
        await until(lambda: bool(s.messages(TOPIC)))
    assert asked == [FORUM]  # asked once, right before the one request


async def test_a_chat_another_replica_holds_gets_no_thread_request_but_the_intakes_reply() -> None:
    """``False``: the chat's shard is held elsewhere. What a thread here still asks for (an
    evicted run's last words) is withdrawn; a reply of the intake (an ignored update, a
    pairing code) goes whoever holds the chat."""
    allowed: dict[int, bool | None] = {DM: False, FORUM: True}
    async with sending(reactions=True, sendable=lambda chat: allowed[chat]) as s:
        key = ThreadKey(DM)
        with captured_logs("WARNING") as logs:
            stream = s.outbox.open_stream(key, reply_to=10, run_id=1)
            await s.stream(stream, words(4))
            with pytest.raises(SendFailedError) as failed:
                await stream.finish()
            await s.outbox.notice(key, "a thread's notice")
            s.outbox.react(key, 10, "👀")
            await s.outbox.notice(key, "the intake's reply", fenced=False)
            await until(lambda: any(m.text == "the intake's reply" for m in s.messages(key)))
            await anyio.sleep(1.0)
        assert "another replica" in failed.value.reason
        assert not failed.value.outcome_unknown
        assert [m.text for m in s.messages(key)] == ["the intake's reply"]
        assert calls_for(s, DM) == ["sendMessage"]
        assert any(f"chat {DM} is held by another replica" in line for line in logs), logs
