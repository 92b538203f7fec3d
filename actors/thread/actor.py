"""The thread actor: alone owns one chat thread's session, run and queue.

Everything that can happen to a thread is a message handled here, one at a time, in order
(see ``actors.thread.messages``). There is no map of running agents for anyone else to leave
stale: a report from a run that is no longer the current one is ignored here, the one place
that knows which run is current.

Rules:

* At most one run at a time (``actors.thread.run``). Commands act at once; they are never
  queued behind a run.
* One write per transition: the record is saved (``ThreadStore.save``, together with the
  outcomes the transition concludes) before anything is said or started, so a crash loses
  nothing: the next incarnation reloads it and retries interrupted inputs.
* Its timers (a run's keepalive and queue notice, the parked thread's retry) are messages it
  sends itself (``ActorContext.tell_later``); a tick of a run that has ended is stale.
* Every user message ends in exactly one final outcome, recorded in the store, and the user
  is told (answer, error reply, reset notice, stop notice). ``PARKED`` comes first while no
  key is usable; the user is told once per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import anyio
import attrs
from loguru import logger

from actors import Actor, ActorContext
from actors.thread import texts
from actors.thread.messages import (
    Command,
    CredentialsAvailable,
    FailureKind,
    KeepaliveTick,
    QueueNoticeTick,
    Resume,
    RetryTick,
    RunFailed,
    RunFinished,
    StatusQuery,
    UserMessage,
)
from actors.thread.parking import Parking
from actors.thread.ports import AgentRunner, Outbox, RunRequest, ThreadStore
from actors.thread.records import (
    Concluded,
    Outcome,
    PendingInput,
    ThreadKey,
    ThreadPhase,
    ThreadRecord,
    ThreadStatus,
)
from actors.thread.run import Run
from actors.thread.settings import BusyPolicy, ThreadSettings
from actors.thread.slot import RunSlot


@attrs.define(eq=False)
class ThreadActor(Actor[object]):
    """One chat thread. Build one per key (the supervisor's factory)."""

    _key: ThreadKey
    _agent: AgentRunner
    _outbox: Outbox
    _store: ThreadStore
    _settings: ThreadSettings = attrs.field(factory=ThreadSettings)
    _session_id: str = attrs.field(default="", init=False)
    _generation: int = attrs.field(default=0, init=False)
    _slot: RunSlot = attrs.field(factory=RunSlot, init=False)
    _queued: list[PendingInput] = attrs.field(factory=list, init=False)
    _parking: Parking = attrs.field(factory=Parking, init=False)
    _last_inputs: tuple[str, ...] = attrs.field(default=(), init=False)
    _model: str | None = attrs.field(default=None, init=False)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self, ctx: ActorContext[Any]) -> None:
        record = await self._store.load(self._key)
        if record is None:
            record = ThreadRecord(session_id=texts.new_session_id())
        self._session_id = record.session_id
        self._generation = record.generation
        self._slot = RunSlot(record.run_seq)
        # A thread parked when the gateway stopped tries again now: its keys may be back (if
        # not, it parks again at once, and its users, told already, are not told twice).
        self._queued = list(record.queued)
        self._last_inputs = record.last_inputs
        self._model = record.model
        retried, given_up = record.interrupted(self._settings.max_attempts)
        self._queued[:0] = retried
        run = self._next_run()
        await self._save(given_up, Outcome.ERROR_REPLIED, "interrupted by restarts")
        if record.in_flight:
            logger.warning(
                "thread {key}: run interrupted by a restart; retrying {n}, giving up on {m}",
                key=self._key,
                n=len(retried),
                m=len(given_up),
            )
        if given_up:
            await self._notice(texts.GAVE_UP)
        if retried:
            await self._notice(texts.RETRYING)
        self._launch(run, ctx)

    def can_passivate(self) -> bool:
        return self._slot.current is None and not self._queued and not self._parking.active

    def describe(self) -> Mapping[str, object]:
        return texts.describe(self.status())

    def status(self) -> ThreadStatus:
        """Return a snapshot of this thread."""
        run = self._slot.current
        phase = ThreadPhase.IDLE
        if run is not None:
            phase = ThreadPhase.RUNNING
        elif self._parking.active:
            phase = ThreadPhase.PARKED
        return ThreadStatus(
            key=self._key,
            phase=phase,
            session_id=self._session_id,
            generation=self._generation,
            queued=len(self._queued),
            run_age=None if run is None else anyio.current_time() - run.started_at,
        )

    # -- messages --------------------------------------------------------------------------

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        match message:
            case UserMessage():
                await self._on_user(message, ctx)
            case Command():
                await self._on_command(message, ctx)
            case RunFinished() | RunFailed() if not self._slot.is_current(message.run_id):
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
            case RetryTick() if not self._parking.current(message):
                pass  # a tick of an earlier parking
            case CredentialsAvailable() | RetryTick() if self._parking.active:
                await self._unpark(ctx)
            case CredentialsAvailable() | RetryTick():
                pass  # not parked: nothing waits for credentials
            case KeepaliveTick() | QueueNoticeTick() if not self._slot.is_current(message.run_id):
                pass  # that run has ended (its timers were cancelled, this one was on its way)
            case KeepaliveTick():
                self._slot.keepalive(self._settings.keepalive_interval, ctx)
            case QueueNoticeTick():
                await self._notice(texts.STILL_WORKING, reply_to=message.message_id)
            case Resume():
                pass  # on_start already reloaded the record and resumed its work
            case StatusQuery():
                return self.status()
            case _:
                logger.error(
                    "thread {key}: unknown message {kind} ignored",
                    key=self._key,
                    kind=type(message).__name__,
                )
        return None

    async def _on_user(self, message: UserMessage, ctx: ActorContext[Any]) -> None:
        pending = PendingInput(message.message_id, message.text)
        running = self._slot.current
        if running is not None and self._settings.busy_policy is BusyPolicy.INTERRUPT:
            self._queued[:0] = self._cancel_run("interrupted by a new message")
            self._queued.append(pending)
            await self._advance(ctx)
        elif len(self._queued) >= self._settings.max_queued:
            await self._store.record_outcome(
                self._key, pending.message_id, Outcome.ERROR_REPLIED, "queue full"
            )
            await self._notice(texts.queue_full(len(self._queued)), reply_to=message.message_id)
        elif running is not None:
            self._queued.append(pending)
            await self._save()
            # Said only if the run still goes on by then; at most once per run.
            self._slot.notice_in(self._settings.queue_notice_delay, pending.message_id, ctx)
        elif self._parking.active:
            self._queued.append(pending)
            await self._save([pending], Outcome.PARKED, "waiting for credentials")
            await self._notice(texts.NO_KEY_NOW, reply_to=message.message_id)
        else:
            self._queued.append(pending)
            await self._advance(ctx)

    async def _on_command(self, command: Command, ctx: ActorContext[Any]) -> None:
        name = command.name
        if name in self._settings.reset_commands:
            await self._reset(command, ctx)
        elif name == "stop":
            await self._stop(command)
        elif name == "status":
            await self._answer(command, texts.status_text(self.status()))
        elif name in ("help", "start"):
            await self._answer(command, texts.HELP)
        elif name == "model":
            await self._switch_model(command)
        elif name == "retry" and self._slot.current is not None:
            await self._answer(command, texts.RUN_IN_PROGRESS)
        elif name == "retry" and not self._last_inputs:
            await self._answer(command, texts.NOTHING_TO_RETRY)
        else:  # /retry: the last turn's input again; not ours: the agent may know it (skills)
            skill = f"/{name} {command.args}".strip()
            text = "\n\n".join(self._last_inputs) if name == "retry" else skill
            await self._on_user(UserMessage(command.message_id, text, command.user_id), ctx)

    async def _switch_model(self, command: Command) -> None:
        allowed = self._settings.allowed_models
        chosen, reply = texts.model_reply(allowed, self._model, command.args.strip())
        if chosen is not None:
            self._model = chosen
            await self._save()
        await self._answer(command, reply)

    async def _reset(self, command: Command, ctx: ActorContext[Any]) -> None:
        dropped = self._drop_all("reset")
        self._generation += 1
        self._session_id = texts.new_session_id()
        self._last_inputs = ()
        self._model = None
        await self._save(dropped, Outcome.DISCARDED_BY_RESET, f"/{command.name}")
        logger.info(
            "thread {key}: reset by /{cmd} to generation {gen}; {n} input(s) discarded",
            key=self._key,
            cmd=command.name,
            gen=self._generation,
            n=len(dropped),
        )
        text = texts.new_session(len(dropped))
        if command.args:  # a reset skill with input: it is the new session's first message
            await self._notice(text, reply_to=command.message_id)
            message = UserMessage(command.message_id, command.args, command.user_id)
            await self._on_user(message, ctx)
        else:
            await self._answer(command, text)

    async def _stop(self, command: Command) -> None:
        dropped = self._drop_all("stopped")
        await self._save(dropped, Outcome.STOPPED, "/stop")
        await self._answer(command, texts.stopped(len(dropped)))

    async def _on_finished(self, ctx: ActorContext[Any]) -> None:
        run = self._slot.end()
        logger.info("thread {key}: run {id} answered", key=self._key, id=run.id)
        await self._advance(ctx, run.inputs, Outcome.ANSWERED)

    async def _on_failed(self, report: RunFailed, ctx: ActorContext[Any]) -> None:
        run = self._slot.end()
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
        following = self._next_run()
        await self._save(run.inputs, Outcome.ERROR_REPLIED, report.kind.value)
        text = texts.FAILURE_TEXT[report.kind].format(detail=report.detail)
        await self._notice(text, reply_to=run.inputs[-1].message_id)
        self._launch(following, ctx)

    # -- parking ---------------------------------------------------------------------------

    async def _park(
        self, inputs: Iterable[PendingInput], report: RunFailed, ctx: ActorContext[Any]
    ) -> None:
        self._queued[:0] = inputs
        told = [p for p in self._queued if p.parked]
        untold = [p for p in self._queued if not p.parked]
        self._queued = [attrs.evolve(p, parked=True) for p in self._queued]
        delay = report.retry_after or self._settings.default_retry_after
        self._parking.start(delay, ctx)
        await self._save(untold, Outcome.PARKED, report.detail)
        logger.warning(
            "thread {key}: parked {n} input(s), credentials exhausted; retry in {d:.0f}s",
            key=self._key,
            n=len(self._queued),
            d=delay,
        )
        if untold:
            await self._notice(texts.keys_used_up(delay), reply_to=untold[-1].message_id)
        elif told:
            logger.info("thread {key}: still parked; users were already told", key=self._key)

    async def _unpark(self, ctx: ActorContext[Any]) -> None:
        self._parking.end()
        logger.info("thread {key}: credentials may be back; retrying", key=self._key)
        await self._advance(ctx)

    # -- runs ------------------------------------------------------------------------------

    async def _advance(
        self,
        ctx: ActorContext[Any],
        concluded: Iterable[PendingInput] = (),
        outcome: Outcome = Outcome.ANSWERED,
    ) -> None:
        """Start the next run if the thread is free to: saved (with the outcomes of
        ``concluded``) in one write, then launched."""
        run = self._next_run()
        await self._save(concluded, outcome)
        self._launch(run, ctx)

    def _next_run(self) -> Run | None:
        """Take everything queued into a new current run, if the thread is free to; the
        caller saves, then launches it."""
        if self._slot.current is not None or self._parking.active or not self._queued:
            return None
        inputs, self._queued = tuple(self._queued), []
        self._last_inputs = tuple(p.text for p in inputs)
        return self._slot.begin(self._generation, inputs)

    def _launch(self, run: Run | None, ctx: ActorContext[Any]) -> None:
        """Start ``run`` (after it was saved as the current run)."""
        if run is None:
            return
        request = RunRequest(
            self._key, self._session_id, self._generation, self._last_inputs, self._model
        )
        logger.info(
            "thread {key}: run {id} started with {n} input(s), generation {gen}",
            key=self._key,
            id=run.id,
            n=len(run.inputs),
            gen=self._generation,
        )
        self._slot.launch(run, request, self._agent, self._outbox, self._settings, ctx)

    def _cancel_run(self, why: str) -> tuple[PendingInput, ...]:
        """Cancel the current run, if any; return its inputs."""
        if self._slot.current is None:
            return ()
        run = self._slot.end()
        logger.info("thread {key}: run {id} cancelled: {why}", key=self._key, id=run.id, why=why)
        run.cancel()
        return run.inputs

    def _drop_all(self, why: str) -> list[PendingInput]:
        """Cancel the run, unpark, and return every input the thread held."""
        dropped = [*self._cancel_run(why), *self._queued]
        self._queued = []
        if self._parking.active:
            self._parking.end()
        return dropped

    # -- ports -----------------------------------------------------------------------------

    async def _save(
        self,
        concluded: Iterable[PendingInput] = (),
        outcome: Outcome = Outcome.ANSWERED,
        detail: str = "",
    ) -> None:
        """Save the record, with the outcome of every input in ``concluded``, in one write."""
        record = ThreadRecord(
            session_id=self._session_id,
            generation=self._generation,
            run_seq=self._slot.seq,
            in_flight=self._slot.current.inputs if self._slot.current is not None else (),
            queued=tuple(self._queued),
            parked=self._parking.active,
            last_inputs=self._last_inputs,
            model=self._model,
        )
        outcomes = [Concluded(p.message_id, outcome, detail) for p in concluded]
        await self._store.save(self._key, record, outcomes)

    async def _notice(self, text: str, *, reply_to: int | None = None) -> None:
        await self._outbox.notice(self._key, text, reply_to=reply_to)

    async def _answer(self, command: Command, text: str) -> None:
        """Reply to a command; that reply is the command message's outcome."""
        await self._store.record_outcome(
            self._key, command.message_id, Outcome.ANSWERED, f"/{command.name}"
        )
        await self._notice(text, reply_to=command.message_id)
