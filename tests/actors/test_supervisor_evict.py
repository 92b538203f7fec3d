"""``Supervisor.evict``: children forgotten at once (their shard moved to another replica)."""

from __future__ import annotations

from collections.abc import Hashable

import anyio
import pytest

from actors import (
    ActorStoppedError,
    ChildState,
    DeadLetter,
    MailboxClosedError,
    RestartPolicy,
    Supervisor,
)
from tests.actors.scripted import Journal, Kind, Work
from tests.actors.test_supervisor import make, settle
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio


async def wait_for(condition: object, *, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_a_child_evicted_mid_handle_is_forgotten_and_its_key_spawned_again() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    with captured_logs() as lines:
        async with make(journal, letters, stall_timeout=30) as sup:
            ref = sup.ref_for(("chat", 1))
            ref.send_nowait(Work(1, Kind.HANG))
            await wait_for(lambda: 1 in journal.hang_started)
            ref.send_nowait(Work(2))  # queued behind the hung one
            other = sup.ref_for(("chat", 2))
            assert await other.ask(Work(3), timeout=1) == 3

            async with anyio.create_task_group() as tg:
                asked: list[BaseException] = []

                async def ask() -> None:
                    try:
                        await ref.ask(Work(4), timeout=5)
                    except ActorStoppedError as error:
                        asked.append(error)

                tg.start_soon(ask)
                await anyio.sleep(0.05)
                assert sup.evict(lambda key: key == ("chat", 1), "shard 7 moved") == 1
            assert len(asked) == 1
            assert "shard 7 moved" in str(asked[0])

            assert ("chat", 1) not in sup
            assert ("chat", 2) in sup
            await anyio.sleep(0.5)  # nothing of the evicted child runs on
            assert journal.attempts[1] == 1  # the hung message was not retried
            assert (("chat", 1), 2) not in journal.handled
            assert sup.statistics().evictions == 1
            assert sup.statistics().restarts == 0

            assert await ref.ask(Work(5), timeout=1) == 5  # the key is spawned anew
            assert journal.incarnations[("chat", 1)] == 2
            assert sup.evict(lambda key: False, "nothing") == 0
    assert letters == []  # no dead letters: the new owner answers them
    assert journal.stopped == [("chat", 2), ("chat", 1)]  # only the shutdown ran on_stop
    evicted = [line for line in lines if "evicted" in line and "shard 7 moved" in line]
    assert len(evicted) == 1, lines
    assert "1 actor(s)" in evicted[0]
    assert "3 message(s)" in evicted[0]


async def test_eviction_takes_every_match_at_once_with_background_work_and_timers() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, stall_timeout=30) as sup:
        for key in range(6):
            sup.ref_for(key).send_nowait(Work(10 + key, Kind.BACKGROUND, duration=1.0))
        sup.ref_for(6).send_nowait(Work(16, Kind.TIMER, duration=0.5))
        await wait_for(lambda: len(journal.attempts) == 7)
        assert sup.evict(lambda key: key in (0, 2, 4, 6), "step-down") == 4
        assert {child.key for child in sup.status().children} == {1, 3, 5}
        await anyio.sleep(1.5)
        done = {message for key, message in journal.handled}
        assert done == {11, 13, 15}  # the evicted children's reports and timer never came
        assert all(c.state is ChildState.IDLE for c in sup.status().children)
        assert sup.statistics().live == 3
    assert letters == []


async def test_evicting_a_failed_child_cuts_its_last_word_without_dead_letters() -> None:
    journal = Journal(last_word_takes=5.0)
    letters = list[DeadLetter]()
    policy = RestartPolicy(max_restarts=0, within=60, backoff_initial=0.01, failed_cooldown=60)
    async with make(journal, letters, restart=policy) as sup:
        ref = sup.ref_for("a")
        for work in (Work(1, Kind.CRASH), Work(2), Work(3)):
            ref.send_nowait(work)
        await wait_for(lambda: sup.statistics().failures == 1)
        before = len(letters)
        assert sup.evict(lambda key: True, "moved") == 1
        await anyio.sleep(0.1)
        assert len(letters) == before  # the last word's messages are not dead-lettered
        assert journal.last_word_ended_at is None
        assert await ref.ask(Work(4), timeout=1) == 4  # no cooldown: the key is new here


async def test_a_sender_waiting_for_room_in_an_evicted_mailbox_is_told() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    sup: Supervisor[Hashable]
    async with make(journal, letters, stall_timeout=30, mailbox_capacity=1) as sup:
        ref = sup.ref_for("a")
        ref.send_nowait(Work(1, Kind.HANG))
        await wait_for(lambda: 1 in journal.hang_started)
        ref.send_nowait(Work(2))
        failures: list[BaseException] = []

        async def send() -> None:
            try:
                await ref.send(Work(3))
            except MailboxClosedError as error:
                failures.append(error)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await anyio.sleep(0.05)
            assert sup.evict(lambda key: key == "a", "moved") == 1
        assert len(failures) == 1
        await settle(sup)
    assert letters == []


async def test_a_crash_of_an_evicted_child_on_its_way_out_is_logged_not_restarted() -> None:
    """A background task whose cleanup raises when cancelled (as a thread's fenced write
    would): the error is a log line; no restart, no dead letter."""
    journal, letters = Journal(), list[DeadLetter]()
    with captured_logs() as lines:
        async with make(journal, letters, stall_timeout=30) as sup:
            sup.ref_for("a").send_nowait(Work(1, Kind.BACKGROUND, duration=5))
            await wait_for(lambda: 1 in journal.attempts)
            # Scripted's background task tells itself Done when cancelled: the mailbox is
            # closed by then, so that raises MailboxClosedError in the cancelled incarnation.
            assert sup.evict(lambda key: key == "a", "moved") == 1
            await anyio.sleep(0.2)
            assert sup.statistics().restarts == 0
    assert letters == []
    # One line either way: alone, or beside the cancellation (as a group, on trio).
    ended = [line for line in lines if "'a'" in line and "MailboxClosedError" in line]
    assert len(ended) == 1, lines
