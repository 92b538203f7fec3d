from __future__ import annotations

import gc
from collections import deque

import anyio
import pytest

from actors import Envelope, Mailbox, MailboxClosedError, MailboxFullError, OverflowPolicy

pytestmark = pytest.mark.anyio


def env(message: object, *, control: bool = False) -> Envelope:
    return Envelope(message, control=control)


async def test_fifo_with_control_lane_first() -> None:
    box = Mailbox("k", capacity=8)
    for i in range(3):
        box.put_nowait(env(i))
    box.put_nowait(env("stop", control=True))
    got = [box.get_nowait() for _ in range(4)]
    assert [e.message for e in got if e] == ["stop", 0, 1, 2]
    assert box.get_nowait() is None


async def test_full_lane_raises_never_drops() -> None:
    box = Mailbox("k", capacity=2, control_capacity=1)
    box.put_nowait(env(1))
    box.put_nowait(env(2))
    with pytest.raises(MailboxFullError) as info:
        box.put_nowait(env(3))
    assert info.value.capacity == 2
    box.put_nowait(env("c", control=True))
    with pytest.raises(MailboxFullError) as control_info:
        box.put_nowait(env("c2", control=True))
    assert control_info.value.control
    assert len(box) == 3


async def test_put_waits_for_room_in_order() -> None:
    box = Mailbox("k", capacity=1)
    box.put_nowait(env(0))
    async with anyio.create_task_group() as tg:
        tg.start_soon(box.put, env(1))
        await anyio.wait_all_tasks_blocked()
        assert box.statistics().waiting_senders == 1
        first = await box.get()
        await anyio.wait_all_tasks_blocked()
    second = box.get_nowait()
    assert first is not None
    assert first.message == 0
    assert second is not None
    assert second.message == 1


async def test_reject_policy_raises_on_put() -> None:
    box = Mailbox("k", capacity=1, overflow=OverflowPolicy.REJECT)
    box.put_nowait(env(0))
    with pytest.raises(MailboxFullError):
        await box.put(env(1))


async def test_cancelled_waiting_sender_passes_room_on() -> None:
    box = Mailbox("k", capacity=1)
    box.put_nowait(env(0))
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            tg.start_soon(box.put, env("late"))
            await anyio.wait_all_tasks_blocked()
        scope.cancel()
        tg.cancel_scope.cancel()
    assert box.statistics().waiting_senders == 0
    assert len(box) == 1


async def test_close_hands_back_and_refuses() -> None:
    box = Mailbox("k", capacity=4)
    box.put_nowait(env(1))
    box.put_nowait(env("c", control=True))
    rest = box.close()
    assert [e.message for e in rest] == ["c", 1]
    with pytest.raises(MailboxClosedError):
        box.put_nowait(env(2))
    with pytest.raises(MailboxClosedError):
        await box.get()


async def test_nudge_wakes_consumer_with_none() -> None:
    box = Mailbox("k")
    async with anyio.create_task_group() as tg:
        results: list[Envelope | None] = []

        async def consume() -> None:
            results.append(await box.get())

        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        box.nudge()
    assert results == [None]


async def test_statistics() -> None:
    box = Mailbox("k", capacity=10)
    for i in range(5):
        box.put_nowait(env(i))
    box.get_nowait()
    box.get_nowait()
    stats = box.statistics()
    assert (stats.depth, stats.high_water, stats.handled, stats.capacity) == (3, 5, 2, 10)


def deques_held(box: Mailbox) -> int:
    """How many queues ``box`` holds (its lanes and waiting senders)."""
    return sum(isinstance(o, deque) for o in gc.get_referents(box))


async def test_an_empty_mailbox_holds_no_queue() -> None:
    box = Mailbox("k", capacity=1)
    assert deques_held(box) == 0, "made by the first message"
    box.put_nowait(env(1))
    box.put_nowait(env("c", control=True))
    assert deques_held(box) == 2
    assert [box.get_nowait(), box.get_nowait()] != [None, None]
    assert box.get_nowait() is None
    assert deques_held(box) == 0, "let go of once the consumer found it empty"
    box.put_nowait(env(2))
    async with anyio.create_task_group() as tg:
        tg.start_soon(box.put, env(3))  # waits for room
        await anyio.wait_all_tasks_blocked()
        assert deques_held(box) == 2, "the lane and the waiting sender"
        assert [e.message for e in [box.get_nowait()] if e] == [2]
    assert [e.message for e in [box.get_nowait()] if e] == [3]
    assert box.get_nowait() is None
    assert deques_held(box) == 0
    assert (box.statistics().depth, len(box)) == (0, 0)
    box.push_front(env(4))
    assert box.close()[0].message == 4
    assert deques_held(box) == 0
