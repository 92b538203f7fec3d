"""Property test of the supervisor: random sends, crashes, hangs, passivation, restarts,
children marked failed (whose last word may itself fail), a dead-letter handler that
fails, and shutdowns in the middle of it all. Every message ends exactly once: handled,
taken care of by a failed child's last word, dead-lettered, or refused to its sender."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable

import pytest
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors import (
    ActorFailedError,
    ChildState,
    DeadLetter,
    RestartPolicy,
    Supervisor,
    SupervisorConfig,
)
from tests.actors.clocked_loop import STEP, ClockedLoop
from tests.actors.scripted import Done, Journal, Kind, Scripted, Work
from tests.strategies import actor_keys, machine_settings, machine_timeout, time_steps, work_kinds

STALL = 1.0
CONFIG = SupervisorConfig(
    stall_timeout=STALL,
    idle_ttl=3.0,
    drain_timeout=1.0,
    restart=RestartPolicy(
        max_restarts=4, within=10.0, backoff_initial=0.1, backoff_max=1.0, failed_cooldown=4.0
    ),
)


class SupervisorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = ClockedLoop()
        self.journal = Journal(last_word_takes_even=True)
        self.letters: list[DeadLetter] = []
        self.handler_fails = False
        self.sent: dict[int, Hashable] = {}
        self.refused: set[int] = set()
        self._start()

    def _start(self) -> None:
        self.supervisor: Supervisor[Hashable] = Supervisor(
            lambda key: Scripted(key, self.journal),
            CONFIG,
            on_dead_letter=self._dead_letter,
            rng=random.Random(0),  # the restart jitter: examples replay exactly
        )
        self._context = self.loop.portal.wrap_async_context_manager(self.supervisor)
        self._context.__enter__()

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)  # recorded first: a handler that raises was still told
        if self.handler_fails:
            raise RuntimeError("scripted: the dead-letter handler failed")

    def _send(self, key: Hashable, work: Work) -> None:
        self.sent[work.id] = key
        try:
            self.loop.call(self.supervisor.ref_for(key).send_nowait, work)
        except ActorFailedError:
            self.refused.add(work.id)

    @rule(key=actor_keys, kind=work_kinds)
    def send(self, key: str, kind: Kind) -> None:
        self._send(key, Work(len(self.sent), kind, duration=0.5))

    @rule(seconds=time_steps)
    def advance(self, seconds: float) -> None:
        self.loop.advance(seconds)

    @rule()
    def the_last_word_fails_or_works_again(self) -> None:
        self.journal.last_word_fails = not self.journal.last_word_fails

    @rule()
    def the_dead_letter_handler_fails_or_works_again(self) -> None:
        self.handler_fails = not self.handler_fails

    @rule()
    def the_supervisor_shuts_down_mid_flight_and_a_new_one_starts(self) -> None:
        self.loop.exit(self._context)
        self._start()

    @rule(key=actor_keys)
    def a_clean_child_is_not_delayed_by_the_others(self, key: str) -> None:
        children = {c.key: c for c in self.loop.call(self.supervisor.status).children}
        child = children.get(key)
        clean = child is None or (
            child.state is ChildState.IDLE
            and not child.mailbox_depth
            and not child.background_tasks
        )
        if not clean:
            return
        work = Work(len(self.sent))
        self._send(key, work)  # no time passes: only runnable tasks run
        assert (key, work.id) in self.journal.handled

    def _outcomes(self) -> Counter[int]:
        outcomes: Counter[int] = Counter(i for _, i in self.journal.handled)
        outcomes.update(d.message.id for d in self.letters if isinstance(d.message, Work | Done))
        outcomes.update(self.journal.concluded_when_failed)
        outcomes.update(self.refused)
        return outcomes

    @invariant()
    def no_message_is_handled_twice_or_tried_more_than_twice(self) -> None:
        assert all(n <= 1 for n in self._outcomes().values())
        assert all(n <= 2 for n in self.journal.attempts.values())

    @invariant()
    def a_hung_child_is_cancelled_within_the_bound(self) -> None:
        for child in self.loop.call(self.supervisor.status).children:
            if child.current_message_age is not None:
                assert child.current_message_age <= 1.5 * STALL + STEP

    def teardown(self) -> None:
        try:
            # Long enough for every hang (two stalls), backoff and failed cooldown to play out.
            self.loop.advance(4 * STALL + 2 * CONFIG.restart.failed_cooldown)
            self._context.__exit__(None, None, None)
            outcomes: Counter[int] = self._outcomes()
            missing = set(self.sent) - set(outcomes)
            assert not missing, f"messages without an outcome: {sorted(missing)}"
        finally:
            self.loop.close()


TestSupervisorMachine = pytest.mark.timeout(machine_timeout())(SupervisorMachine.TestCase)
TestSupervisorMachine.settings = machine_settings(25)
