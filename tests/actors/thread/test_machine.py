"""Property test of thread actors: every ordering of messages, commands, run endings,
exhaustion, recovery, crashes and passivation keeps the thread alive and accountable."""

from __future__ import annotations

from collections import Counter
from functools import partial

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actors import ActorFailedError, DeadLetter, RestartPolicy, Supervisor, SupervisorConfig
from actors.thread.actor import ThreadActor
from actors.thread.messages import Command, CredentialsAvailable, StatusQuery, UserMessage
from actors.thread.records import Outcome, ThreadKey, ThreadPhase, ThreadStatus
from actors.thread.settings import BusyPolicy, ThreadSettings
from tests.actors.clocked_loop import ClockedLoop
from tests.fakes.thread_ports import MemoryStore, RecordingOutbox, ScriptedAgent
from tests.strategies import (
    agent_behaviours,
    machine_settings,
    thread_commands,
    thread_keys,
    time_steps,
)

SUPERVISION = SupervisorConfig(
    stall_timeout=5.0,
    idle_ttl=20.0,
    drain_timeout=1.0,
    restart=RestartPolicy(max_restarts=1000, backoff_initial=0.05, backoff_max=0.5),
)


class ThreadMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = ClockedLoop()
        self.store = MemoryStore()
        self.outbox = RecordingOutbox()
        self.agent = ScriptedAgent(chunk_delay=1.0, retry_after=10.0)
        self.letters: list[DeadLetter] = []
        self.sent: dict[int, ThreadKey] = {}
        self.refused: set[int] = set()
        self.crashes = 0
        self.supervisor: Supervisor[ThreadKey] | None = None

    @initialize(policy=st.sampled_from(BusyPolicy))
    def start(self, policy: BusyPolicy) -> None:
        thread_settings = ThreadSettings(
            busy_policy=policy,
            reset_commands=frozenset({"new", "reset", "cc"}),
            stall_timeout=5.0,
            run_timeout=30.0,
            default_retry_after=10.0,
        )
        self.supervisor = Supervisor(
            lambda key: ThreadActor(key, self.agent, self.outbox, self.store, thread_settings),
            SUPERVISION,
            on_dead_letter=self.letters.append,
        )
        self._context = self.loop.portal.wrap_async_context_manager(self.supervisor)
        self._context.__enter__()

    def _send(self, key: ThreadKey, message: UserMessage | Command) -> None:
        assert self.supervisor is not None
        self.sent[message.message_id] = key
        try:
            self.loop.call(self.supervisor.ref_for(key).send_nowait, message)
        except ActorFailedError:
            self.refused.add(message.message_id)

    @rule(key=thread_keys, behaviour=agent_behaviours)
    def user_message(self, key: ThreadKey, behaviour: str) -> None:
        message_id = len(self.sent) + 1
        self._send(key, UserMessage(message_id, f"m{message_id} {behaviour}".strip()))

    @rule(key=thread_keys, name=thread_commands, with_input=st.booleans())
    def command(self, key: ThreadKey, name: str, with_input: bool) -> None:
        message_id = len(self.sent) + 1
        self._send(key, Command(name, f"m{message_id}" if with_input else "", message_id))

    @rule()
    def the_last_key_runs_dry(self) -> None:
        self.agent.exhausted = True

    @rule()
    def keys_are_usable_again(self) -> None:
        assert self.supervisor is not None
        self.agent.exhausted = False
        self.loop.call(partial(self.supervisor.broadcast, CredentialsAvailable(), control=True))

    @rule()
    def the_next_save_crashes_its_actor(self) -> None:
        self.store.fail_saves = 1
        self.crashes += 1

    @rule(seconds=time_steps)
    def time_passes(self, seconds: float) -> None:
        self.loop.advance(seconds)

    @invariant()
    def at_most_one_run_per_thread(self) -> None:
        assert all(n <= 1 for n in self.agent.max_active.values())

    @invariant()
    def at_most_one_final_outcome_and_parked_only_before_it(self) -> None:
        assert all(n <= 1 for n in self._finals().values())
        seen_final: set[tuple[ThreadKey, int]] = set()
        for key, message_id, outcome, _ in self.store.outcomes:
            assert (key, message_id) not in seen_final, "nothing follows a final outcome"
            if outcome.final:
                seen_final.add((key, message_id))

    @invariant()
    def a_run_in_the_agent_is_the_run_its_thread_knows_of(self) -> None:
        for key, active in self.agent.active.items():
            if active:
                assert self._status(key).phase is ThreadPhase.RUNNING, "an orphan run"

    @invariant()
    def every_delivered_answer_is_recorded_as_answered(self) -> None:
        # A crash between delivering an answer and recording it makes the next incarnation
        # answer again (the outcome was unknown): then this holds only once all has settled.
        if not self.crashes:
            self._delivered_answers_are_recorded()

    def _delivered_answers_are_recorded(self) -> None:
        # After crashes, a delivered answer may have been followed by a crash before it was
        # recorded: the thread retried, and may have ended with another final outcome.
        wanted = {Outcome.ANSWERED} if not self.crashes else {o for o in Outcome if o.final}
        recorded = {(k, m) for k, m, o, _ in self.store.outcomes if o in wanted}
        for stream in self.outbox.streams:
            if stream.state == "finished":
                assert (stream.key, stream.reply_to) in recorded

    def _status(self, key: ThreadKey) -> ThreadStatus:
        assert self.supervisor is not None
        ref = self.supervisor.ref_for(key)
        status = self.loop.call_async(partial(ref.ask, StatusQuery(), timeout=5.0, control=True))
        assert isinstance(status, ThreadStatus)
        return status

    @invariant()
    def generations_only_grow(self) -> None:
        for history in self.store.generations.values():
            assert history == sorted(history)

    def _finals(self) -> Counter[int]:
        finals = Counter(m for _, m, o, _ in self.store.outcomes if o is not Outcome.PARKED)
        finals.update(
            d.message.message_id
            for d in self.letters
            if isinstance(d.message, UserMessage | Command)
        )
        finals.update(self.refused)
        return finals

    def teardown(self) -> None:
        try:
            if self.supervisor is None:
                return
            self.store.fail_saves = 0
            self.keys_are_usable_again()
            self.loop.advance(120.0, step=0.5)  # every run ends: answer, stall or timeout
            for key in set(self.sent.values()):
                status = self._status(key)
                assert (status.phase, status.queued) == (ThreadPhase.IDLE, 0), status
            self._delivered_answers_are_recorded()
            missing = set(self.sent) - set(self._finals())
            assert not missing, f"messages without a final outcome: {sorted(missing)}"
            self._context.__exit__(None, None, None)
        finally:
            self.loop.close()


TestThreadMachine = ThreadMachine.TestCase
TestThreadMachine.settings = machine_settings(30)
