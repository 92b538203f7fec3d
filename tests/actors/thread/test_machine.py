"""Property test of thread actors with faulty ports: every ordering of messages (addressed to
the bot or not), commands (``/activation`` from admins and others too), Stop button presses
for current and old runs, run endings, exhaustion and recovery, in groups with either
activation, with per-user threads, with debounce and reactions on or off, with store writes
that fail, notices that fail or block, keepalives that raise, answers slow to deliver,
agents that crash, hang or fail after output, restart limits low enough that threads are
marked failed, and process restarts between any two steps. The promise holds after every
step and at quiescence.

The machine plays the gateway's part as ``gateway.telegram.delivery`` does: a message a
thread cannot take (failed, mailbox full) and a dead letter get a reply recorded as their
outcome; at a restart, inbox messages without a final outcome are delivered again, and
threads whose record holds some are resumed.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter, defaultdict
from functools import partial

import anyio
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actors import (
    ActorFailedError,
    ChildState,
    DeadLetter,
    DeadLetterReason,
    MailboxFullError,
    RestartPolicy,
    Supervisor,
    SupervisorConfig,
)
from actors.thread.actor import ThreadActor
from actors.thread.messages import Command, CredentialsAvailable, Resume, StopRun, UserMessage
from actors.thread.records import Outcome, ThreadKey
from actors.thread.settings import Activation, BusyPolicy, ThreadSettings
from gateway.telegram.siblings import ThreadSiblings
from tests.actors.clocked_loop import ClockedLoop
from tests.fakes.thread_ports import MemoryStore, RecordingOutbox, ScriptedAgent
from tests.strategies import (
    activation_args,
    agent_behaviours,
    machine_settings,
    machine_timeout,
    stop_targets,
    thread_activations,
    thread_commands,
    thread_debounces,
    thread_keys,
    thread_users,
    time_steps,
)

EYES = "👀"
ADMIN = 1

SUPERVISION = SupervisorConfig(
    stall_timeout=5.0,
    idle_ttl=20.0,
    drain_timeout=1.0,
    restart=RestartPolicy(
        max_restarts=2, within=10.0, backoff_initial=0.05, backoff_max=0.5, failed_cooldown=5.0
    ),
)


def _ids(user_turn: str) -> list[str]:
    """The message ids the fake agent wrote at the head of the user turn it remembered."""
    head = user_turn.partition("]")[0].removeprefix("[")
    return [i for i in head.split(",") if i]


class ThreadMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = ClockedLoop()
        self.store = MemoryStore()
        self.outbox = RecordingOutbox()
        self.agent = ScriptedAgent(chunk_delay=1.0, retry_after=10.0)
        self.sent: dict[int, tuple[ThreadKey, UserMessage | Command]] = {}
        self.epoch = 0
        self.restarts_before = 0  # thread restarts under earlier supervisors
        self.answered_in: dict[int, int] = {}  # stream index -> epoch it was finished in
        self.unconcluded_at_restart: set[int] = set()
        self.supervisor: Supervisor[ThreadKey] | None = None
        self.thread_settings = ThreadSettings()
        self.unaddressed: set[int] = set()  # user messages not addressed to the bot
        # An unaddressed message's conversation's activation when it was sent (None: unsure).
        # With how many saved switches there were then: a thread may take a message later
        # (a crash's retry, a replay), under a switch saved since.
        self.activation_when_sent: dict[int, tuple[Activation | None, int]] = {}
        self.activation_commands: list[tuple[ThreadKey, int]] = []  # conversation, message
        self.pressed: set[tuple[ThreadKey, int]] = set()  # Stop buttons pressed: key, run

    # -- the gateway's part ----------------------------------------------------------------

    @initialize(
        policy=st.sampled_from(BusyPolicy),
        activation=thread_activations,
        debounce=thread_debounces,
        reactions=st.booleans(),
    )
    def start(
        self,
        policy: BusyPolicy,
        activation: Activation = Activation.MENTION,
        debounce: float = 0.0,
        reactions: bool = False,
    ) -> None:
        self.thread_settings = ThreadSettings(
            activation=activation,
            debounce=debounce,
            reactions=reactions,
            busy_policy=policy,
            reset_commands=frozenset({"new", "reset", "cc"}),
            stall_timeout=5.0,
            run_timeout=30.0,
            default_retry_after=10.0,
            finalize_timeout=3.0,
            notice_timeout=2.0,
            failure_write_for=10.0,  # longer than the store is ever down here
            max_queued=4,
        )
        self._open()

    def _open(self) -> None:
        settings = self.thread_settings
        siblings = ThreadSiblings()  # for the per-user threads (user_id set in the key)
        self.supervisor = Supervisor(
            lambda key: ThreadActor(
                key,
                self.agent,
                self.outbox,
                self.store,
                settings,
                siblings=siblings if key.user_id is not None else None,
            ),
            SUPERVISION,
            on_dead_letter=self._dead_letter,
            rng=random.Random(0),  # the restart jitter: examples replay exactly
        )
        siblings.bind(self.supervisor)
        self._context = self.loop.portal.wrap_async_context_manager(self.supervisor)
        self._context.__enter__()

    def _dead_letter(self, letter: DeadLetter) -> None:
        message = letter.message
        if not isinstance(message, UserMessage | Command) or not isinstance(letter.key, ThreadKey):
            return  # reports and ticks: logged by the gateway
        if letter.reason is DeadLetterReason.SHUTDOWN:
            return  # replayed at the next start
        record = self.store.records.get(letter.key)
        if (record is not None and record.accepted(message.message_id)) or self._finals()[
            message.message_id
        ]:
            return  # its thread concludes it (or did)
        self._refuse(letter.key, message.message_id)

    def _refuse(self, key: ThreadKey, message_id: int) -> None:
        """The gateway's refusal: a reply, recorded as the message's outcome."""
        self.store.outcomes.append((key, message_id, Outcome.ERROR_REPLIED, "refused"))

    def _deliver(self, key: ThreadKey, message: UserMessage | Command | Resume) -> None:
        assert self.supervisor is not None
        ref = self.supervisor.ref_for(key)
        try:
            self.loop.call(partial(ref.send_nowait, message, control=isinstance(message, Resume)))
        except (ActorFailedError, MailboxFullError):
            if not isinstance(message, Resume):
                self._refuse(key, message.message_id)

    def _send(self, key: ThreadKey, message: UserMessage | Command) -> None:
        self.sent[message.message_id] = (key, message)
        self._deliver(key, message)

    @rule(
        key=thread_keys,
        behaviour=agent_behaviours,
        user=thread_users,
        addressed=st.sampled_from([True, True, False]),
    )
    def user_message(
        self, key: ThreadKey, behaviour: str, user: int = ADMIN, addressed: bool = True
    ) -> None:
        message_id = len(self.sent) + 1
        text = f"m{message_id} {behaviour}".strip()
        if not addressed:
            self.unaddressed.add(message_id)
            self.activation_when_sent[message_id] = (
                self._activation_now(key.conversation),
                len(self.store.activation_log),
            )
        self._send(key, UserMessage(message_id, text, user, addressed=addressed))

    def _activation_now(self, conversation: ThreadKey) -> Activation | None:
        """The conversation's activation as saved, or ``None`` while an ``/activation`` sent
        to it has no final outcome yet (it may be switching as we speak)."""
        finals = self._finals()
        if any(c == conversation and not finals[m] for c, m in self.activation_commands):
            return None
        saved = [a for c, a in self.store.activation_log if c == conversation]
        return saved[-1] if saved else self.thread_settings.activation

    @rule(key=thread_keys, name=thread_commands, with_input=st.booleans(), user=thread_users)
    def command(self, key: ThreadKey, name: str, with_input: bool, user: int = ADMIN) -> None:
        message_id = len(self.sent) + 1
        args = f"m{message_id}" if with_input else ""
        self._send(key, Command(name, args, message_id, user, admin=user == ADMIN))

    @rule(key=thread_keys, args=activation_args, user=thread_users)
    def activation(self, key: ThreadKey, args: str, user: int) -> None:
        message_id = len(self.sent) + 1
        self.activation_commands.append((key.conversation, message_id))
        self._send(key, Command("activation", args, message_id, user, admin=user == ADMIN))

    @rule(key=thread_keys, user=thread_users)
    def a_long_answer_and_its_stop_button(self, key: ThreadKey, user: int) -> None:
        """Most answers end before anyone presses Stop: this one is pressed while it runs
        (or, if the thread is busy, the answer it waits behind is)."""
        self.user_message(key, "#slow:12", user, True)
        self.stop_button(key, "newest", user)

    @rule()
    def a_switch_in_one_members_thread_reaches_the_others(self) -> None:
        """Per-user threads of one group: the admin switches it to answer everything, then
        back, in their own thread; the other member's thread (live meanwhile) must follow."""
        admins, members = ThreadKey(-200, None, ADMIN), ThreadKey(-200, None, 2)
        self.activation(admins, "always", ADMIN)
        self.user_message(members, "", 2, True)
        self.activation(admins, "mention", ADMIN)
        self.user_message(members, "", 2, False)

    @rule(key=thread_keys, user=thread_users)
    def an_old_stop_button_while_a_later_answer_runs(self, key: ThreadKey, user: int) -> None:
        """The press a thread must not mistake for a stop of what runs now: the button under
        an answer that ended, pressed while a later one streams."""
        self.user_message(key, "", user, True)
        self.user_message(key, "#slow:12", user, True)
        self.stop_button(key, "older", user)

    @rule(key=thread_keys, which=stop_targets, user=thread_users)
    def stop_button(self, key: ThreadKey, which: str, user: int) -> None:
        """A press of the Stop button under one of the thread's answers (the callback
        handler asks; its answer only says which reply the press gets)."""
        assert self.supervisor is not None
        runs = [s.run_id for s in self.outbox.streams if s.key == key and s.run_id is not None]
        run_id = 10**6  # a run that never was
        if runs and which != "never":
            run_id = max(runs) if which == "newest" else min(runs)
        self.pressed.add((key, run_id))
        ref = self.supervisor.ref_for(key)
        with contextlib.suppress(ActorFailedError, MailboxFullError):  # answered by the handler
            self.loop.call(partial(ref.send_nowait, StopRun(run_id, user), control=True))

    @rule()
    def the_process_restarts(self) -> None:
        """A graceful stop (drain, then cancel), a new supervisor, and the start-up replay."""
        self.loop.exit(self._context)
        assert self.supervisor is not None
        self.restarts_before += self.supervisor.statistics().restarts
        self._tag_answers()
        finals = self._finals()
        self.unconcluded_at_restart |= {m for m in self._answers() if not finals[m]}
        self.epoch += 1
        self._open()
        finals = self._finals()
        resumed: set[ThreadKey] = set()
        for message_id, (key, message) in sorted(self.sent.items()):
            if finals[message_id]:
                continue
            record = self.store.records.get(key)
            held = {p.message_id for p in (*record.in_flight, *record.queued)} if record else ()
            if message_id in held:
                resumed.add(key)
            else:
                self._deliver(key, message)
        for key in resumed:
            self._deliver(key, Resume())

    # -- the world's faults ----------------------------------------------------------------

    @rule()
    def the_last_key_runs_dry(self) -> None:
        self.agent.exhausted = True

    @rule()
    def keys_are_usable_again(self) -> None:
        assert self.supervisor is not None
        self.agent.exhausted = False
        self.loop.call(partial(self.supervisor.broadcast, CredentialsAvailable(), control=True))

    @rule(writes=st.integers(1, 3))
    def the_next_store_writes_fail(self, writes: int) -> None:
        self.store.fail_saves = writes

    @rule(seconds=st.sampled_from([0.5, 2.0, 5.0]))
    def the_store_is_down_for(self, seconds: float) -> None:
        self.store.down_until = self.loop.call(anyio.current_time) + seconds

    @rule()
    def the_next_write_lands_then_fails(self) -> None:
        self.store.fail_after_saves = 1

    @rule()
    def the_next_load_fails(self) -> None:
        self.store.fail_loads = 1

    @rule(notices=st.integers(1, 3))
    def the_next_notices_fail(self, notices: int) -> None:
        self.outbox.fail_notices = notices

    @rule()
    def notices_block_or_flow_again(self) -> None:
        self.outbox.block_notices = not self.outbox.block_notices

    @rule()
    def keepalives_fail_or_work_again(self) -> None:
        self.outbox.fail_keepalives = not self.outbox.fail_keepalives

    @rule(delay=st.sampled_from([0.0, 0.5, 2.0]))
    def delivering_an_answer_takes(self, delay: float) -> None:
        self.outbox.finish_delay = delay

    @rule(seconds=time_steps)
    def time_passes(self, seconds: float) -> None:
        self.loop.advance(seconds)

    # -- what must hold --------------------------------------------------------------------

    def _finals(self) -> Counter[int]:
        return Counter(m for _, m, o, _ in self.store.outcomes if o.final)

    def _tag_answers(self) -> None:
        for index, stream in enumerate(self.outbox.streams):
            if stream.state == "finished":
                self.answered_in.setdefault(index, self.epoch)

    def _answers(self) -> Counter[int]:
        """Messages shown a complete answer, counted per answer. Each run opens its stream,
        then calls the agent at once: stream ``i`` answers request ``i``."""
        requests = self.agent.requests
        return Counter(
            m
            for i, stream in enumerate(self.outbox.streams)
            if stream.state == "finished"
            for m in requests[i].message_ids
        )

    def _unknown(self) -> set[int]:
        """Messages whose delivered answer may not have been recorded (the documented
        window): a restart came before the record, or the store refused to write it on the
        first try and failed the retry too (refused the write again, or the load of the
        incarnation that would retry it: found by ``make fuzz``, a store down for loads as
        well)."""
        refused_twice: set[int] = set()  # the first try and its retry (a write or a load)
        pending: dict[ThreadKey, set[int]] = {}
        for event, key, answered in self.store.journal:
            if event == "saved":
                pending.pop(key, None)
                continue
            refused_twice |= pending.get(key, set())
            if answered:
                pending.setdefault(key, set()).update(answered)
        return self.unconcluded_at_restart | refused_twice

    @invariant()
    def at_most_one_final_outcome_and_nothing_after_it(self) -> None:
        assert all(n <= 1 for n in self._finals().values()), self._finals()
        final: set[int] = set()
        for _, message_id, outcome, _ in self.store.outcomes:
            assert message_id not in final, f"an outcome after the final one: {message_id}"
            if outcome.final:
                final.add(message_id)

    @invariant()
    def at_most_one_answer_each_but_across_a_restart_that_lost_its_record(self) -> None:
        self._tag_answers()
        for message_id, count in self._answers().items():
            assert count == 1 or message_id in self._unknown(), message_id

    @invariant()
    def an_answer_shown_complete_is_answered(self) -> None:
        for message_id in self._answers():
            key = self.sent[message_id][0]
            finals = [o for o in self.store.outcome_of(key, message_id) if o.final]
            if message_id not in self._unknown():
                assert finals in ([], [Outcome.ANSWERED]), (message_id, finals)

    @invariant()
    def no_input_reaches_the_agent_twice_in_one_turn(self) -> None:
        for request in self.agent.requests:
            ids = request.message_ids
            assert len(ids) == len(set(ids)), request

    @invariant()
    def a_session_history_holds_each_answered_turn_once_and_nothing_else(self) -> None:
        for session, turns in self.store.histories.items():
            ids = [int(i) for t in turns if t.role == "user" for i in _ids(t.content)]
            assert len(ids) == len(set(ids)), f"a turn twice in {session}: {turns}"
            for message_id in ids:
                if message_id in self._unknown():
                    continue
                key = self.sent[message_id][0]
                finals = [o for o in self.store.outcome_of(key, message_id) if o.final]
                assert finals == [Outcome.ANSWERED], (message_id, finals, turns)

    @invariant()
    def only_a_failing_store_crashes_a_thread(self) -> None:
        """Notices, keepalives, slow deliveries and agents never crash a thread; each store
        failure crashes at most the one handler that met it."""
        assert self.supervisor is not None
        restarts = self.restarts_before + self.loop.call(self.supervisor.statistics).restarts
        assert restarts <= self.store.failures, (restarts, self.store.failures)

    def _reactions(self) -> dict[int, list[str | None]]:
        """The reactions of each message, in order: 👀 set, ``None`` cleared."""
        events: dict[int, list[str | None]] = defaultdict(list)
        for _, message_id, emoji in self.outbox.reactions:
            events[message_id].append(emoji)
        return events

    @invariant()
    def every_eyes_reaction_is_cleared_once_after_its_final_outcome(self) -> None:
        """A clearing may come twice, or without a 👀, only where a write failed: see
        ``actors.thread.reactions`` (a write that raised may have landed)."""
        finals, faults = self._finals(), self.store.failures
        for message_id, events in self._reactions().items():
            assert self.thread_settings.reactions, "reactions are off"
            cleared = events.index(None) if None in events else len(events)
            assert all(e is None for e in events[cleared:]), ("👀 after clearing", events)
            assert events.count(None) <= 1 or faults, (message_id, events)
            assert EYES in events or faults, ("cleared, never set", message_id, events)
            if events[-1] == EYES:
                assert not finals[message_id], ("👀 left on a concluded message", message_id)
            elif not faults:
                assert finals[message_id], ("cleared before its final outcome", message_id)

    def _could_answer_every_message(self, conversation: ThreadKey) -> bool:
        return self.thread_settings.activation is Activation.ALWAYS or any(
            c == conversation and a is Activation.ALWAYS for c, a in self.store.activation_log
        )

    @invariant()
    def only_a_group_answering_every_message_answers_the_unaddressed(self) -> None:
        for key, message_id, outcome, _ in self.store.outcomes:
            if outcome is Outcome.NOT_ADDRESSED:
                assert message_id in self.unaddressed, message_id
                assert key.chat_id < 0, "private chats always answer"
        for request in self.agent.requests:
            if self.unaddressed.intersection(request.message_ids) and request.key.chat_id < 0:
                assert self._could_answer_every_message(request.key.conversation), request
                for message_id in self.unaddressed.intersection(request.message_ids):
                    # Sent while the conversation answered only when addressed, switched back
                    # or never switched: a thread that missed a switch answers it.
                    when, saved = self.activation_when_sent[message_id]
                    later = self.store.activation_log[saved:]
                    switched = any(
                        c == request.key.conversation and a is Activation.ALWAYS for c, a in later
                    )
                    assert when is not Activation.MENTION or switched, (
                        "answered unaddressed",
                        message_id,
                    )

    @invariant()
    def the_stop_button_stops_only_the_run_it_was_under(self) -> None:
        requests = self.agent.requests
        under = {
            message_id
            for index, stream in enumerate(self.outbox.streams)
            if (stream.key, stream.run_id) in self.pressed and index < len(requests)
            for message_id in requests[index].message_ids
        }
        for _, message_id, outcome, detail in self.store.outcomes:
            if detail == "stop button":
                assert outcome is Outcome.STOPPED
                assert message_id in under, ("stopped, but not under a pressed button", message_id)

    @invariant()
    def at_most_one_run_per_thread(self) -> None:
        assert all(n <= 1 for n in self.agent.max_active.values())

    @invariant()
    def generations_only_grow(self) -> None:
        for history in self.store.generations.values():
            assert history == sorted(history)

    def teardown(self) -> None:
        try:
            if self.supervisor is None:
                return
            self.store.fail_saves = self.store.fail_loads = self.store.fail_after_saves = 0
            self.outbox.fail_notices = 0
            self.outbox.block_notices = self.outbox.fail_keepalives = False
            self.keys_are_usable_again()
            self.loop.advance(120.0, step=0.5)  # every run ends, every cooldown passes
            self.keys_are_usable_again()
            self.loop.advance(60.0, step=0.5)
            self._quiescent()
            self.loop.exit(self._context)
        finally:
            self.loop.close()

    def _quiescent(self) -> None:
        assert self.supervisor is not None
        for child in self.loop.call(self.supervisor.status).children:
            phase = dict(child.detail).get("phase", "idle")
            assert child.state in (ChildState.IDLE, ChildState.FAILED), child
            assert (phase, child.mailbox_depth) == ("idle", 0), child
        for key, record in self.store.records.items():
            held = (record.in_flight, record.queued, record.parked)
            assert held == ((), (), False), f"{key} ends silent, holding {held}"
        finals = self._finals()
        missing = sorted(m for m in self.sent if not finals[m])
        assert not missing, f"messages without a final outcome: {missing}"
        for message_id, events in self._reactions().items():
            assert events[-1] is None, ("👀 never cleared", message_id, events)
        assert not self.agent.active or not any(self.agent.active.values())
        for message_id in self._answers():
            if message_id not in self._unknown():
                key = self.sent[message_id][0]
                finals_of = [o for o in self.store.outcome_of(key, message_id) if o.final]
                assert finals_of == [Outcome.ANSWERED], (message_id, finals_of)


TestThreadMachine = pytest.mark.timeout(machine_timeout())(ThreadMachine.TestCase)
TestThreadMachine.settings = machine_settings(30, share=2.0)
