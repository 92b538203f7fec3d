"""``turns``: when each queued request of a chat's sender may go, one rule at a time."""

from __future__ import annotations

import anyio
import pytest

from actors.thread.records import ThreadKey
from gateway.telegram.answer import Answer, Ending
from gateway.telegram.outbox import TelegramReplyStream
from gateway.telegram.pacing import ChatPace
from gateway.telegram.reactions import Reactions
from gateway.telegram.turns import PARTIAL_GRACE, STREAM_CADENCE, due
from tests.gateway.telegram.senders import FORUM, Sending, sending, words


def opened(count: int, at: float = 0.0) -> list[Answer]:
    """``count`` answers of one forum, each first queued with its sender at ``at``."""
    answers = []
    for topic in range(count):
        answer = Answer(topic + 1, ThreadKey(FORUM, topic + 2), None)
        answer.publish("some words")
        answer.opened(at)
        answers.append(answer)
    return answers


def times(now: float, answers: list[Answer], chat: ChatPace | None = None) -> dict[int, float]:
    """When each answer's next request may go (every answer is open and queued)."""
    chat = chat or ChatPace(1.0, 20)
    when = due(
        now, chat, answers, answers, Reactions(),
        send_interval=1.0, edit_interval=1.0, draft_refresh=20.0,
    )  # fmt: skip
    return {item.id: at for at, item in when if isinstance(item, Answer)}


def test_while_a_round_of_the_open_answers_is_short_every_answer_streams() -> None:
    busiest = int(STREAM_CADENCE)  # a round of one turn a second each: STREAM_CADENCE
    assert set(times(1.0, opened(busiest)).values()) == {1.0}


def test_in_a_busy_chat_only_answers_open_for_a_round_stream() -> None:
    """With one more open answer than a short round holds, a partial update of an answer
    waits until it has been open for a round (here 6 s): an answer that ends before
    goes out once, with its final text, and takes no turn from the others' final texts."""
    answers = opened(int(STREAM_CADENCE) + 1)
    assert set(times(1.0, answers).values()) == {6.0}
    assert set(times(6.0, answers).values()) == {6.0}


def test_a_final_text_is_never_held_by_the_busy_rule() -> None:
    answers = opened(8)
    answers[3].end(Ending.FINISHED)
    when = times(1.0, answers)
    assert when[answers[3].id] == 1.0
    assert {at for aid, at in when.items() if aid != answers[3].id} == {8.0}


def test_a_partial_update_waits_a_grace_after_the_chats_turn() -> None:
    chat = ChatPace(1.0, 20)
    chat.spend(0.5)
    assert set(times(1.0, opened(2), chat).values()) == {1.5 + PARTIAL_GRACE}


@pytest.mark.anyio
async def test_a_busy_forum_shows_each_short_answer_once_with_its_final_text() -> None:
    """Through a real sender, Telegram's limits enforced: 6 topics answer at once for 4 s
    each (a round of 6 s). No partial update goes once they are open, so none takes the
    chat's turn as they end (before the rule, 3 or 4 of them showed a first message and were
    edited); the first answer, alone when it came, streams."""
    async with sending() as s:
        keys = [ThreadKey(FORUM, topic) for topic in range(2, 8)]
        streams = [s.outbox.open_stream(key, reply_to=700 + i) for i, key in enumerate(keys)]

        async def answer(key: ThreadKey, stream: TelegramReplyStream, s: Sending) -> None:
            await s.stream(stream, words(40, f"t{key.thread_id}x"), 0.1)
            await stream.finish()

        async with anyio.create_task_group() as tasks:
            for key, stream in zip(keys, streams, strict=True):
                tasks.start_soon(answer, key, stream, s)
        shown = [s.messages(key) for key in keys]
        for key, messages in zip(keys, shown, strict=True):
            [message] = messages
            assert message.text == words(40, f"t{key.thread_id}x")
        assert sum(messages[0].edits > 0 for messages in shown) <= 1
        assert s.telegram.violations == 0
