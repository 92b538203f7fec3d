"""One agent turn: a background task of the thread actor that always reports how it ended.

Rules:

* A run lives in its own cancel scope; the thread actor cancels it (stop, reset, interrupt).
* It starts only after the previous run of the thread has fully ended, so a thread never has
  two runs at once, not even while a cancelled one is unwinding.
* Whatever happens (answer, failure, timeout, cancellation) it finishes or aborts its
  streamed reply and then reports ``RunFinished`` or ``RunFailed`` to its thread's mailbox.
* An answer stands as complete only if its run was not cancelled: a run cancelled while its
  answer was being delivered aborts the reply afterwards (it shows as cut off).
* What the agent gives to ``RunSink.remember`` is kept on the run; the thread writes it to
  the session's history with the run's conclusion, and only if it concludes it answered.
* The keepalive never raises into the thread: a failing one is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import attrs
from loguru import logger

from actors import ActorContext
from actors._errors import root_cause
from actors.thread.exceptions import (
    AgentError,
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
    MediaUnusableError,
    ReplyUndeliveredError,
)
from actors.thread.messages import FailureKind, RunFailed, RunFinished
from actors.thread.ports import AgentRunner, Outbox, ReplyStream, RunRequest
from actors.thread.records import Exchange, PendingInput, Turn
from actors.thread.settings import ThreadSettings

PREVIOUS_SLACK = 5.0
"""Seconds beyond the finalize timeout that a stopped run waits for the run before it."""


@attrs.define(eq=False)
class _Sink:
    """The agent's output goes to the reply stream; every chunk or heartbeat is progress.

    One cancel scope watches the run: its deadline is the run's own deadline or the stall
    deadline, whichever comes first. Progress moves it coarsely (to 1.5x the stall timeout
    ahead, once less than 1x is left), so a run streaming hundreds of chunks touches its
    timer a few times, not once per chunk: a run without progress is cancelled between 1x
    and 1.5x ``stall_timeout`` after its last progress.
    """

    _stream: ReplyStream
    _ctx: ActorContext[Any]
    _stall_timeout: float
    _run_deadline: float
    _remembered: list[Turn]
    _watchdog: anyio.CancelScope = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        now = anyio.current_time()
        self._watchdog = anyio.CancelScope(
            deadline=min(self._run_deadline, now + self._stall_timeout)
        )

    @property
    def watchdog(self) -> anyio.CancelScope:
        return self._watchdog

    def timed_out(self) -> bool:
        """Whether the watchdog fired for the run's deadline rather than for a stall."""
        return self._watchdog.deadline >= self._run_deadline

    async def emit(self, text: str) -> None:
        if text:
            self.heartbeat()
            await self._stream.append(text)

    def heartbeat(self) -> None:
        now = anyio.current_time()
        watchdog, stall = self._watchdog, self._stall_timeout
        if watchdog.deadline < min(self._run_deadline, now + stall):
            watchdog.deadline = min(self._run_deadline, now + 1.5 * stall)
        self._ctx.heartbeat()

    def remember(self, turns: Sequence[Turn]) -> None:
        self._remembered[:] = turns


@attrs.define(eq=False)
class Run:
    """A run of the agent for one turn of a thread."""

    _id: int
    _generation: int
    _inputs: tuple[PendingInput, ...]
    _started_at: float
    _orphan: bool = False
    _scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope, init=False)
    _done: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _stream: ReplyStream | None = attrs.field(default=None, init=False)
    _remembered: list[Turn] = attrs.field(factory=list, init=False)
    _stopping: bool = attrs.field(default=False, init=False)

    @property
    def id(self) -> int:
        return self._id

    @property
    def inputs(self) -> tuple[PendingInput, ...]:
        return self._inputs

    @property
    def started_at(self) -> float:
        return self._started_at

    @property
    def orphan(self) -> bool:
        """A run of an earlier incarnation, interrupted by a restart: it has no task, and is
        current only until its report (left in the mailbox) or ``Recover`` concludes it."""
        return self._orphan

    @property
    def regenerate(self) -> bool:
        """A ``/retry`` of the last, answered turn alone: its answer replaces that turn's."""
        return len(self._inputs) == 1 and self._inputs[0].regenerate

    def exchange(self, session_id: str) -> Exchange | None:
        """What the agent asked to remember of this turn, for the session's history."""
        if not self._remembered:
            return None
        return Exchange(session_id, tuple(self._remembered), replaces_last=self.regenerate)

    def keepalive(self) -> None:
        """Show that the run is alive (its thread's keepalive timer), while its reply is open."""
        if self._stream is None:
            return
        try:
            self._stream.keepalive()
        except Exception as error:  # noqa: BLE001 - cosmetic ("typing…"): logged, never fatal
            logger.warning("run {id}: keepalive failed: {e!r}", id=self._id, e=error)

    def cancel(self) -> None:
        """Cancel the run; it still reports (``CANCELLED``), and that report will be stale."""
        self._scope.cancel()

    @property
    def reported(self) -> bool:
        """Whether its task has ended: its report is in the thread's mailbox, and it is too
        late to stop it (its answer is delivered, or its failure shown)."""
        return self._done.is_set()

    @property
    def stopping(self) -> bool:
        """Whether its Stop button was pressed: it is cancelled, and stays current until its
        report, which concludes its inputs ``STOPPED``."""
        return self._stopping

    def stop(self) -> None:
        """The Stop button: cancel it (an orphan has no task), and conclude it as stopped
        when it reports (or ``Recover`` concludes the orphan)."""
        self._stopping = True
        self._scope.cancel()

    async def execute(
        self,
        request: RunRequest,
        agent: AgentRunner,
        outbox: Outbox,
        settings: ThreadSettings,
        ctx: ActorContext[Any],
        previous: Run | None,
    ) -> None:
        """The background task: run the agent, finalize the reply, report back."""
        report: RunFinished | RunFailed = self._failed(FailureKind.CANCELLED, "cancelled")
        stream: ReplyStream | None = None
        try:
            with self._scope:
                if previous is not None:
                    await previous._done.wait()
                reply_to = self._inputs[-1].message_id
                stream = outbox.open_stream(request.key, reply_to=reply_to, run_id=self._id)
                self._stream = stream
                report = await self._drive(request, agent, stream, settings, ctx)
        except Exception as error:  # noqa: BLE001 - every way a run ends is reported
            report = self._classify(request, error)
        finally:
            if self._scope.cancel_called:
                # Cancelled by its thread, even if the agent completed before noticing: the
                # thread has already told the user, so the answer must not land as complete.
                report = self._failed(FailureKind.CANCELLED, "cancelled")
            self._stream = None
            if stream is not None:
                report = await self._finalize(stream, report, settings.finalize_timeout)
            if previous is not None and not previous._done.is_set():
                await self._outlast(previous, settings.finalize_timeout + PREVIOUS_SLACK)
            self._done.set()
            ctx.tell_self(report, control=True)

    async def _outlast(self, previous: Run, bound: float) -> None:
        """Stopped while it waited: end after ``previous`` all the same, so the next run,
        which waits for this one alone, never runs beside it. ``previous`` unwinds within its
        finalize timeout if its agent honours cancellation; beyond ``bound``, a log line."""
        with anyio.move_on_after(bound, shield=True) as scope:
            await previous._done.wait()
        if scope.cancelled_caught:
            logger.error(
                "run {id}: run {prev} did not unwind within {s:.0f}s (its agent ignores"
                " cancellation?); the thread goes on without waiting for it",
                id=self._id,
                prev=previous._id,
                s=bound,
            )

    async def _drive(
        self,
        request: RunRequest,
        agent: AgentRunner,
        stream: ReplyStream,
        settings: ThreadSettings,
        ctx: ActorContext[Any],
    ) -> RunFinished | RunFailed:
        run_deadline = anyio.current_time() + settings.run_timeout
        sink = _Sink(stream, ctx, settings.stall_timeout, run_deadline, self._remembered)
        with sink.watchdog:
            await agent.run(request, sink)
            return RunFinished(self._id, self._generation)
        if sink.timed_out():
            return self._failed(FailureKind.TIMED_OUT, f"longer than {settings.run_timeout:.0f}s")
        return self._failed(FailureKind.STALLED, f"no output for {settings.stall_timeout:.0f}s")

    async def _finalize(
        self, stream: ReplyStream, report: RunFinished | RunFailed, timeout: float
    ) -> RunFinished | RunFailed:
        """Finish or abort the reply (shielded: a cancelled run still says what it has)."""
        with anyio.move_on_after(timeout, shield=True) as scope:
            try:
                if isinstance(report, RunFinished):
                    await stream.finish()
                    if self._scope.cancel_called:  # while it was being delivered
                        report = self._failed(FailureKind.CANCELLED, "cancelled")
                        await stream.abort()
                else:
                    await stream.abort()
            except ReplyUndeliveredError as error:
                logger.warning("run {id}: reply not delivered: {e}", id=self._id, e=error.reason)
                return self._failed(FailureKind.ERROR, "the answer could not be delivered")
            except Exception as error:  # noqa: BLE001 - reported as the run's failure
                logger.opt(exception=error).error("run {id}: reply not delivered", id=self._id)
                return self._failed(FailureKind.ERROR, "the answer could not be delivered")
        if scope.cancelled_caught and isinstance(report, RunFinished):
            logger.error("run {id}: delivering the reply timed out", id=self._id)
            return self._failed(FailureKind.ERROR, "the answer could not be delivered")
        return report

    def _classify(self, request: RunRequest, error: Exception) -> RunFailed:
        cause = root_cause(error)
        if isinstance(cause, CredentialsExhaustedError):
            return self._failed(FailureKind.EXHAUSTED, cause.reason, cause.retry_after)
        if isinstance(cause, AgentUnavailableError):
            return self._failed(FailureKind.UNAVAILABLE, cause.reason)
        if isinstance(cause, AgentRejectedError):
            return self._failed(FailureKind.REJECTED, cause.reason)
        if isinstance(cause, MediaUnusableError):
            return self._failed(FailureKind.MEDIA, cause.reason)
        if isinstance(cause, AgentError):
            return self._failed(FailureKind.ERROR, cause.reason)
        logger.opt(exception=error).error(
            "run {id} in thread {key} failed with an internal error", id=self._id, key=request.key
        )
        return self._failed(FailureKind.ERROR, f"internal error ({type(cause).__name__})")

    def _failed(
        self, kind: FailureKind, detail: str, retry_after: float | None = None
    ) -> RunFailed:
        return RunFailed(self._id, self._generation, kind, detail, retry_after)
