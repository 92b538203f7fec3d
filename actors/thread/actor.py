"""The thread actor: alone owns one chat thread's session, run and queue.

Everything that can happen to a thread is a message handled here, one at a time, in order
(see ``actors.thread.messages``). There is no map of running agents for anyone else to leave
stale: a report from a run that is no longer the current one is ignored here, the one place
that knows which run is current.

Rules:

* At most one run at a time (``actors.thread.run``). Commands act at once; they are never
  queued behind a run.
* One write per transition: the record is saved (``ThreadStore.save``, together with the
  outcomes the transition concludes and the history of an answered turn) before anything
  is said or started, so a crash loses nothing.
* Handling is idempotent by message id: a user message or command the thread accepted
  before (the supervisor's retry after a crash) is ignored, with a log line.
* A restart resumes: the next incarnation reloads the record; the run it interrupted stays
  current (an *orphan*) until its report, if the crashed incarnation left one, or
  ``Recover`` concludes it: answered if it delivered, else retried, up to ``max_attempts``.
* Its timers (a run's keepalive and queue notice, the parked thread's retry) are messages it
  sends itself (``ActorContext.tell_later``); a tick of a run that has ended is stale.
* Every user message ends in exactly one final outcome, recorded in the store, and the user
  is told (answer, error reply, reset notice, stop notice). ``PARKED`` comes first while no
  key is usable; the user is told once per message. Notices never crash the thread
  (``actors.thread.io``); a thread marked failed concludes what it held
  (``actors.thread.failure``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from loguru import logger

from actors import Actor, ActorContext
from actors.thread import texts
from actors.thread.failure import conclude_failed
from actors.thread.io import ThreadIO
from actors.thread.messages import (
    Command,
    CredentialsAvailable,
    FailureKind,
    KeepaliveTick,
    QueueNoticeTick,
    Recover,
    Resume,
    RetryTick,
    RunFailed,
    RunFinished,
    StatusQuery,
    UserMessage,
)
from actors.thread.ports import AgentRunner, Outbox, RunRequest, ThreadStore
from actors.thread.records import (
    Concluded,
    Exchange,
    Outcome,
    PendingInput,
    ThreadKey,
    ThreadStatus,
    interrupted,
)
from actors.thread.run import Run
from actors.thread.settings import BusyPolicy, ThreadSettings
from actors.thread.state import ThreadState


def concluding(inputs: Iterable[PendingInput], outcome: Outcome, detail: str) -> list[Concluded]:
    """How each of ``inputs`` ended."""
    return [Concluded(p.message_id, outcome, detail) for p in inputs]


@attrs.define(eq=False)
class ThreadActor(Actor[object]):
    """One chat thread. Build one per key (the supervisor's factory)."""

    _key: ThreadKey
    _agent: AgentRunner
    _outbox: Outbox
    _store: ThreadStore
    _settings: ThreadSettings = attrs.field(factory=ThreadSettings)
    _io: ThreadIO = attrs.field(init=False)
    _state: ThreadState = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._io = ThreadIO(self._key, self._store, self._outbox, self._settings)
        self._state = ThreadState(self._key)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self, ctx: ActorContext[Any]) -> None:
        record = await self._io.load()
        self._state = ThreadState.restore(self._key, record)
        if record is not None and (record.in_flight or record.queued):
            # After anything the last incarnation left in the mailbox (its run's report):
            # a thread parked when the gateway stopped tries again now, too (its keys may be
            # back; if not, it parks again, and users told already are not told twice).
            ctx.tell_self(Recover(), control=True)

    async def on_failed(self, undelivered: Sequence[object]) -> Sequence[object]:
        return await conclude_failed(self._io, self._settings, undelivered)

    def can_passivate(self) -> bool:
        return not self._state.holds

    def wants(self, message: object) -> bool:
        # "Credentials available" concerns a parked thread only: the others would wake for
        # nothing (a task each, with thousands of threads live).
        return not isinstance(message, CredentialsAvailable) or self._state.parking.active

    def describe(self) -> Mapping[str, object]:
        return texts.describe(self.status())

    def status(self) -> ThreadStatus:
        """Return a snapshot of this thread."""
        return self._state.status()

    # -- messages --------------------------------------------------------------------------

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        slot = self._state.slot
        match message:
            case UserMessage() | Command() if self._state.accepted(message.message_id):
                logger.info(
                    "thread {key}: message {id} was handled already (retried after a crash)",
                    key=self._key,
                    id=message.message_id,
                )
            case UserMessage():
                self._state.accept(message.message_id)
                await self._on_user(message, ctx)
            case Command():
                self._state.accept(message.message_id)
                await self._on_command(message, ctx)
            case RunFinished() | RunFailed() if not slot.is_current(message.run_id):
                logger.info(
                    "thread {key}: ignored the report of stale run {id} (generation {gen})",
                    key=self._key,
                    id=message.run_id,
                    gen=message.generation,
                )
            case RunFinished():
                await self._on_finished(ctx)
            case RunFailed():
                await self._on_failed(message, ctx)
            case Recover():
                await self._recover(ctx)
            case RetryTick() if not self._state.parking.current(message):
                pass  # a tick of an earlier parking
            case CredentialsAvailable() | RetryTick() if self._state.parking.active:
                await self._unpark(ctx)
            case CredentialsAvailable() | RetryTick():
                pass  # not parked: nothing waits for credentials
            case KeepaliveTick() | QueueNoticeTick() if not slot.is_current(message.run_id):
                pass  # that run has ended (its timers were cancelled, this one was on its way)
            case KeepaliveTick():
                self._state.slot.keepalive(self._settings.keepalive_interval, ctx)
            case QueueNoticeTick():
                await self._io.notice(texts.STILL_WORKING, reply_to=message.message_id)
            case Resume():
                pass  # waking the actor reloaded its record and resumed its work
            case StatusQuery():
                return self.status()
            case _:
                logger.error(
                    "thread {key}: unknown message {kind} ignored",
                    key=self._key,
                    kind=type(message).__name__,
                )
        return None

    async def _on_user(
        self, message: UserMessage, ctx: ActorContext[Any], *, regenerate: bool = False
    ) -> None:
        pending = PendingInput(
            message.message_id,
            message.text,
            regenerate=regenerate,
            media=message.media,
            user_id=message.user_id,
        )
        running = self._state.slot.current
        if running is not None and self._settings.busy_policy is BusyPolicy.INTERRUPT:
            self._state.queued[:0] = self._state.cancel_run("interrupted by a new message")
            self._state.queued.append(pending)
            await self._advance(ctx)
        elif len(self._state.queued) >= self._settings.max_queued:
            await self._save(concluding([pending], Outcome.ERROR_REPLIED, "queue full"))
            text = texts.queue_full(len(self._state.queued))
            await self._io.notice(text, reply_to=message.message_id)
        elif running is not None:
            self._state.queued.append(pending)
            await self._save()
            # Said only if the run still goes on by then; at most once per run.
            self._state.slot.notice_in(self._settings.queue_notice_delay, pending.message_id, ctx)
        elif self._state.parking.active:
            self._state.queued.append(pending)
            await self._save(concluding([pending], Outcome.PARKED, "waiting for credentials"))
            await self._io.notice(texts.NO_KEY_NOW, reply_to=message.message_id)
        else:
            self._state.queued.append(pending)
            await self._advance(ctx)

    async def _on_command(self, command: Command, ctx: ActorContext[Any]) -> None:
        name = command.name
        if name in self._settings.reset_commands:
            await self._reset(command, ctx)
        elif name == "stop":
            answering, queued = self._state.slot.current is not None, len(self._state.queued)
            dropped = self._state.drop_all("stopped")
            reply = texts.stopped(answering=answering, queued=queued)
            await self._answer(command, reply, concluding(dropped, Outcome.STOPPED, "/stop"))
        elif name == "status":
            await self._answer(command, texts.status_text(self.status()))
        elif name in ("help", "start"):
            await self._answer(command, texts.help_text(self._settings.reset_commands))
        elif name == "model":
            allowed = self._settings.allowed_models
            chosen, reply = texts.model_reply(allowed, self._state.model, command.args.strip())
            self._state.model = chosen or self._state.model
            await self._answer(command, reply)
        elif name == "retry" and self._state.slot.current is not None:
            await self._answer(command, texts.RUN_IN_PROGRESS)
        elif name == "retry" and not self._state.last_inputs:
            await self._answer(command, texts.NOTHING_TO_RETRY)
        elif name == "retry":  # the last turn's input again; an answered turn is replaced
            text = "\n\n".join(self._state.last_inputs)
            message = UserMessage(
                command.message_id, text, command.user_id, media=self._state.last_media
            )
            await self._on_user(message, ctx, regenerate=self._state.last_answered)
        else:  # not ours: the agent may know it (skills)
            skill = f"/{name} {command.args}".strip()
            await self._on_user(UserMessage(command.message_id, skill, command.user_id), ctx)

    async def _reset(self, command: Command, ctx: ActorContext[Any]) -> None:
        dropped = self._state.drop_all("reset")
        self._state.reset()
        concluded = concluding(dropped, Outcome.DISCARDED_BY_RESET, f"/{command.name}")
        if command.args:  # a reset skill with input: it is the new session's first message
            self._state.queued.append(PendingInput(command.message_id, command.args))
        else:
            concluded.append(Concluded(command.message_id, Outcome.ANSWERED, f"/{command.name}"))
        run = self._state.next_run()
        await self._save(concluded)
        logger.info(
            "thread {key}: reset by /{cmd} to generation {gen}; {n} input(s) discarded",
            key=self._key,
            cmd=command.name,
            gen=self._state.generation,
            n=len(dropped),
        )
        await self._io.notice(texts.new_session(len(dropped)), reply_to=command.message_id)
        self._launch(run, ctx)

    async def _on_finished(self, ctx: ActorContext[Any]) -> None:
        run = self._state.slot.end()
        logger.info("thread {key}: run {id} answered", key=self._key, id=run.id)
        self._state.last_answered = True
        exchange = run.exchange(self._state.session_id)
        await self._advance(ctx, concluding(run.inputs, Outcome.ANSWERED, ""), exchange)

    async def _on_failed(self, report: RunFailed, ctx: ActorContext[Any]) -> None:
        current = self._state.slot.current
        if current is not None and current.orphan and report.kind is FailureKind.CANCELLED:
            await self._recover(ctx)  # cancelled by the crash of the incarnation that ran it
            return
        run = self._state.slot.end()
        logger.warning(
            "thread {key}: run {id} failed: {kind} ({detail})",
            key=self._key,
            id=run.id,
            kind=report.kind.value,
            detail=report.detail,
        )
        if report.kind is FailureKind.EXHAUSTED:
            await self._park(run.inputs, report, ctx)
            return
        following = self._state.next_run()
        await self._save(concluding(run.inputs, Outcome.ERROR_REPLIED, report.kind.value))
        text = texts.FAILURE_TEXT[report.kind].format(detail=report.detail)
        await self._io.notice(text, reply_to=run.inputs[-1].message_id)
        self._launch(following, ctx)

    async def _recover(self, ctx: ActorContext[Any]) -> None:
        """Retry the inputs of the run a restart interrupted (if no report concluded it), then
        go on with the queue."""
        orphan = self._state.slot.current
        if orphan is None or not orphan.orphan:
            await self._advance(ctx)  # nothing was interrupted, or its report came first
            return
        self._state.slot.end()
        retried, given_up = interrupted(orphan.inputs, self._settings.max_attempts)
        self._state.queued[:0] = retried
        run = self._state.next_run()
        await self._save(concluding(given_up, Outcome.ERROR_REPLIED, "interrupted by restarts"))
        logger.warning(
            "thread {key}: run interrupted by a restart; retrying {n}, giving up on {m}",
            key=self._key,
            n=len(retried),
            m=len(given_up),
        )
        if given_up:
            await self._io.notice(texts.GAVE_UP, reply_to=given_up[-1].message_id)
        if retried:
            await self._io.notice(texts.RETRYING, reply_to=retried[-1].message_id)
        self._launch(run, ctx)

    # -- parking ---------------------------------------------------------------------------

    async def _park(
        self, inputs: Iterable[PendingInput], report: RunFailed, ctx: ActorContext[Any]
    ) -> None:
        self._state.queued[:0] = inputs
        told = [p for p in self._state.queued if p.parked]
        untold = [p for p in self._state.queued if not p.parked]
        self._state.queued = [attrs.evolve(p, parked=True) for p in self._state.queued]
        delay = report.retry_after or self._settings.default_retry_after
        self._state.parking.start(delay, ctx)
        await self._save(concluding(untold, Outcome.PARKED, report.detail))
        logger.warning(
            "thread {key}: parked {n} input(s), credentials exhausted; retry in {d:.0f}s",
            key=self._key,
            n=len(self._state.queued),
            d=delay,
        )
        if untold:
            await self._io.notice(texts.keys_used_up(delay), reply_to=untold[-1].message_id)
        elif told:
            logger.info("thread {key}: still parked; users were already told", key=self._key)

    async def _unpark(self, ctx: ActorContext[Any]) -> None:
        self._state.parking.end()
        logger.info("thread {key}: credentials may be back; retrying", key=self._key)
        await self._advance(ctx)

    # -- runs ------------------------------------------------------------------------------

    async def _advance(
        self,
        ctx: ActorContext[Any],
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        """Start the next run if the thread is free to: saved (with ``concluded`` and
        ``exchange``) in one write, then launched."""
        run = self._state.next_run()
        await self._save(concluded, exchange)
        self._launch(run, ctx)

    def _launch(self, run: Run | None, ctx: ActorContext[Any]) -> None:
        """Start ``run`` (after it was saved as the current run)."""
        if run is None:
            return
        request = RunRequest(
            self._key,
            self._state.session_id,
            self._state.generation,
            self._state.last_inputs,
            self._state.model,
            message_ids=tuple(p.message_id for p in run.inputs),
            regenerate=run.regenerate,
            media=tuple(p.media for p in run.inputs) if any(p.media for p in run.inputs) else (),
            user_ids=tuple(p.user_id for p in run.inputs),
        )
        logger.info(
            "thread {key}: run {id} started with {n} input(s), generation {gen}",
            key=self._key,
            id=run.id,
            n=len(run.inputs),
            gen=self._state.generation,
        )
        self._state.slot.launch(run, request, self._agent, self._outbox, self._settings, ctx)

    # -- ports -----------------------------------------------------------------------------

    async def _save(
        self, concluded: Sequence[Concluded] = (), exchange: Exchange | None = None
    ) -> None:
        """Save the record, with the outcomes ``concluded`` and ``exchange``, in one write."""
        await self._io.save(self._state.record(), concluded, exchange)

    async def _answer(
        self, command: Command, text: str, concluded: Sequence[Concluded] = ()
    ) -> None:
        """Reply to a command: that reply is its outcome, saved with ``concluded``."""
        answered = Concluded(command.message_id, Outcome.ANSWERED, f"/{command.name}")
        await self._save([*concluded, answered])
        await self._io.notice(text, reply_to=command.message_id)
