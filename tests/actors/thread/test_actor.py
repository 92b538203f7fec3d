from __future__ import annotations

import anyio
import pytest

from actors import SupervisorConfig
from actors.thread import texts
from actors.thread.messages import CredentialsAvailable, Resume
from actors.thread.records import MediaKind, MediaRef, Outcome, ThreadKey, ThreadPhase
from actors.thread.settings import BusyPolicy, ThreadSettings
from tests.actors.thread.harness import open_threads
from tests.fakes.thread_ports import ScriptedAgent

pytestmark = pytest.mark.anyio

DM = ThreadKey(42)


def fresh(**changes: object) -> ScriptedAgent:
    return ScriptedAgent(**{"chunk_delay": 0.2, **changes})  # type: ignore[arg-type]


async def test_a_message_queued_behind_an_answer_that_is_nearly_done_gets_no_notice() -> None:
    async with open_threads(agent=fresh()) as threads:
        await threads.say(DM, "first #slow:3")  # 0.4 s: less than queue_notice_delay
        second = await threads.say(DM, "second")
        await threads.wait_idle(DM)
        await anyio.sleep(ThreadSettings().queue_notice_delay)  # the notice timer has fired
        assert [r.inputs for r in threads.agent.requests] == [("first #slow:3",), ("second",)]
        assert threads.outbox.texts(DM) == [], "no notice: the answer came before it was due"
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]


async def test_message_is_answered_by_a_streamed_run() -> None:
    async with open_threads() as threads:
        message = await threads.say(DM, "hi")
        await threads.wait_idle(DM)
        [stream] = threads.outbox.streams
        assert (stream.state, stream.reply_to, stream.text) == (
            "finished",
            message,
            "[0] answer to hi",
        )
        assert threads.store.outcome_of(DM, message) == [Outcome.ANSWERED]
        assert threads.outbox.texts(DM) == []


async def test_messages_during_a_run_are_queued_acknowledged_once_and_answered_together() -> None:
    async with open_threads(agent=fresh()) as threads:
        first = await threads.say(DM, "first #slow:10")
        second = await threads.say(DM, "second")
        third = await threads.say(DM, "third")
        assert (await threads.status(DM)).queued == 2
        await threads.wait_idle(DM)
        assert [r.inputs for r in threads.agent.requests] == [
            ("first #slow:10",),
            ("second", "third"),
        ]
        notices = threads.outbox.texts(DM)
        assert notices == ["⏳ Still working on the previous message; I'll answer this next."]
        assert threads.outbox.notices[0][2] == second, "it answers the first queued message"
        for message in (first, second, third):
            assert threads.store.outcome_of(DM, message) == [Outcome.ANSWERED]


async def test_interrupt_policy_cancels_the_run_and_starts_over_with_everything() -> None:
    settings = ThreadSettings(busy_policy=BusyPolicy.INTERRUPT, stall_timeout=5)
    async with open_threads(settings, agent=fresh()) as threads:
        first = await threads.say(DM, "first #slow:5")
        await anyio.sleep(0.3)
        second = await threads.say(DM, "second")
        await threads.wait_idle(DM)
        assert [r.inputs for r in threads.agent.requests][-1] == ("first #slow:5", "second")
        assert [s.state for s in threads.outbox.streams] == ["aborted", "finished"]
        assert threads.store.outcome_of(DM, first) == [Outcome.ANSWERED]
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]
        assert threads.agent.max_active[DM] == 1


async def test_stop_cancels_the_run_and_drops_the_queue() -> None:
    async with open_threads(agent=fresh()) as threads:
        first = await threads.say(DM, "long #slow:50")
        queued = await threads.say(DM, "later")
        stop = await threads.command(DM, "stop")
        status = await threads.status(DM)
        assert (status.phase, status.queued) == (ThreadPhase.IDLE, 0)
        # The message being answered is not counted as a dropped queued one.
        assert threads.outbox.texts(DM)[-1] == "⏹ Stopped the answer; 1 queued message dropped."
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED]
        assert threads.store.outcome_of(DM, queued) == [Outcome.STOPPED]
        assert threads.store.outcome_of(DM, stop) == [Outcome.ANSWERED]
        after = await threads.say(DM, "again")
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, after) == [Outcome.ANSWERED]
        await threads.command(DM, "stop")
        assert threads.outbox.texts(DM)[-1] == "Nothing to stop."
        await threads.say(DM, "alone #slow:50")
        await threads.command(DM, "stop")
        assert threads.outbox.texts(DM)[-1] == "⏹ Stopped the answer."


async def test_reset_mid_run_starts_a_new_session_and_discards_with_one_notice() -> None:
    async with open_threads(agent=fresh()) as threads:
        await threads.say(DM, "one #slow:50")
        await threads.say(DM, "two")
        await threads.say(DM, "three")
        before = await threads.status(DM)
        await threads.command(DM, "new")
        after = await threads.status(DM)
        assert after.generation == before.generation + 1
        assert after.session_id != before.session_id
        assert (after.phase, after.queued) == (ThreadPhase.IDLE, 0)
        assert threads.outbox.texts(DM)[-1] == (
            "🆕 New session started. 3 earlier messages discarded unanswered."
        )
        fresh_message = await threads.say(DM, "hello")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].session_id == after.session_id
        assert threads.store.outcome_of(DM, fresh_message) == [Outcome.ANSWERED]
        discarded = [o for _, _, o, _ in threads.store.outcomes if o is Outcome.DISCARDED_BY_RESET]
        assert len(discarded) == 3


async def test_reset_skill_with_input_starts_the_new_session_with_it() -> None:
    settings = ThreadSettings(reset_commands=frozenset({"new", "cc"}))
    async with open_threads(settings) as threads:
        message = await threads.command(DM, "cc", "review the code")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].inputs == ("review the code",)
        assert threads.agent.requests[-1].generation == 1
        assert threads.store.outcome_of(DM, message) == [Outcome.ANSWERED]


async def test_exhausted_credentials_park_with_a_notice_until_keys_are_back() -> None:
    async with open_threads(agent=fresh(exhausted=True, retry_after=1800)) as threads:
        message = await threads.say(DM, "hi")
        status = await threads.status(DM)
        assert status.phase is ThreadPhase.PARKED
        assert threads.outbox.texts(DM) == [
            "🔑 All API keys are used up right now. Your message is saved and will be answered "
            "automatically when a key is back, expected in about 30 minutes."
        ]
        assert threads.store.outcome_of(DM, message) == [Outcome.PARKED]
        threads.agent.exhausted = False
        threads.supervisor.broadcast(CredentialsAvailable(), control=True)
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, message) == [Outcome.PARKED, Outcome.ANSWERED]
        assert len(threads.outbox.texts(DM)) == 1, "told once"


async def test_credentials_available_wakes_the_parked_thread_and_no_other() -> None:
    """Issue 17, item 12: the broadcast started a task for every live thread."""
    async with open_threads(agent=fresh(chunk_delay=0.01)) as threads:
        others = [ThreadKey(1000 + i) for i in range(40)]
        for key in others:
            await threads.say(key, "hi")
        await threads.wait_idle(*others)
        threads.agent.exhausted = True
        message = await threads.say(DM, "hi")
        assert (await threads.status(DM)).phase is ThreadPhase.PARKED
        threads.agent.exhausted = False
        await anyio.wait_all_tasks_blocked()
        before = len(anyio.get_running_tasks())
        assert threads.supervisor.broadcast(CredentialsAvailable(), control=True) == 1
        assert len(anyio.get_running_tasks()) == before + 1, "the parked thread's activation"
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, message) == [Outcome.PARKED, Outcome.ANSWERED]
        assert len(threads.agent.requests) == len(others) + 2, "no other thread ran again"


async def test_parked_thread_retries_on_its_own_timer_and_tells_users_once() -> None:
    async with open_threads(agent=fresh(exhausted=True, retry_after=0.5)) as threads:
        message = await threads.say(DM, "hi")
        await anyio.sleep(1.2)  # two retries, both still exhausted
        assert len(threads.agent.requests) >= 2
        threads.agent.exhausted = False
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, message) == [Outcome.PARKED, Outcome.ANSWERED]
        assert len(threads.outbox.texts(DM)) == 1


@pytest.mark.parametrize("keys_back", [True, False])
async def test_a_thread_parked_when_the_gateway_stopped_tries_again_at_start(
    keys_back: bool,
) -> None:
    agent = fresh(exhausted=True, retry_after=1800)
    async with open_threads(agent=agent) as threads:
        message = await threads.say(DM, "hi")
        assert (await threads.status(DM)).phase is ThreadPhase.PARKED
        store = threads.store
    agent.exhausted = not keys_back
    async with open_threads(agent=agent, store=store) as threads:  # the gateway restarted
        await threads.supervisor.ref_for(DM).send(Resume(), control=True)  # as its replay does
        await anyio.wait_all_tasks_blocked()
        if keys_back:
            await threads.wait_idle(DM)
            assert store.outcome_of(DM, message) == [Outcome.PARKED, Outcome.ANSWERED]
        else:
            assert (await threads.status(DM)).phase is ThreadPhase.PARKED
            assert store.outcome_of(DM, message) == [Outcome.PARKED]
            assert threads.outbox.texts(DM) == [], "the user was told before the restart"
        assert len(agent.requests) == 2


async def test_stalled_run_is_cancelled_with_a_reply_and_the_queue_drains() -> None:
    async with open_threads(ThreadSettings(stall_timeout=0.5, run_timeout=30)) as threads:
        stuck = await threads.say(DM, "#hang")
        queued = await threads.say(DM, "next")
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, stuck) == [Outcome.ERROR_REPLIED]
        assert "stopped responding (no output for 0s)" in threads.outbox.texts(DM)[-1]
        assert threads.store.outcome_of(DM, queued) == [Outcome.ANSWERED]


async def test_a_run_that_stops_making_progress_is_cancelled_within_one_and_a_half_stalls() -> None:
    stall = 2.0
    async with open_threads(ThreadSettings(stall_timeout=stall, run_timeout=60)) as threads:
        start = anyio.current_time()
        stuck = await threads.say(DM, "#stuck")  # one chunk at once, then nothing
        await threads.wait_idle(DM)
        took = anyio.current_time() - start
        assert threads.store.outcome_of(DM, stuck) == [Outcome.ERROR_REPLIED]
        assert "stopped responding" in threads.outbox.texts(DM)[-1]
        assert [s.state for s in threads.outbox.streams] == ["aborted"]
        assert stall <= took <= 1.5 * stall + 0.2  # wait_idle polls every 0.05 s


async def test_run_longer_than_run_timeout_is_cancelled_even_with_heartbeats() -> None:
    settings = ThreadSettings(stall_timeout=0.5, run_timeout=1.0)
    async with open_threads(settings, agent=fresh(chunk_delay=0.1)) as threads:
        message = await threads.say(DM, "#silent")
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, message) == [Outcome.ERROR_REPLIED]
        assert "took too long (longer than 1s)" in threads.outbox.texts(DM)[-1]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            "#fail",
            "⚠️ The model provider is unavailable (HTTP 500 after 3 attempts). Try again later.",
        ),
        ("#bad", "⚠️ The model provider refused the request (HTTP 400: context too long)."),
        ("#bug", "⚠️ Something went wrong (internal error (RuntimeError)). Try again or /new."),
    ],
)
async def test_provider_errors_get_a_clear_reply(text: str, reply: str) -> None:
    async with open_threads() as threads:
        message = await threads.say(DM, text)
        await threads.wait_idle(DM)
        assert threads.outbox.texts(DM) == [reply]
        assert threads.store.outcome_of(DM, message) == [Outcome.ERROR_REPLIED]
        assert [s.state for s in threads.outbox.streams] == ["aborted"]


async def test_actor_crash_mid_run_retries_the_interrupted_input() -> None:
    config = SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=1)
    async with open_threads(config=config, agent=fresh()) as threads:
        first = await threads.say(DM, "first #slow:3")
        threads.store.fail_saves = 1  # the next save crashes the actor
        second = await threads.say(DM, "second")
        await threads.wait_idle(DM)
        assert threads.supervisor.statistics().restarts == 1
        assert "interrupted by a restart" in threads.outbox.texts(DM)[0]
        assert threads.store.final_outcomes()[(DM, first)] == 1
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]
        assert threads.agent.max_active[DM] == 1


async def test_status_help_and_retry_commands() -> None:
    async with open_threads() as threads:
        await threads.command(DM, "retry")
        assert threads.outbox.texts(DM)[-1] == "Nothing to retry yet."
        await threads.say(DM, "question")
        await threads.wait_idle(DM)
        await threads.command(DM, "status")
        assert threads.outbox.texts(DM)[-1].startswith("Thread 42: idle, 0 messages queued")
        await threads.command(DM, "help")
        assert "/new" in threads.outbox.texts(DM)[-1]
        assert "/status all" in threads.outbox.texts(DM)[-1]
        assert "/cc" not in threads.outbox.texts(DM)[-1], "no reset skill is configured"
        retry = await threads.command(DM, "retry")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].inputs == ("question",)
        assert threads.store.outcome_of(DM, retry) == [Outcome.ANSWERED]


async def test_retry_sends_the_last_turns_files_again() -> None:
    photo = MediaRef(MediaKind.IMAGE, "file-1", size=1234, mime_type="image/jpeg")
    async with open_threads() as threads:
        await threads.say(DM, "what is this?", media=(photo,))
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].media == ((photo,),)
        retry = await threads.command(DM, "retry")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].inputs == ("what is this?",)
        assert threads.agent.requests[-1].media == ((photo,),), "the photo, not the text only"
        assert threads.store.outcome_of(DM, retry) == [Outcome.ANSWERED]
        assert threads.store.records[DM].last_media == (photo,), "kept for a retry after a restart"


async def test_help_lists_the_configured_reset_skills() -> None:
    settings = ThreadSettings(reset_commands=frozenset({"new", "reset", "cc", "fresh"}))
    async with open_threads(settings) as threads:
        await threads.command(DM, "help")
        [help_text] = threads.outbox.texts(DM)
        assert "/cc, /fresh: start a new session" in help_text
        assert "/status all: every thread and API key (gateway admins only)" in help_text


async def test_stop_reply_names_what_was_cut_off_and_what_was_queued() -> None:
    assert texts.stopped(answering=False, queued=2) == "⏹ 2 queued messages dropped."
    assert texts.stopped(answering=True, queued=0) == "⏹ Stopped the answer."


async def test_unknown_command_goes_to_the_agent() -> None:
    async with open_threads() as threads:
        await threads.command(DM, "summarize", "the chat")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].inputs == ("/summarize the chat",)


async def test_passivated_thread_comes_back_with_its_session() -> None:
    config = SupervisorConfig(idle_ttl=0.5, stall_timeout=5, drain_timeout=1)
    async with open_threads(config=config) as threads:
        await threads.say(DM, "one")
        await threads.wait_idle(DM)
        session = (await threads.status(DM)).session_id
        await anyio.sleep(1.0)
        assert DM not in threads.supervisor
        await threads.say(DM, "two")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].session_id == session


async def test_queue_is_bounded_with_an_explicit_reply() -> None:
    settings = ThreadSettings(max_queued=1, stall_timeout=5)
    async with open_threads(settings, agent=fresh()) as threads:
        await threads.say(DM, "long #slow:50")
        await threads.say(DM, "queued")
        refused = await threads.say(DM, "one too many")
        assert threads.store.outcome_of(DM, refused) == [Outcome.ERROR_REPLIED]
        assert "1 message already waiting" in threads.outbox.texts(DM)[-1]
        await threads.command(DM, "stop")


async def test_model_command_switches_the_session_model_when_allowed() -> None:
    settings = ThreadSettings(allowed_models=("small", "large"))
    async with open_threads(settings) as threads:
        await threads.command(DM, "model", "huge")
        assert threads.outbox.texts(DM)[-1] == "huge is not allowed. Allowed: small, large."
        await threads.command(DM, "model", "large")
        await threads.say(DM, "hi")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].model == "large"
        await threads.command(DM, "new")
        await threads.say(DM, "hi again")
        await threads.wait_idle(DM)
        assert threads.agent.requests[-1].model is None, "a new session uses the default"


async def test_model_command_is_off_unless_configured() -> None:
    async with open_threads() as threads:
        await threads.command(DM, "model", "large")
        assert threads.outbox.texts(DM)[-1] == "Switching models is not enabled here."


async def test_a_long_run_keeps_the_reply_alive_until_it_ends() -> None:
    settings = ThreadSettings(stall_timeout=30, run_timeout=60)
    async with open_threads(settings, agent=fresh(chunk_delay=1.0)) as threads:
        await threads.say(DM, "long #slow:10")
        await threads.wait_idle(DM)
        [stream] = threads.outbox.streams
        assert stream.state == "finished"
        assert stream.keepalives >= 2  # about one every 4 s over 9 s
