from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Hashable

import anyio
import pytest

from actors import (
    Actor,
    ActorContext,
    ActorFailedError,
    AskTimeoutError,
    ChildState,
    DeadLetter,
    DeadLetterReason,
    MailboxFullError,
    OverflowPolicy,
    RestartPolicy,
    Supervisor,
    SupervisorClosedError,
    SupervisorConfig,
)
from tests.actors.scripted import Journal, Kind, Scripted, Work
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio

FAST_RESTARTS = RestartPolicy(backoff_initial=0.01, backoff_max=0.05, jitter=0.0)


def make(journal: Journal, letters: list[DeadLetter], **config: object) -> Supervisor[Hashable]:
    settings = {
        "stall_timeout": 0.2,
        "idle_ttl": None,
        "drain_timeout": 0.2,
        "restart": FAST_RESTARTS,
        **config,
    }
    return Supervisor(
        lambda key: Scripted(key, journal),
        SupervisorConfig(**settings),  # type: ignore[arg-type]
        on_dead_letter=letters.append,
    )


async def settle(supervisor: Supervisor[Hashable], *, timeout: float = 5.0) -> None:
    """Wait until no child is handling or queueing anything."""
    with anyio.fail_after(timeout):
        while any(
            c.state is not ChildState.IDLE or c.mailbox_depth or c.background_tasks
            for c in supervisor.status().children
        ):
            await anyio.sleep(0.01)


async def test_spawns_on_first_message_and_answers_ask() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters) as sup:
        assert "a" not in sup
        assert await sup.ref_for("a").ask(Work(1), timeout=1) == 1
        assert "a" in sup
    assert journal.handled == [("a", 1)]
    assert letters == []


async def test_crash_restarts_on_same_mailbox_and_retries_once() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters) as sup:
        ref = sup.ref_for("a")
        for work in (Work(1, Kind.CRASH_ONCE), Work(2), Work(3)):
            ref.send_nowait(work)
        await settle(sup)
        assert sup.statistics().restarts == 1
    assert journal.handled == [("a", 1), ("a", 2), ("a", 3)]
    assert journal.incarnations["a"] == 2
    assert letters == []


async def test_message_crashing_twice_is_dead_lettered_and_the_rest_handled() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters) as sup:
        ref = sup.ref_for("a")
        ref.send_nowait(Work(1, Kind.CRASH))
        ref.send_nowait(Work(2))
        await settle(sup)
    assert journal.attempts[1] == 2
    assert journal.handled == [("a", 2)]
    crashed = (Work(1, Kind.CRASH), DeadLetterReason.CRASHED)
    assert [(d.message, d.reason) for d in letters] == [crashed]


async def test_ask_failure_goes_to_the_asker_without_restart() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters) as sup:
        with pytest.raises(RuntimeError, match="scripted crash 1"):
            await sup.ref_for("a").ask(Work(1, Kind.CRASH), timeout=1)
        assert await sup.ref_for("a").ask(Work(2), timeout=1) == 2
        assert sup.statistics().restarts == 0
    assert journal.incarnations["a"] == 1


async def test_hung_handler_is_cancelled_within_bound_and_dead_lettered() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    stall = 0.2
    async with make(journal, letters, stall_timeout=stall) as sup:
        ref = sup.ref_for("a")
        ref.send_nowait(Work(1, Kind.HANG))
        ref.send_nowait(Work(2))
        with anyio.fail_after(5):
            while ("a", 2) not in journal.handled:
                await anyio.sleep(0.01)
        first_hang = journal.hang_started[1]
        stats = sup.statistics()
    assert stats.stalls == 2
    # Two stalls (each detected within 1.5x stall) and two short backoffs.
    assert anyio.current_time() - first_hang <= 2 * 1.5 * stall + 0.2
    assert [d.reason for d in letters] == [DeadLetterReason.CRASHED]


async def test_slow_handler_that_heartbeats_is_not_taken_for_hung() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, stall_timeout=0.1) as sup:
        assert await sup.ref_for("a").ask(Work(1, Kind.SLOW, duration=0.5), timeout=5) == 1
        assert sup.statistics().stalls == 0


async def test_one_hung_child_does_not_delay_another() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, stall_timeout=10.0) as sup:
        sup.ref_for("a").send_nowait(Work(1, Kind.HANG))
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        assert await sup.ref_for("b").ask(Work(2), timeout=1) == 2
        assert anyio.current_time() - start < 1.0
        states = {c.key: c.state for c in sup.status().children}
        assert states["a"] is ChildState.BUSY
        await sup.aclose()


async def test_backoff_grows_exponentially() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    born: list[float] = []

    def factory(key: Hashable) -> Scripted:
        born.append(anyio.current_time())
        return Scripted(key, journal)

    policy = RestartPolicy(max_restarts=10, backoff_initial=0.1, backoff_max=10, jitter=0.0)
    async with Supervisor(
        factory, SupervisorConfig(idle_ttl=None, restart=policy), on_dead_letter=letters.append
    ) as sup:
        for i in range(2):
            sup.ref_for("a").send_nowait(Work(i, Kind.CRASH))
        await settle(sup)
    gaps = [b - a for a, b in itertools.pairwise(born)]
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.8], abs=0.05)


async def test_restart_intensity_marks_failed_then_cooldown_respawns() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    policy = RestartPolicy(
        max_restarts=2, within=60, backoff_initial=0.01, jitter=0.0, failed_cooldown=0.5
    )
    async with make(journal, letters, restart=policy) as sup:
        ref = sup.ref_for("a")
        for work in (Work(1, Kind.CRASH), Work(2, Kind.CRASH), Work(3)):
            ref.send_nowait(work)
        with anyio.fail_after(5):
            while sup.statistics().failures == 0:
                await anyio.sleep(0.01)
        [child] = sup.status().children
        assert child.state is ChildState.FAILED
        with pytest.raises(ActorFailedError) as info:
            ref.send_nowait(Work(4))
        assert 0 < info.value.retry_after <= 0.5
        await anyio.sleep(0.6)
        assert await ref.ask(Work(5), timeout=1) == 5
    reasons = [(d.message.id, d.reason) for d in letters if isinstance(d.message, Work)]
    assert reasons == [
        (1, DeadLetterReason.CRASHED),
        (2, DeadLetterReason.FAILED),
        (3, DeadLetterReason.FAILED),
    ]
    assert ("a", 5) in journal.handled


async def test_a_failed_child_stays_failed_until_its_last_word_is_done() -> None:
    """Found by the thread machine at 2,000 examples: a last word that outlasted the cooldown
    (a thread retrying the write of its conclusion) ran beside the successor the next message
    spawned, and concluded that successor's input as not answered while it answered it."""
    journal, letters = Journal(last_word_takes=2.0), list[DeadLetter]()
    policy = RestartPolicy(max_restarts=1, within=60, backoff_initial=0.01, failed_cooldown=0.5)
    async with make(journal, letters, restart=policy) as sup:
        ref = sup.ref_for("a")
        ref.send_nowait(Work(1, Kind.CRASH))
        with anyio.fail_after(5):
            while sup.statistics().failures == 0:
                await anyio.sleep(0.01)
        await anyio.sleep(1.0)  # the cooldown is over; the last word is not
        with pytest.raises(ActorFailedError):
            ref.send_nowait(Work(2))
        await anyio.sleep(1.5)
        assert await ref.ask(Work(3), timeout=1) == 3
    assert journal.last_word_ended_at is not None
    assert journal.started_at[-1] >= journal.last_word_ended_at


@pytest.mark.parametrize("last_word_fails", [False, True])
async def test_a_failed_child_has_the_last_word_over_its_mail(last_word_fails: bool) -> None:
    journal = Journal(last_word_takes_even=True, last_word_fails=last_word_fails)
    letters = list[DeadLetter]()
    policy = RestartPolicy(max_restarts=1, within=60, backoff_initial=0.01, failed_cooldown=5)
    async with make(journal, letters, restart=policy) as sup:
        ref = sup.ref_for("a")
        for work in (Work(1, Kind.CRASH), Work(2), Work(3), Work(4)):
            ref.send_nowait(work)
        with anyio.fail_after(5):
            while sup.statistics().failures == 0:
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)
    reasons = [(d.message.id, d.reason) for d in letters if isinstance(d.message, Work)]
    if last_word_fails:  # everything it was given is dead-lettered
        assert journal.concluded_when_failed == []
        assert reasons == [(1, DeadLetterReason.CRASHED)] + [
            (i, DeadLetterReason.FAILED) for i in (2, 3, 4)
        ]
    else:
        assert journal.concluded_when_failed == [2, 4]
        assert reasons == [(1, DeadLetterReason.CRASHED), (3, DeadLetterReason.FAILED)]


async def test_idle_child_is_passivated_and_respawned_fresh() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, idle_ttl=0.4) as sup:
        await sup.ref_for("a").ask(Work(1), timeout=1)
        await anyio.sleep(0.3)
        assert "a" in sup
        await anyio.sleep(0.4)
        assert "a" not in sup
        assert journal.stopped == ["a"]
        await sup.ref_for("a").ask(Work(2), timeout=1)
        assert sup.statistics().passivations == 1
    assert journal.incarnations["a"] == 2


async def test_a_passivated_actor_is_released_at_once() -> None:
    """Nothing keeps a passivated actor alive until the next sweep (a sweep may stop
    100,000 of them)."""
    journal, letters = Journal(), list[DeadLetter]()
    made: list[weakref.ref[Scripted]] = []

    def factory(key: Hashable) -> Scripted:
        actor = Scripted(key, journal)
        made.append(weakref.ref(actor))
        return actor

    config = SupervisorConfig(idle_ttl=0.4, restart=FAST_RESTARTS)
    async with Supervisor(factory, config, on_dead_letter=letters.append) as sup:
        await sup.ref_for("a").ask(Work(1), timeout=1)
        with anyio.fail_after(2):
            while journal.stopped != ["a"]:
                await anyio.sleep(0.005)
        await anyio.sleep(0.02)  # the sweep has returned; the next is 0.1 s away
        gc.collect()
        assert [ref() for ref in made] == [None]


async def test_background_work_keeps_child_alive_and_reports_back() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, idle_ttl=0.2) as sup:
        sup.ref_for("a").send_nowait(Work(1, Kind.BACKGROUND, duration=0.6))
        await anyio.sleep(0.4)
        [child] = sup.status().children
        assert child.state is ChildState.BUSY
        assert child.background_tasks == 1
        await anyio.sleep(0.4)
        assert ("a", 1) in journal.handled
        assert sup.statistics().stalls == 0


async def test_shutdown_drains_then_hands_back_the_rest() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, drain_timeout=0.3, stall_timeout=30) as sup:
        sup.ref_for("a").send_nowait(Work(1, Kind.HANG))
        sup.ref_for("a").send_nowait(Work(2))
        sup.ref_for("b").send_nowait(Work(3))
    assert journal.handled == [("b", 3)]
    assert [(d.message, d.reason) for d in letters] == [
        (Work(1, Kind.HANG), DeadLetterReason.SHUTDOWN),  # the one being handled, cut off
        (Work(2), DeadLetterReason.SHUTDOWN),
    ], "nothing is dropped at the drain deadline"
    with pytest.raises(SupervisorClosedError):
        sup.ref_for("a").send_nowait(Work(4))


async def test_overflow_reject_is_seen_by_the_sender() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    config = {"mailbox_capacity": 1, "overflow": OverflowPolicy.REJECT, "stall_timeout": 30}
    async with make(journal, letters, **config) as sup:
        ref = sup.ref_for("a")
        ref.send_nowait(Work(1, Kind.HANG))
        await anyio.wait_all_tasks_blocked()
        await ref.send(Work(2))
        with pytest.raises(MailboxFullError):
            await ref.send(Work(3))
        await sup.aclose()


async def test_ask_times_out() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters, stall_timeout=30) as sup:
        with pytest.raises(AskTimeoutError):
            await sup.ref_for("a").ask(Work(1, Kind.HANG), timeout=0.1)
        await sup.aclose()


async def test_broadcast_reaches_live_children() -> None:
    journal, letters = Journal(), list[DeadLetter]()
    async with make(journal, letters) as sup:
        for key in "abc":
            await sup.ref_for(key).ask(Work(ord(key)), timeout=1)
        assert sup.broadcast(Work(100)) == 3
        await settle(sup)
    assert sorted(str(k) for k, i in journal.handled if i == 100) == ["a", "b", "c"]


class Picky(Scripted):
    """Concerned by broadcasts only when its key is upper case."""

    def wants(self, message: object) -> bool:
        return str(self._key).isupper()


async def test_a_broadcast_starts_a_task_only_for_the_dormant_children_it_concerns() -> None:
    """Issue 17, item 12: "credentials available" started an activation task for every live
    thread, parked or not."""
    journal, letters = Journal(), list[DeadLetter]()
    config = SupervisorConfig(idle_ttl=None, drain_timeout=0.2, restart=FAST_RESTARTS)
    sup: Supervisor[Hashable] = Supervisor(lambda key: Picky(key, journal), config, letters.append)
    async with sup:
        dormant = [f"k{i}" for i in range(500)] + ["A", "B"]
        for ident, key in enumerate(dormant, 1):
            await sup.ref_for(key).ask(Work(ident), timeout=1)
        await sup.ref_for("busy").ask(Work(1000, Kind.BACKGROUND, 1.0), timeout=1)
        await anyio.wait_all_tasks_blocked()
        before = len(anyio.get_running_tasks())
        assert sup.broadcast(Work(2000)) == 3, "the two it concerns, and the active child"
        assert len(anyio.get_running_tasks()) == before + 2, "a task per dormant child woken"
        await settle(sup)
    assert sorted(str(k) for k, i in journal.handled if i == 2000) == ["A", "B", "busy"]


class CrashesWhileCancelled(Actor[str]):
    """Starts background work, then crashes in a shielded step that outlasts the drain."""

    async def receive(self, message: str, ctx: ActorContext[str]) -> None:
        ctx.start_soon(anyio.sleep_forever)
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.5)  # the drain (0.2 s) ends, the background work is cancelled
        raise RuntimeError(f"crashed handling {message!r}")


async def test_a_crash_that_meets_the_shutdown_cancellation_does_not_end_the_supervisor() -> None:
    """Found by ``make fuzz``: a handler's crash and the shutdown's cancellation of its
    background task arrive as one group; the crash escaped and ended the supervisor's task
    group with an error (and the gateway's shutdown with it)."""
    letters = list[DeadLetter]()
    config = SupervisorConfig(stall_timeout=30, idle_ttl=None, drain_timeout=0.2)
    with captured_logs() as lines:
        async with Supervisor[str](
            lambda key: CrashesWhileCancelled(), config, on_dead_letter=letters.append
        ) as sup:
            sup.ref_for("a").send_nowait("go")
            await anyio.sleep(0.05)
    assert [(d.message, d.reason) for d in letters] == [("go", DeadLetterReason.SHUTDOWN)]
    assert any("'a' crashed" in line and "RuntimeError" in line for line in lines), lines
