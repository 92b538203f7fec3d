"""A thread's turns: how its runs start, end, fail, stop, park and recover.

The half of the thread actor (``actors.thread.actor``, whose rules apply) that handles what
its runs and timers report; the other half takes user messages and commands in. One class
split in two files, so each stays readable: ``ThreadActor`` is the only subclass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from loguru import logger

from actors import Actor, ActorContext
from actors.thread import texts
from actors.thread.controls import Activations
from actors.thread.io import ThreadIO
from actors.thread.messages import FailureKind, RunFailed, StopRun
from actors.thread.ports import AgentRunner, Outbox, Siblings, ThreadStore
from actors.thread.reactions import Reactions
from actors.thread.records import Concluded, Exchange, Outcome, PendingInput, ThreadKey, interrupted
from actors.thread.run import Run
from actors.thread.settings import ThreadSettings
from actors.thread.state import ThreadState


def concluding(inputs: Iterable[PendingInput], outcome: Outcome, detail: str) -> list[Concluded]:
    """How each of ``inputs`` ended."""
    return [Concluded(p.message_id, outcome, detail) for p in inputs]


@attrs.define(eq=False)
class ThreadTurns(Actor[object]):
    """The thread actor's state and ports, and its turns (see the module)."""

    _key: ThreadKey
    _agent: AgentRunner
    _outbox: Outbox
    _store: ThreadStore
    _settings: ThreadSettings = attrs.field(factory=ThreadSettings)
    _siblings: Siblings | None = attrs.field(default=None, kw_only=True)
    """The conversation's other threads (per-user group sessions): told of ``/activation``."""
    _io: ThreadIO = attrs.field(init=False)
    _state: ThreadState = attrs.field(init=False)
    _activation: Activations = attrs.field(init=False)
    _reactions: Reactions = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._io = ThreadIO(self._key, self._store, self._outbox, self._settings)
        self._state = ThreadState(self._key)
        mode = self._settings.activation
        self._activation = Activations(self._key, self._store, self._siblings, mode)
        self._reactions = Reactions(self._io, self._settings.reactions)

    # -- turns ---------------------------------------------------------------------------

    async def _on_finished(self, ctx: ActorContext[Any]) -> None:
        run = self._state.slot.end()
        logger.info(
            "thread {key}: run {id} answered ({n} input(s))",
            key=self._key,
            id=run.id,
            n=len(run.inputs),
        )
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
        if run.stopping:  # its Stop button: shown cut off; the queue goes on
            await self._advance(ctx, concluding(run.inputs, Outcome.STOPPED, "stop button"))
            return
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
        concluded: list[Concluded] = []
        if orphan.stopping:  # its Stop button was pressed before Recover: not retried
            concluded = concluding(orphan.inputs, Outcome.STOPPED, "stop button")
            retried, given_up = [], []
        self._state.queued[:0] = retried
        run = self._state.next_run()
        concluded += concluding(given_up, Outcome.ERROR_REPLIED, "interrupted by restarts")
        await self._save(concluded)
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

    def _stop_run(self, stop: StopRun) -> bool:
        """The Stop button of run ``stop.run_id``: whether it stops it (see the rules)."""
        run = self._state.slot.current
        if run is None or run.id != stop.run_id or run.reported:
            logger.info(
                "thread {key}: stop button of run {id} by {user}: that run has ended",
                key=self._key,
                id=stop.run_id,
                user=stop.user_id,
            )
            return False
        logger.info(
            "thread {key}: run {id} stopped by {user} (stop button)",
            key=self._key,
            id=run.id,
            user=stop.user_id,
        )
        run.stop()  # concluded when it reports (or by Recover, for an orphan)
        return True

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
        request = self._state.request(run)
        logger.debug(  # its end says it at INFO: one line per run at the default level
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
        """Save the record, with the outcomes ``concluded`` and ``exchange``, in one write;
        then clear the 👀 of the messages it concluded."""
        try:
            await self._io.save(self._state.record(), concluded, exchange)
        finally:  # a write that raised may have landed (see actors.thread.reactions)
            self._reactions.concluded(concluded)
