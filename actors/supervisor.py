"""The supervisor: spawns one child per key on demand, restarts, watches and passivates them.

Failure rules (also in ``docs/architecture.md``):

* **Crash** (``receive`` raises for a tell, ``on_start`` raises, a background task raises)
  and **hang** (a message handled for ``stall_timeout`` without a heartbeat is cancelled,
  with its incarnation's background tasks, between 1x and 1.5x ``stall_timeout``; reason
  :class:`ActorStalledError`): a fresh actor is built on the *same* mailbox after a backoff,
  the message is retried once, and too many restarts mark the child failed
  (``actors._restarts`` has the rules).
* **Overflow**: never a drop; the sender gets :class:`MailboxFullError` or waits.
* **Idle**: a child with nothing to do has no task (dormant); after ``idle_ttl`` dormant it is
  passivated (forgotten), and the next message builds a fresh actor from the store port.
* **Stop**: at shutdown, children drain for ``drain_timeout``; then they are cancelled, and
  the message each was handling and whatever is still queued are dead-lettered as
  ``SHUTDOWN`` (askers get :class:`ActorStoppedError`). A crash that meets that
  cancellation is logged; only the cancellation goes on.
* **Evict**: :meth:`Supervisor.evict` forgets matching children at once (``actors._evict``).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup
from loguru import logger

from actors._cell import Cell
from actors._context import CellContext
from actors._errors import cancellation_of, root_cause
from actors._evict import evict_matching
from actors._passivation import collect_idle, stop_actor
from actors._restarts import after_crash, last_word
from actors.actor import Actor
from actors.context import ActorContext
from actors.deadletter import DeadLetter, DeadLetterOffice, DeadLetterReason, log_dead_letter
from actors.envelope import Envelope
from actors.exceptions import (
    ActorFailedError,
    ActorStalledError,
    MailboxClosedError,
    MailboxFullError,
    SupervisorClosedError,
)
from actors.mailbox import Mailbox
from actors.policy import SupervisorConfig
from actors.ref import ActorRef
from actors.status import ChildState, SupervisorStatistics, SupervisorStatus
from actors.timers import Timer, TimerQueue

_ACTIVATION = "actors.Supervisor._activation"
"""The name of every activation task."""

K = TypeVar("K", bound=Hashable)


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


@attrs.define(eq=False)
class _Counters:
    spawned: int = 0
    delivered: int = 0
    restarts: int = 0
    stalls: int = 0
    passivations: int = 0
    failures: int = 0
    evictions: int = 0


@attrs.define(eq=False)
class Supervisor(Generic[K]):
    """Owns every child actor; use as ``async with Supervisor(factory) as sup:``.

    Args:
        factory: builds a fresh actor for a key (called on spawn and on every restart).
        config: mailbox, watchdog, passivation and restart settings.
        on_dead_letter: called (synchronously, must not block) for every dead letter.
        rng: the jitter source (seed it for reproducible tests).
    """

    _factory: Callable[[K], Actor[Any]]
    _config: SupervisorConfig = attrs.field(factory=SupervisorConfig)
    _on_dead_letter: Callable[[DeadLetter], None] = log_dead_letter
    _rng: random.Random = attrs.field(factory=random.Random)
    _cells: dict[K, Cell] = attrs.field(factory=dict, init=False)
    _phase: _Phase = attrs.field(default=_Phase.NEW, init=False)
    _task_group: TaskGroup | None = attrs.field(default=None, init=False)
    _running_tasks: int = attrs.field(default=0, init=False)
    _all_stopped: anyio.Event | None = attrs.field(default=None, init=False)
    _counters: _Counters = attrs.field(factory=_Counters, init=False)
    _timers: TimerQueue = attrs.field(init=False)
    _dead_letters: DeadLetterOffice = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._timers = TimerQueue(self._fire)
        self._dead_letters = DeadLetterOffice(self._on_dead_letter)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Supervisor[K]:
        if self._phase is not _Phase.NEW:
            raise SupervisorClosedError("a supervisor can be entered once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._phase = _Phase.RUNNING
        task_group.start_soon(self._timers.run)
        if self._config.idle_ttl is not None:
            task_group.start_soon(self._sweep, self._config.idle_ttl)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        if exc is None:
            try:
                await self.aclose()
            except BaseException as error:
                self._cancel_all()
                await self._task_group.__aexit__(type(error), error, error.__traceback__)
                raise
        else:
            self._cancel_all()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._hand_back()

    async def aclose(self) -> None:
        """Stop accepting messages, let children drain for ``drain_timeout``, then cancel them."""
        if self._phase is not _Phase.RUNNING:
            return
        self._phase = _Phase.DRAINING
        with anyio.move_on_after(self._config.drain_timeout):
            if self._running_tasks:
                self._all_stopped = anyio.Event()
                await self._all_stopped.wait()
            for cell in list(self._cells.values()):
                if not cell.active and cell.actor is not None:
                    await stop_actor(cell.key, cell.actor, self._config.drain_timeout)
        self._cancel_all()

    def _cancel_all(self) -> None:
        self._phase = _Phase.CLOSED
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()

    def _hand_back(self) -> None:
        for cell in self._cells.values():
            handling = cell.take_handling()  # cancelled mid-way at the drain deadline
            for envelope in [*([handling] if handling else []), *cell.mailbox.close()]:
                self._dead_letters.post(cell.key, envelope, DeadLetterReason.SHUTDOWN, "shutdown")

    # -- routing ---------------------------------------------------------------------------

    def ref_for(self, key: K) -> ActorRef[K]:
        """Return the ref for ``key``; the child is spawned by the first message sent to it."""
        return ActorRef(key, self)

    def deliver_nowait(self, key: K, envelope: Envelope) -> None:
        """Route ``envelope`` to the child for ``key`` (spawning it), raising instead of waiting."""
        cell = self._cell_for(key)
        cell.mailbox.put_nowait(envelope)
        self._counters.delivered += 1
        self._wake(cell)

    async def deliver(self, key: K, envelope: Envelope) -> None:
        """Route ``envelope`` to the child for ``key`` (spawning it), waiting for room."""
        cell = self._cell_for(key)
        await cell.mailbox.put(envelope)
        self._counters.delivered += 1
        self._wake(cell)

    def broadcast(self, message: object, *, control: bool = False) -> int:
        """Send ``message`` to every live, non-failed child it concerns; return how many got it.

        An active child gets it (its activation task is running: no task is started). A
        dormant one gets it only if its actor :meth:`~actors.Actor.wants` it: a dormant child
        is woken by a task of its own, so a broadcast starts a task per child it concerns,
        never per live child. A child whose lane is full is skipped with a log line (it is
        busy, not starved).
        """
        sent = 0
        for key, cell in list(self._cells.items()):
            if cell.state is ChildState.FAILED:
                continue
            actor = cell.actor
            if not cell.active and actor is not None and not actor.wants(message):
                continue  # dormant, and nothing in it waits for this
            try:
                cell.mailbox.put_nowait(Envelope(message, control=control))
            except Exception as error:  # noqa: BLE001 - full or closed; reported, not raised
                logger.warning("broadcast to actor {key!r} skipped: {error}", key=key, error=error)
            else:
                sent += 1
                self._wake(cell)
        self._counters.delivered += sent
        return sent

    def evict(self, predicate: Callable[[K], bool], reason: str) -> int:
        """Forget every child whose key matches ``predicate`` at once; return how many.

        No ``on_stop``, no dead letters, one log line (``actors._evict`` has the rules).
        """
        evicted = evict_matching(self._cells, predicate, reason)
        self._counters.evictions += evicted
        return evicted

    def _fire(self, timer: Timer) -> None:
        """A timer is due: send its message, unless the incarnation that set it has ended."""
        cell = timer.cell
        if (
            cell.incarnation != timer.incarnation
            or cell.actor is None
            or self._cells.get(cell.key) is not cell  # type: ignore[arg-type]
        ):
            return  # restarted, failed or passivated since: its timers went with it
        try:
            cell.mailbox.put_nowait(timer.envelope)
        except (MailboxFullError, MailboxClosedError) as error:
            logger.warning(
                "timer message {kind} for actor {key!r} not sent: {error}",
                kind=type(timer.envelope.message).__name__,
                key=cell.key,
                error=error,
            )
            return
        self._counters.delivered += 1
        self._wake(cell)

    def _cell_for(self, key: K) -> Cell:
        if self._phase is not _Phase.RUNNING:
            raise SupervisorClosedError(f"supervisor is {self._phase.value}; not accepting")
        cell = self._cells.get(key)
        if cell is None:
            return self._spawn(key)
        failed_until = cell.failed_until
        if failed_until is not None:
            now = anyio.current_time()
            if now < failed_until or cell.active:
                # Failed until its cooldown is over and its last word is done: a successor
                # must not write the state its last word is still concluding.
                raise ActorFailedError(key, failed_until - now if now < failed_until else 1.0)
            return self._spawn(key)
        return cell

    def _spawn(self, key: K) -> Cell:
        config = self._config
        mailbox = Mailbox(key, config.mailbox_capacity, config.control_capacity, config.overflow)
        cell = Cell(key, mailbox, config.stall_timeout, anyio.current_time())
        self._cells[key] = cell
        self._counters.spawned += 1
        return cell

    def _wake(self, cell: Cell) -> None:
        """Start an activation task for a dormant child that has mail."""
        if cell.activate():
            assert self._task_group is not None
            self._running_tasks += 1
            # Named here: anyio would otherwise work the name out anew for every activation.
            self._task_group.start_soon(self._activation, cell, name=_ACTIVATION)

    # -- supervision -----------------------------------------------------------------------

    async def _activation(self, cell: Cell) -> None:
        """Serve ``cell`` until it is quiescent (then it goes dormant) or fails."""
        try:
            with cell.activation_scope():  # cancelled by an eviction
                while not cell.evicted():
                    error = await self._serve_incarnation(cell)
                    if error is not None and cell.evicted():
                        logger.info("evicted actor {k!r} ended with {e!r}", k=cell.key, e=error)
                    if error is None or cell.evicted():
                        return
                    delay = self._after_crash(cell, error)
                    if delay is None:
                        await last_word(cell, self._factory, self._dead_letters)
                        return
                    cell.backing_off()
                    await anyio.sleep(delay)
        finally:
            cell.deactivate(anyio.current_time())
            self._running_tasks -= 1
            if len(cell.mailbox) and self._phase is not _Phase.CLOSED:
                self._wake(cell)  # mail that came while the task group was closing
            elif not self._running_tasks and self._all_stopped is not None:
                self._all_stopped.set()

    async def _serve_incarnation(self, cell: Cell) -> Exception | None:
        key: K = cell.key  # type: ignore[assignment]
        try:
            actor = cell.actor
            fresh = actor is None
            if actor is None:
                actor = self._factory(key)
                cell.start(actor)
            async with anyio.create_task_group() as task_group:
                cell.watch(task_group.cancel_scope)
                ctx = CellContext(cell, task_group, self.ref_for(key), self._wake, self._timers)
                if fresh:
                    await actor.on_start(ctx)
                await self._serve(cell, actor, ctx)
        except Exception as error:  # noqa: BLE001 - every crash is supervised, then logged
            return error
        except BaseExceptionGroup as group:
            raise cancellation_of(key, group) from None  # a crash beside the shutdown's cancel
        if task_group.cancel_scope.cancelled_caught:
            # Only the watchdog deadline cancels this scope: a handler hung past stall_timeout.
            return ActorStalledError(key, self._config.stall_timeout)
        return None

    async def _serve(self, cell: Cell, actor: Actor[Any], ctx: ActorContext[Any]) -> None:
        mailbox = cell.mailbox
        while True:
            envelope = mailbox.get_nowait()
            if envelope is None:
                if cell.quiescent():
                    return
                cell.idle()  # background work runs; wait for its report or for mail
                envelope = await mailbox.get()
                if envelope is None:
                    continue
            await self._handle(cell, actor, ctx, envelope)

    async def _handle(
        self, cell: Cell, actor: Actor[Any], ctx: ActorContext[Any], envelope: Envelope
    ) -> None:
        cell.begin(envelope, anyio.current_time())
        reply = envelope.reply
        try:
            result = await actor.receive(envelope.message, ctx)
        except Exception as error:
            if reply is None:
                raise
            reply.set_error(error)  # an ask's failure is the asker's, not a crash
        else:
            if reply is not None:
                reply.set_value(result)
        cell.finish()

    async def _sweep(self, idle_ttl: float) -> None:
        """Passivate children dormant for ``idle_ttl``; forget failed ones past their cooldown."""
        while True:
            await anyio.sleep(idle_ttl / 4)
            await self._sweep_once(idle_ttl)

    async def _sweep_once(self, idle_ttl: float) -> None:
        # A method of its own so that its locals (every actor it stops) are gone when it
        # returns: a passivated actor is not kept alive until the next sweep.
        stopped = collect_idle(self._cells, anyio.current_time(), idle_ttl)
        if len(stopped) > len(self._cells):
            self._cells = dict(self._cells)  # a dict never shrinks by deletion alone
        self._counters.passivations += len(stopped)
        for key, actor in stopped:
            await stop_actor(key, actor, self._config.drain_timeout)

    def _after_crash(self, cell: Cell, error: Exception) -> float | None:
        """Count the crash; return the backoff, or ``None`` if the child is now failed."""
        cause = root_cause(error)
        self._counters.restarts += 1
        if isinstance(cause, ActorStalledError):
            self._counters.stalls += 1
        delay = after_crash(cell, cause, self._config.restart, self._rng, self._dead_letters)
        if delay is None:
            self._counters.failures += 1
        return delay

    # -- inspection ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the supervisor accepts messages (entered, not closing)."""
        return self._phase is _Phase.RUNNING

    def __contains__(self, key: object) -> bool:
        return key in self._cells

    def status(self) -> SupervisorStatus:
        """Return a frozen snapshot of every live child and the counters."""
        now = anyio.current_time()
        return SupervisorStatus(
            children=tuple(cell.status(now) for cell in self._cells.values()),
            statistics=self.statistics(),
        )

    def statistics(self) -> SupervisorStatistics:
        """Return the counters since start."""
        counters = self._counters
        return SupervisorStatistics(
            live=len(self._cells),
            spawned=counters.spawned,
            delivered=counters.delivered,
            restarts=counters.restarts,
            stalls=counters.stalls,
            passivations=counters.passivations,
            failures=counters.failures,
            evictions=counters.evictions,
            dead_letters=self._dead_letters.count,
            timer_wakeups=self._timers.wakeups,
            timers_queued=len(self._timers),
        )
