"""The gateway's own long-running services, supervised: a failure restarts, never stops it.

A *service* is a coroutine meant to run as long as the gateway does: the poller or the
webhook server, the resequencer, the checkpoints, the replies the gateway owes, the admin
endpoint, each credential pool's timer. Rules:

* A service that raises is logged and restarted after a backoff that doubles with each
  failure in a row, up to ``Backoff.maximum``; a run that lasted ``Backoff.reset_after``
  seconds starts the count again. While it waits it is ``RESTARTING``, which ``/healthz``
  reports as degraded.
* A :class:`~gateway.exceptions.FatalError` (a rejected bot token, a config Telegram refuses)
  is not restarted: it stops the gateway, which exits with status 2.
* A service that returns has finished (``STOPPED``); it is not restarted.
* Every service runs in the supervisor's task group: leaving the ``async with`` cancels what
  is still running. :meth:`ServiceSupervisor.stop` stops some of them earlier, in the order
  the gateway shuts down.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
import attrs
from anyio.abc import TaskGroup
from loguru import logger

from gateway.exceptions import FatalError


class ServiceState(enum.Enum):
    """What a service is doing."""

    RUNNING = "running"
    """Started, and has not failed since."""
    RESTARTING = "restarting"
    """Failed; waiting out its backoff before it starts again."""
    STOPPED = "stopped"
    """Returned, or stopped with the gateway."""


@attrs.frozen
class Backoff:
    """How long a failed service waits before it starts again."""

    initial: float = 0.5
    """Seconds before the first restart of a run of failures."""
    maximum: float = 30.0
    """Seconds at most between two starts."""
    reset_after: float = 60.0
    """A service that ran this long before it failed counts as healthy again: its next
    restart waits ``initial``."""

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` (1-based) of a run of failures."""
        return min(self.maximum, self.initial * 2.0 ** (failures - 1))


@attrs.frozen
class ServiceStatus:
    """One service at one moment (for ``/healthz`` and ``/status``)."""

    name: str
    """The service's name (``poller``, ``checkpoints``, ``pool llm``, ...)."""
    state: ServiceState
    """What it is doing."""
    restarts: int
    """Restarts since the gateway started."""
    last_error: str
    """The type of its last failure (``""``: none); the log line has the whole error."""
    restart_in: float | None
    """Seconds until it starts again, while ``RESTARTING``."""


@attrs.define(eq=False)
class _Service:
    """The supervisor's record of one service; only its own supervising task changes it."""

    name: str
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    ended: anyio.Event = attrs.field(factory=anyio.Event)
    state: ServiceState = ServiceState.RUNNING
    restarts: int = 0
    failures: int = 0
    """Failures in a row (the backoff's exponent)."""
    last_error: str = ""
    restart_at: float = math.inf

    def status(self, now: float) -> ServiceStatus:
        restarting = self.state is ServiceState.RESTARTING
        return ServiceStatus(
            self.name,
            self.state,
            self.restarts,
            self.last_error,
            max(0.0, self.restart_at - now) if restarting else None,
        )


def _fatal(error: Exception) -> bool:
    """Whether ``error`` (or one of the errors it groups) must stop the gateway."""
    if isinstance(error, FatalError):
        return True
    if isinstance(error, BaseExceptionGroup):
        return error.subgroup(FatalError) is not None
    return False


@attrs.define(eq=False)
class ServiceSupervisor:
    """Runs services until they finish or the supervisor is left; use as ``async with``."""

    _backoff: Backoff = Backoff()
    _services: dict[str, _Service] = attrs.field(factory=dict, init=False)
    _task_group: TaskGroup | None = attrs.field(default=None, init=False)

    async def __aenter__(self) -> ServiceSupervisor:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(exc_type, exc, tb)

    def start_soon(self, name: str, service: Callable[[], Awaitable[object]]) -> None:
        """Run ``service`` under supervision from now on; ``name`` must be new."""
        assert self._task_group is not None, "enter the supervisor first"
        if name in self._services:
            raise ValueError(f"a service named {name!r} is already supervised")
        record = _Service(name)
        self._services[name] = record
        self._task_group.start_soon(self._supervise, record, service, name=f"service {name}")

    async def stop(self, *names: str, grace: float = 0.0) -> None:
        """Stop the services ``names`` and wait until they ended: each gets ``grace`` seconds
        to end by itself (after its input was closed, say), then it is cancelled."""
        records = [self._services[name] for name in names]
        if grace > 0:
            with anyio.move_on_after(grace):
                for record in records:
                    await record.ended.wait()
        for record in records:
            record.scope.cancel()
        for record in records:
            await record.ended.wait()

    def status(self) -> tuple[ServiceStatus, ...]:
        """A snapshot of every service, in the order they were started."""
        now = anyio.current_time()
        return tuple(record.status(now) for record in self._services.values())

    async def _supervise(self, record: _Service, service: Callable[[], Awaitable[object]]) -> None:
        try:
            with record.scope:
                while True:
                    started = anyio.current_time()
                    record.state = ServiceState.RUNNING
                    try:
                        await service()
                    except Exception as error:
                        if _fatal(error):
                            raise
                        await self._back_off(record, error, anyio.current_time() - started)
                        continue
                    logger.info("service {name} finished", name=record.name)
                    return
        finally:
            record.state = ServiceState.STOPPED
            record.ended.set()

    async def _back_off(self, record: _Service, error: Exception, ran_for: float) -> None:
        if ran_for >= self._backoff.reset_after:
            record.failures = 0
        record.failures += 1
        record.restarts += 1
        delay = self._backoff.delay(record.failures)
        record.state = ServiceState.RESTARTING
        record.last_error = type(error).__name__
        record.restart_at = anyio.current_time() + delay
        logger.opt(exception=error).error(
            "service {name} failed ({kind}: {error}); restarting in {delay:.1f}s (restart {n})",
            name=record.name,
            kind=type(error).__name__,
            error=error,
            delay=delay,
            n=record.restarts,
        )
        await anyio.sleep(delay)
        record.restart_at = math.inf
