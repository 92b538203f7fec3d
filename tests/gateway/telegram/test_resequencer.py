"""The webhook's re-sequencing, on asyncio and on trio's MockClock (waits take no time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs
import pytest

from actors.thread.messages import UserMessage
from actors.thread.records import ThreadKey
from gateway.telegram.resequencer import Resequencer
from gateway.telegram.routing import Routed
from tests.conftest import anyio_backend  # noqa: F401 - both backends here: no aiogram
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio
A, B = ThreadKey(1), ThreadKey(2)
WINDOW = 0.5


def routed(update_id: int, key: ThreadKey) -> Routed:
    return Routed(update_id, key, UserMessage(update_id, f"u{update_id}"))


@attrs.define
class Deliveries:
    ids: list[tuple[int, ThreadKey]] = attrs.Factory(list)
    at: list[float] = attrs.Factory(list)

    async def deliver(self, message: Routed) -> None:
        self.ids.append((message.update_id, message.key))
        self.at.append(anyio.current_time())


@asynccontextmanager
async def running(
    last_seen: int | None, **bounds: int
) -> AsyncIterator[tuple[Resequencer, Deliveries]]:
    delivered = Deliveries()
    resequencer = Resequencer(delivered.deliver, WINDOW, last_seen, **bounds)
    async with anyio.create_task_group() as tg:
        tg.start_soon(resequencer.run)
        yield resequencer, delivered
        tg.cancel_scope.cancel()


async def settle() -> None:
    await anyio.wait_all_tasks_blocked()


async def test_in_order_updates_pass_at_once() -> None:
    async with running(last_seen=10) as (resequencer, delivered):
        start = anyio.current_time()
        for update_id, key in ((11, A), (12, B), (13, A)):
            resequencer.arrived(update_id, routed(update_id, key))
        await settle()
        assert delivered.ids == [(11, A), (12, B), (13, A)]
        assert all(at - start < WINDOW for at in delivered.at)


async def test_an_overtaken_update_is_put_back_in_order() -> None:
    async with running(last_seen=10) as (resequencer, delivered):
        start = anyio.current_time()
        resequencer.arrived(13, routed(13, A))
        resequencer.arrived(12, None)  # ignored update (another chat): it fills its gap too
        await settle()
        assert delivered.ids == [], "13 waits for 11"
        assert resequencer.held == 1
        resequencer.arrived(11, routed(11, A))
        await settle()
        assert delivered.ids == [(11, A), (13, A)]
        assert all(at - start < WINDOW for at in delivered.at)


async def test_a_gap_that_never_fills_costs_one_window_then_a_late_arrival_passes() -> None:
    async with running(last_seen=10) as (resequencer, delivered):
        start = anyio.current_time()
        resequencer.arrived(12, routed(12, A))
        with anyio.fail_after(5 * WINDOW):
            while not delivered.ids:
                await anyio.sleep(WINDOW / 10)
        assert delivered.ids == [(12, A)]
        assert delivered.at[0] - start >= WINDOW
        resequencer.arrived(13, routed(13, B))  # the gap was given up on: no more waiting
        resequencer.arrived(11, routed(11, A))  # too late to be first; delivered, logged
        await settle()
        assert delivered.ids == [(12, A), (13, B), (11, A)]
        assert delivered.at[-1] - delivered.at[0] < WINDOW


async def test_with_nothing_known_the_first_updates_wait_one_window() -> None:
    async with running(last_seen=None) as (resequencer, delivered):
        start = anyio.current_time()
        resequencer.arrived(7, routed(7, A))
        resequencer.arrived(6, routed(6, A))
        with anyio.fail_after(5 * WINDOW):
            while len(delivered.ids) < 2:
                await anyio.sleep(WINDOW / 10)
        assert delivered.ids == [(6, A), (7, A)]
        assert delivered.at[0] - start >= WINDOW
        resequencer.arrived(8, routed(8, A))
        await settle()
        assert delivered.ids[-1] == (8, A)
        assert delivered.at[-1] - delivered.at[0] < WINDOW


async def test_a_thread_holds_at_most_its_bound_then_its_gap_is_given_up_at_once() -> None:
    with captured_logs() as logs:
        async with running(last_seen=10, max_held_per_thread=3) as (resequencer, delivered):
            start = anyio.current_time()
            for update_id in (12, 13, 14):  # 11 is missing
                resequencer.arrived(update_id, routed(update_id, A))
            await settle()
            assert (delivered.ids, resequencer.held) == ([], 3)
            resequencer.arrived(15, routed(15, A))  # one more than the bound
            await settle()
            assert delivered.ids == [(12, A), (13, A), (14, A), (15, A)], "in order"
            assert anyio.current_time() - start < WINDOW, "without waiting out the window"
            assert resequencer.held == 0
            resequencer.arrived(11, routed(11, A))  # late: delivered at once, logged
            await settle()
            assert delivered.ids[-1] == (11, A)
    assert any("gave up waiting for updates before 15: thread 1 holds 4" in line for line in logs)


async def test_at_most_the_bound_of_threads_wait_the_one_waiting_longest_is_released() -> None:
    with captured_logs() as logs:
        async with running(last_seen=10, max_threads=2) as (resequencer, delivered):
            resequencer.arrived(12, routed(12, A))  # 11, 13 and 15 are missing
            resequencer.arrived(14, routed(14, B))
            await settle()
            assert (delivered.ids, resequencer.threads) == ([], 2)
            resequencer.arrived(16, routed(16, ThreadKey(3)))
            await settle()
            assert delivered.ids == [(12, A)], "A waited longest; B and 3 still wait"
            assert resequencer.threads == 2
            resequencer.arrived(13, None)
            resequencer.arrived(15, None)
            await settle()
            assert delivered.ids == [(12, A), (14, B), (16, ThreadKey(3))]
            assert resequencer.threads == 0
    assert any("thread 1 waited longest" in line for line in logs)


async def test_ids_remembered_after_a_gap_are_bounded_too() -> None:
    with captured_logs() as logs:
        async with running(last_seen=10, max_early=5) as (resequencer, delivered):
            for update_id in range(12, 17):  # ignored updates after a gap at 11
                resequencer.arrived(update_id, None)
            resequencer.arrived(17, routed(17, A))  # the sixth id after the gap
            await settle()
            assert delivered.ids == [(17, A)], "the gap was given up on, not waited for"
    assert any("gave up waiting for updates before 12" in line for line in logs)
