"""Timers (``ActorContext.tell_later``): one queue and one task per supervisor, not a task
per timer (``actors/timers.py``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Hashable

import anyio
import pytest

from actors import ChildState, DeadLetter, Supervisor, SupervisorConfig
from actors.timers import COMPACT_AT
from tests.actors.scripted import Journal, Kind, Scripted, Work
from tests.actors.test_supervisor import FAST_RESTARTS

pytestmark = pytest.mark.anyio


def make(journal: Journal, **config: object) -> Supervisor[Hashable]:
    settings = {"idle_ttl": None, "drain_timeout": 0.2, "restart": FAST_RESTARTS, **config}
    return Supervisor(
        lambda key: Scripted(key, journal),
        SupervisorConfig(**settings),  # type: ignore[arg-type]
        on_dead_letter=list[DeadLetter]().append,
    )


async def wait_for(journal: Journal, key: Hashable, done: int, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        while (key, done) not in journal.handled:
            await anyio.sleep(0.01)


async def test_timers_arrive_when_due_earliest_first() -> None:
    journal = Journal()
    async with make(journal) as sup:
        start = anyio.current_time()
        for ident, delay in ((1, 0.6), (2, 0.2), (3, 0.4)):  # each earlier one moves the sleep
            await sup.ref_for("a").ask(Work(ident, Kind.TIMER, delay), timeout=1)
        await wait_for(journal, "a", 1)
        arrived = [i for _, i in journal.handled]
    assert arrived == [2, 3, 1]
    for ident, delay in ((1, 0.6), (2, 0.2), (3, 0.4)):
        assert journal.done_at[ident] - start == pytest.approx(delay, abs=0.1)


@pytest.mark.parametrize("cancelled", [1, 2], ids=["the-earliest", "a-later-one"])
async def test_a_cancelled_timer_never_arrives_nor_wakes_the_timer_task(cancelled: int) -> None:
    journal = Journal()
    async with make(journal) as sup:
        ref = sup.ref_for("a")
        await ref.ask(Work(1, Kind.TIMER, 0.2), timeout=1)
        await ref.ask(Work(2, Kind.TIMER, 0.4), timeout=1)
        journal.timers[cancelled].cancel()
        assert not journal.timers[cancelled].pending
        other = 3 - cancelled
        await wait_for(journal, "a", other)
        await anyio.sleep(0.3)
        assert sup.statistics().timer_wakeups == 1  # for the other one only
    assert [i for _, i in journal.handled] == [other]
    assert not journal.timers[other].pending  # sent; cancelling it now changes nothing
    journal.timers[other].cancel()


async def test_a_timer_wakes_a_dormant_actor_without_a_task_meanwhile() -> None:
    journal = Journal()
    async with make(journal) as sup:
        await sup.ref_for("a").ask(Work(1, Kind.TIMER, 0.5), timeout=1)
        await anyio.sleep(0.1)
        [child] = sup.status().children
        assert child.state is ChildState.IDLE
        assert child.background_tasks == 0  # the pending timer is not a task
        await wait_for(journal, "a", 1)


async def test_timers_of_a_crashed_incarnation_are_not_sent_to_the_next() -> None:
    journal = Journal()
    async with make(journal) as sup:
        ref = sup.ref_for("a")
        await ref.ask(Work(1, Kind.TIMER, 0.3), timeout=1)
        ref.send_nowait(Work(2, Kind.CRASH_ONCE))
        await ref.ask(Work(3, Kind.TIMER, 0.5), timeout=1)  # set by the new incarnation
        await wait_for(journal, "a", 3)
    assert journal.incarnations["a"] == 2
    assert [i for _, i in journal.handled] == [2, 3]


async def test_a_pending_timer_does_not_hold_passivation_and_dies_with_it() -> None:
    journal = Journal()
    async with make(journal, idle_ttl=0.2) as sup:
        await sup.ref_for("a").ask(Work(1, Kind.TIMER, 5.0), timeout=1)
        with anyio.fail_after(2):
            while "a" in sup:
                await anyio.sleep(0.05)
        await anyio.sleep(5.0)
        assert "a" not in sup, "the timer of a passivated actor must not respawn it"
    assert journal.handled == []
    assert journal.incarnations["a"] == 1


async def test_cancelling_the_earliest_timer_lets_the_timer_task_sleep_on() -> None:
    """A run's "typing…" timer, cancelled when the run ends, must not wake the timer task for
    nothing: the task sleeps until the next pending timer, or for good."""
    journal = Journal()
    async with make(journal) as sup:
        ref = sup.ref_for("a")
        await ref.ask(Work(1, Kind.TIMER, 0.2), timeout=1)
        journal.timers[1].cancel()
        await anyio.sleep(0.4)
        assert sup.statistics().timer_wakeups == 0
        start = anyio.current_time()
        await ref.ask(Work(2, Kind.TIMER, 0.2), timeout=1)
        await ref.ask(Work(3, Kind.TIMER, 0.5), timeout=1)
        journal.timers[2].cancel()  # the earliest: the task now sleeps until 3 is due
        await wait_for(journal, "a", 3)
        assert journal.done_at[3] - start == pytest.approx(0.5, abs=0.1)
        assert sup.statistics().timer_wakeups == 1


async def test_a_cancelled_timer_does_not_keep_its_actor_alive() -> None:
    """Issue 17, item 12: a cancelled timer sat in the heap until it came due, holding its
    child (and so the passivated actor) for as long as its delay."""
    journal, built = Journal(), list[weakref.ref[Scripted]]()

    def factory(key: Hashable) -> Scripted:
        actor = Scripted(key, journal)
        built.append(weakref.ref(actor))
        return actor

    config = SupervisorConfig(idle_ttl=0.2, drain_timeout=0.2, restart=FAST_RESTARTS)
    async with Supervisor(factory, config) as sup:
        await sup.ref_for("a").ask(Work(1, Kind.TIMER, 3600.0), timeout=1)
        journal.timers[1].cancel()
        with anyio.fail_after(2):
            while "a" in sup:  # passivated
                await anyio.sleep(0.05)
        gc.collect()
        assert built[0]() is None, "the cancelled timer pinned the passivated actor"
        assert sup.statistics().timers_queued <= 1
    assert journal.handled == []


async def test_timers_set_and_cancelled_over_and_over_keep_the_queue_small() -> None:
    journal = Journal()
    async with make(journal) as sup:
        ref = sup.ref_for("a")
        await ref.ask(Work(0, Kind.TIMER, 3600.0), timeout=1)  # pending, and due first:
        for ident in range(1, 2001):  # so cancelling these only marks them (not the earliest)
            await ref.ask(Work(ident, Kind.TIMER, 7200.0), timeout=1)
            journal.timers[ident].cancel()
            assert sup.statistics().timers_queued <= 2 * COMPACT_AT + 2
        assert journal.timers[0].pending
        assert sup.statistics().timer_wakeups == 0
        await ref.ask(Work(9999, Kind.TIMER, 0.2), timeout=1)  # the queue still sends
        await wait_for(journal, "a", 9999)
