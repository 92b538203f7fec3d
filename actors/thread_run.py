"""One agent turn: a background task of the thread actor that always reports how it ended.

Rules:

* A run lives in its own cancel scope; the thread actor cancels it (stop, reset, interrupt).
* It starts only after the previous run of the thread has fully ended, so a thread never has
  two runs at once, not even while a cancelled one is unwinding.
* Whatever happens (answer, failure, timeout, cancellation) it finishes or aborts its
  streamed reply and then reports ``RunFinished`` or ``RunFailed`` to its thread's mailbox.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
from loguru import logger

from actors._errors import root_cause
from actors.context import ActorContext
from actors.exceptions import (
    AgentError,
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.ports import AgentRunner, Outbox, ReplyStream, RunRequest
from actors.thread_messages import FailureKind, RunFailed, RunFinished
from actors.thread_records import PendingInput
from actors.thread_settings import ThreadSettings


@attrs.define(eq=False)
class _Sink:
    """The agent's output goes to the reply stream; every chunk or heartbeat is progress."""

    _stream: ReplyStream
    _ctx: ActorContext[Any]
    _stall_timeout: float
    _watchdog: anyio.CancelScope | None = None
    _chunks: int = 0

    def watch(self, scope: anyio.CancelScope) -> None:
        self._watchdog = scope

    async def emit(self, text: str) -> None:
        if text:
            self._chunks += 1
            self.heartbeat()
            await self._stream.append(text)

    def heartbeat(self) -> None:
        if self._watchdog is not None:
            self._watchdog.deadline = anyio.current_time() + self._stall_timeout
        self._ctx.heartbeat()


FIRST_KEEPALIVE = 0.5
"""An answer that starts sooner than this needs no "typing…" (one request fewer per turn)."""
KEEPALIVE_INTERVAL = 4.0
"""Then again this often (Telegram shows "typing…" for about 5 s)."""


async def _keep_alive(stream: ReplyStream) -> None:
    await anyio.sleep(FIRST_KEEPALIVE)
    while True:
        stream.keepalive()
        await anyio.sleep(KEEPALIVE_INTERVAL)


@attrs.define(eq=False)
class Run:
    """A run of the agent for one turn of a thread."""

    _id: int
    _generation: int
    _inputs: tuple[PendingInput, ...]
    _started_at: float
    _scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope, init=False)
    _done: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    @property
    def id(self) -> int:
        return self._id

    @property
    def inputs(self) -> tuple[PendingInput, ...]:
        return self._inputs

    @property
    def started_at(self) -> float:
        return self._started_at

    def cancel(self) -> None:
        """Cancel the run; it still reports (``CANCELLED``), and that report will be stale."""
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
                stream = outbox.open_stream(request.key, reply_to=self._inputs[-1].message_id)
                async with anyio.create_task_group() as keepalive:
                    keepalive.start_soon(_keep_alive, stream)
                    report = await self._drive(request, agent, stream, settings, ctx)
                    keepalive.cancel_scope.cancel()
        except Exception as error:  # noqa: BLE001 - every way a run ends is reported
            report = self._classify(request, error)
        finally:
            if self._scope.cancel_called:
                # Cancelled by its thread, even if the agent completed before noticing: the
                # thread has already told the user, so the answer must not land as complete.
                report = self._failed(FailureKind.CANCELLED, "cancelled")
            with anyio.CancelScope(shield=True):
                if stream is not None:
                    report = await self._finalize(stream, report, settings.finalize_timeout)
            self._done.set()
            ctx.tell_self(report, control=True)

    async def _drive(
        self,
        request: RunRequest,
        agent: AgentRunner,
        stream: ReplyStream,
        settings: ThreadSettings,
        ctx: ActorContext[Any],
    ) -> RunFinished | RunFailed:
        sink = _Sink(stream, ctx, settings.stall_timeout)
        with anyio.move_on_after(settings.run_timeout):
            stall_deadline = anyio.current_time() + settings.stall_timeout
            with anyio.CancelScope(deadline=stall_deadline) as watchdog:
                sink.watch(watchdog)
                await agent.run(request, sink)
                return RunFinished(self._id, self._generation)
            return self._failed(FailureKind.STALLED, f"no output for {settings.stall_timeout:.0f}s")
        return self._failed(FailureKind.TIMED_OUT, f"longer than {settings.run_timeout:.0f}s")

    async def _finalize(
        self, stream: ReplyStream, report: RunFinished | RunFailed, timeout: float
    ) -> RunFinished | RunFailed:
        with anyio.move_on_after(timeout) as scope:
            try:
                if isinstance(report, RunFinished):
                    await stream.finish()
                else:
                    await stream.abort()
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
