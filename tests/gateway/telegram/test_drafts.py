"""Drafts (``telegram.streaming``): a private chat's answer streams as its draft
(``sendMessageDraft``, the draft id the run id), its final text as a message; groups, and
answers without a run, are edited; a chat that refuses drafts is edited from then on.

Real chat senders over the Bot API simulator (HTTP, Telegram's limits enforced, drafts
counted with sends and edits), driven through ``TelegramOutbox`` as a run drives it.
"""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from actors.thread.records import ThreadKey
from tests.gateway.logs import captured_logs
from tests.gateway.telegram.senders import CUT, DM, FORUM, sending, until, words

pytestmark = pytest.mark.anyio
PRIVATE = ThreadKey(DM)


async def test_a_private_chat_streams_a_draft_then_sends_the_final_text() -> None:
    async with sending(streaming="draft") as s:
        stream = s.outbox.open_stream(PRIVATE, reply_to=90, run_id=12)
        text = words(50)
        await s.stream(stream, text)
        await stream.finish()
        drafts = s.telegram.drafts.texts(DM, 12)
        assert len(drafts) >= 2, drafts
        assert all(text.startswith(d) for d in drafts), "a draft that is not the answer so far"
        assert s.telegram.drafts.options == {"can_stop": "true", "keep_on_stop": "true"}
        [message] = s.messages(PRIVATE)
        assert (message.text, message.reply_to) == (text, 90)
        assert (message.edits, message.markup_edits) == (0, 0)
        assert message.keyboards == [None], "a draft carries Telegram's stop, not ours"
        assert s.telegram.violations == 0


async def test_auto_edits_in_groups_and_drafts_in_private_chats() -> None:
    topic = ThreadKey(FORUM, 2)
    async with sending(streaming="auto") as s:
        group = s.outbox.open_stream(topic, run_id=1)
        private = s.outbox.open_stream(PRIVATE, run_id=2)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(s.stream, group, words(40, "g"))
            tasks.start_soon(s.stream, private, words(40, "p"))
        await group.finish()
        await private.finish()
        [edited] = s.messages(topic)
        assert edited.text == words(40, "g")
        assert edited.edits >= 1
        assert s.telegram.drafts.texts(FORUM) == []
        [sent] = s.messages(PRIVATE)
        assert sent.text == words(40, "p")
        assert sent.edits == 0
        assert s.telegram.drafts.texts(DM, 2)
        assert s.telegram.violations == 0


async def test_an_answer_without_a_run_is_edited_even_in_a_private_chat() -> None:
    async with sending(streaming="draft") as s:
        stream = s.outbox.open_stream(PRIVATE)
        await s.stream(stream, words(30))
        await stream.finish()
        [message] = s.messages(PRIVATE)
        assert message.text == words(30)
        assert message.edits >= 1
        assert s.telegram.drafts.requests == 0


async def test_a_chat_that_refuses_drafts_is_edited_from_then_on() -> None:
    async with sending(streaming="draft") as s:
        s.telegram.drafts.reject = True
        with captured_logs("WARNING") as logs:
            first = s.outbox.open_stream(PRIVATE, run_id=1)
            await s.stream(first, words(30, "a"))
            await first.finish()
            second = s.outbox.open_stream(PRIVATE, run_id=2)
            await s.stream(second, words(30, "b"))
            await second.finish()
        one, two = s.messages(PRIVATE)
        assert (one.text, two.text) == (words(30, "a"), words(30, "b"))
        assert one.edits >= 1
        assert two.edits >= 1
        assert s.telegram.drafts.requests == 1, "drafts were tried again"
        assert len([line for line in logs if "drafts refused" in line]) == 1, logs


async def test_a_stopped_draft_sends_its_cut_off_text() -> None:
    async with sending(streaming="draft") as s:
        stream = s.outbox.open_stream(PRIVATE, run_id=4)
        await s.stream(stream, words(20))
        await until(lambda: bool(s.telegram.drafts.texts(DM, 4)))
        await stream.abort()
        [message] = s.messages(PRIVATE)
        assert message.text.startswith(words(20))
        assert message.text.endswith(CUT)
        assert message.edits == 0


async def test_a_long_drafted_answer_sends_each_piece_once_it_is_complete() -> None:
    """The draft shows the piece being written; a piece goes out as a message as soon as
    the next one starts; the last goes out when the answer ends. Nothing is edited."""
    async with sending(streaming="draft") as s:
        stream = s.outbox.open_stream(PRIVATE, run_id=5)
        first, second = words(1000, "a"), words(200, "b")  # a piece is at most 4096
        await s.stream(stream, first, 0.0, 100)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(s.stream, stream, second, 0.05, 5, more=True))
            await until(lambda: len(s.messages(PRIVATE)) == 1)
            assert "b" not in s.messages(PRIVATE)[0].text.split()[-1]
            await until(lambda: any("b1" in d for d in s.telegram.drafts.texts(DM, 5)))
        await stream.finish()
        one, two = s.messages(PRIVATE)
        assert two.text.endswith("b199")
        assert (one.text + " " + two.text).split() == (first + " " + second).split()
        assert one.edits == two.edits == 0
        last_draft = s.telegram.drafts.texts(DM, 5)[-1]
        assert last_draft.split()[0] == two.text.split()[0], "the draft was not the last piece"


async def test_a_draft_left_unchanged_is_shown_again() -> None:
    """Telegram drops a draft after 30 s: while the agent is quiet (a tool call), the same
    draft is shown again every ``draft_refresh``."""
    async with sending(streaming="draft", draft_refresh=1.0) as s:
        stream = s.outbox.open_stream(PRIVATE, run_id=6)
        await stream.append("looking it up")
        await anyio.sleep(4.5)  # shown at about 0, 1.25, 2.5 and 3.75 s
        assert s.telegram.drafts.texts(DM, 6).count("looking it up") >= 3
        await stream.finish()
        [message] = s.messages(PRIVATE)
        assert message.text == "looking it up"


async def test_a_draft_refused_where_drafts_worked_ends_only_that_answers_drafts() -> None:
    """As after the user stopped a draft: no more drafts for that answer, no message with
    the rest of it meanwhile, its final text still sent; the chat keeps its drafts."""
    async with sending(streaming="draft") as s:
        first = s.outbox.open_stream(PRIVATE, run_id=1)
        with captured_logs("WARNING") as logs:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(s.stream, first, words(40, "a"))
                await until(lambda: bool(s.telegram.drafts.texts(DM, 1)))
                s.telegram.drafts.reject = True
                await until(lambda: any("no more drafts" in line for line in logs))
                assert s.messages(PRIVATE) == []
            s.telegram.drafts.reject = False
            await first.finish()
        [message] = s.messages(PRIVATE)
        assert message.text == words(40, "a")
        assert message.edits == 0
        second = s.outbox.open_stream(PRIVATE, run_id=2)
        await s.stream(second, words(30, "b"))
        await second.finish()
        assert s.telegram.drafts.texts(DM, 2), "the chat lost its drafts"
        assert not any("drafts refused" in line for line in logs)
