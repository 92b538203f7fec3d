"""The Stop button under a streaming answer: shown while it streams (from
``BUTTON_AFTER`` on), gone when it ends; never on an answer complete sooner.

Real chat senders over the Bot API simulator (HTTP, Telegram's limits enforced), driven
through ``TelegramOutbox`` as a run drives it (``tests/gateway/telegram/senders.py``).
"""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from actors.thread.records import ThreadKey
from gateway.demo.botapi_sim import SentMessage
from gateway.telegram import stop_button
from gateway.telegram.answer import BUTTON_AFTER, CUT_OFF
from tests.gateway.telegram.senders import CUT, DM, FORUM, Sending, sending, until, words

pytestmark = pytest.mark.anyio
TOPIC = ThreadKey(FORUM, 3)


def data(message: SentMessage) -> list[str]:
    return [str(b.get("callback_data")) for b in message.buttons()]


def buttoned(s: Sending, key: ThreadKey, index: int = 0) -> bool:
    """Whether message ``index`` of ``key`` is out and shows a button."""
    messages = s.messages(key)
    return len(messages) > index and bool(messages[index].buttons())


async def test_a_streaming_answer_carries_the_stop_button_until_it_is_complete() -> None:
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, reply_to=77, run_id=41)
        text = words(60)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(s.stream, stream, text)
            await until(lambda: bool(s.messages(TOPIC)))
            assert s.messages(TOPIC)[0].keyboards[0] is None, "a button before BUTTON_AFTER"
            await until(lambda: buttoned(s, TOPIC))
            [message] = s.messages(TOPIC)
            assert data(message) == [stop_button.callback_data(TOPIC, 41)] == ["stop:41"]
            assert [b["text"] for b in message.buttons()] == [stop_button.LABEL]
        await stream.finish()
        [message] = s.messages(TOPIC)
        assert message.text == text
        assert message.reply_markup is None, "the button outlived the answer"
        assert message.markup_edits == 0, "the button came and went with the text's edits"
        assert message.keyboards[-1] is None
        assert message.reply_to == 77
        assert s.telegram.violations == 0


async def test_a_per_user_threads_button_names_its_member() -> None:
    key = ThreadKey(FORUM, 3, 42)
    async with sending() as s:
        stream = s.outbox.open_stream(key, run_id=8)
        await stream.append("thinking about it")
        await until(lambda: buttoned(s, key))
        assert data(s.messages(key)[0]) == ["stop:8:42"]
        await stream.finish()
        assert s.messages(key)[0].reply_markup is None


async def test_an_answer_complete_as_shown_gets_and_loses_its_button_alone() -> None:
    """Its text is shown and does not change: the button comes alone once the answer has
    streamed ``BUTTON_AFTER``, and goes alone at the end (``editMessageReplyMarkup``), not
    with an edit Telegram would call "not modified"."""
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, run_id=5)
        await stream.append("short and complete")
        await until(lambda: buttoned(s, TOPIC))
        await stream.finish()
        [message] = s.messages(TOPIC)
        assert (message.text, message.reply_markup) == ("short and complete", None)
        assert (message.edits, message.markup_edits) == (0, 2)


async def test_an_answer_complete_within_button_after_never_carries_the_button() -> None:
    """The common instant answer: its first words go out without the button, and its end
    within ``BUTTON_AFTER`` costs no request to take one off."""
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, run_id=4)
        await stream.append("quick")
        await until(lambda: bool(s.messages(TOPIC)))
        await anyio.sleep(BUTTON_AFTER / 4)
        await stream.append(" answer")
        await stream.finish()
        [message] = s.messages(TOPIC)
        assert message.text == "quick answer"
        assert message.keyboards == [None] * len(message.keyboards)
        assert message.markup_edits == 0


async def test_a_split_answer_keeps_the_button_on_its_last_message_only() -> None:
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, run_id=6)
        first = words(1000, "a")  # 4890 characters: the second message starts in it
        second = words(200, "b")
        await s.stream(stream, first, 0.0, 100)
        await until(lambda: bool(s.messages(TOPIC)))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(s.stream, stream, second, 0.05, 5, more=True))
            await until(lambda: buttoned(s, TOPIC, 1))
            one, two = s.messages(TOPIC)
            assert one.reply_markup is None, "an earlier message kept its button"
            assert data(two) == ["stop:6"]
        await stream.finish()
        messages = s.messages(TOPIC)
        assert len(messages) == 2
        assert all(m.reply_markup is None for m in messages)
        assert messages[1].text.endswith("b199")
        assert s.telegram.violations == 0


async def test_an_aborted_answer_loses_its_button() -> None:
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, run_id=7)
        await s.stream(stream, words(20))
        await until(lambda: buttoned(s, TOPIC) and "w19" in s.messages(TOPIC)[0].text)
        await stream.abort()
        [message] = s.messages(TOPIC)
        assert message.text.endswith(CUT)
        assert message.reply_markup is None


async def test_a_withdrawn_answer_loses_its_button() -> None:
    """The stream stops waiting (its run's finalize timeout): what is out is marked cut
    off, and the button goes with that edit."""
    async with sending() as s:
        stream = s.outbox.open_stream(TOPIC, run_id=9)
        await stream.append("the first words")
        await until(lambda: buttoned(s, TOPIC))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await stream.finish()
        await until(lambda: s.messages(TOPIC)[0].reply_markup is None)
        [message] = s.messages(TOPIC)
        assert message.text == "the first words" + CUT_OFF
        assert any(k is not None for k in message.keyboards)


async def test_answers_without_a_run_and_notices_have_no_button() -> None:
    key = ThreadKey(DM)
    async with sending() as s:
        await s.outbox.notice(key, "a notice")
        stream = s.outbox.open_stream(key)
        await s.stream(stream, words(30))
        await stream.finish()
        await until(lambda: len(s.messages(key)) == 2)
        for message in s.messages(key):
            assert message.keyboards == [None] * len(message.keyboards)
