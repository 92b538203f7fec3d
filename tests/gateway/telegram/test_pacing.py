"""``ChatPace``: when the next request to a chat may go (pure: times are given)."""

from __future__ import annotations

import gc
import math
from collections import deque

import anyio
import pytest

from gateway.telegram.pacing import WINDOW, ChatPace, GlobalPace


def test_one_request_per_interval() -> None:
    pace = ChatPace(1.0, None)
    assert pace.ready_at(10.0) == 10.0
    pace.spend(10.0)
    assert pace.ready_at(10.2) == 11.0
    assert pace.ready_at(11.5) == 11.5


def test_a_group_takes_so_many_a_minute_sends_and_edits_alike() -> None:
    pace = ChatPace(1.0, 3)
    for t in (0.0, 1.0, 2.0):
        pace.spend(t)
    assert pace.ready_at(3.0) == 0.0 + WINDOW  # the oldest must leave the window first
    assert pace.ready_at(WINDOW + 0.5) == WINDOW + 0.5


def test_a_reserve_keeps_requests_back_for_final_texts() -> None:
    pace = ChatPace(1.0, 4)
    pace.spend(0.0)
    pace.spend(1.0)
    assert pace.ready_at(2.0, reserve=1) == 2.0  # 2 used + 1 now + 1 kept <= 4
    assert pace.ready_at(2.0, reserve=2) == WINDOW  # only when the first one expires
    assert pace.ready_at(2.0, reserve=4) == math.inf  # never, while 4 are kept back
    assert pace.ready_at(2.0) == 2.0  # a final text goes


def test_a_private_chat_has_no_minute_budget() -> None:
    pace = ChatPace(1.0, None)
    for t in range(100):
        pace.spend(float(t))
    assert pace.ready_at(100.0, reserve=50) == 100.0


def test_flood_control_blocks_until_retry_after() -> None:
    pace = ChatPace(1.0, 20)
    pace.block(30.0)
    assert pace.ready_at(5.0) == 30.0
    pace.block(10.0)  # an earlier one does not shorten it
    assert pace.blocked_until == 30.0


def test_an_idle_chat_keeps_no_queue_of_its_requests() -> None:
    def deques(pace: ChatPace) -> int:
        return sum(isinstance(o, deque) for o in gc.get_referents(pace))

    private, group = ChatPace(1.0, None), ChatPace(1.0, 3)
    for pace in (private, group):
        pace.spend(0.0)
        assert pace.ready_at(0.5) == 1.0
    assert deques(private) == 0, "a private chat keeps its last request's time alone"
    assert deques(group) == 1, "a group, its minute's requests"
    assert group.ready_at(WINDOW) == WINDOW
    assert deques(group) == 0, "let go of once they expired"
    group.spend(WINDOW)
    assert group.ready_at(WINDOW + 0.5) == WINDOW + 1.0


async def _spacing(pace: GlobalPace, requests: int) -> float:
    start = anyio.current_time()
    for _ in range(requests):
        await pace.wait()
    return anyio.current_time() - start


@pytest.mark.anyio
async def test_the_global_rate_is_shared_among_the_live_replicas() -> None:
    pace = GlobalPace(1 / 30)
    assert pace.rate == pytest.approx(30)
    pace.share(3)
    assert pace.rate == pytest.approx(10)
    elapsed = await _spacing(pace, 11)  # ten gaps of 1/10 s
    assert 0.99 <= elapsed < 1.3
    pace.share(0)  # no replica listed yet: this one counts
    assert pace.rate == pytest.approx(30)
    await anyio.sleep(1)  # the slot promised last (at the old share) is past
    elapsed = await _spacing(pace, 31)
    assert 0.99 <= elapsed < 1.3


@pytest.mark.anyio
async def test_a_cosmetic_request_never_books_a_slot_ahead() -> None:
    """Thousands of "typing…" asked at once take the free slot and no other: the next real
    request is not pushed into the future by them."""
    pace = GlobalPace(1 / 30)
    start = anyio.current_time()
    taken = sum(pace.take_nowait() for _ in range(10_000))
    assert 1 <= taken <= (anyio.current_time() - start) * 30 + 1, "only the slots free then"
    start = anyio.current_time()
    await pace.wait()  # the slot after the last one taken, not 10,000 slots later
    assert anyio.current_time() - start < 0.1
    await anyio.sleep(1 / 30)
    assert pace.take_nowait()


@pytest.mark.anyio
async def test_a_wait_cancelled_before_its_slot_gives_the_slot_back() -> None:
    pace = GlobalPace(1.0)
    await pace.wait()  # the slot now: the next one is a second away
    with anyio.move_on_after(0.1):
        await pace.wait()  # cancelled while waiting for it
    start = anyio.current_time()
    await pace.wait()  # that slot again, not the one after
    assert anyio.current_time() - start < 1.0
