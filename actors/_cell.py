"""The runtime record of one supervised child. Owned by its supervisor; never shared out.

Only the child's own supervision task changes it (state, handling, restarts), except
:meth:`Cell.progress`, which the child's own tasks call, and reads for status snapshots.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import Any

import anyio
import attrs

from actors.actor import Actor
from actors.envelope import Envelope
from actors.mailbox import Mailbox
from actors.status import ChildState, ChildStatus, Scalar


@attrs.define(eq=False)
class Cell:
    """One child: its mailbox (which survives restarts) and its supervision bookkeeping."""

    _key: Hashable
    _mailbox: Mailbox
    _stall_timeout: float
    _last_progress: float
    _state: ChildState = ChildState.STARTING
    _actor: Actor[Any] | None = None
    _restarts: int = 0
    _window: deque[float] | None = None
    _handling: Envelope | None = None
    _handling_since: float = 0.0
    _watchdog: anyio.CancelScope | None = None
    _background: int = 0
    _failed_until: float | None = None
    _active: bool = False
    _incarnation: int = 0
    _scope: anyio.CancelScope | None = None
    _evicted: bool = False

    @property
    def key(self) -> Hashable:
        return self._key

    @property
    def mailbox(self) -> Mailbox:
        return self._mailbox

    @property
    def state(self) -> ChildState:
        return self._state

    @property
    def failed_until(self) -> float | None:
        return self._failed_until

    @property
    def actor(self) -> Actor[Any] | None:
        """The current incarnation; ``None`` before the first start and while backing off."""
        return self._actor

    @property
    def incarnation(self) -> int:
        """How many actors were built for this child so far (the current one's number)."""
        return self._incarnation

    @property
    def active(self) -> bool:
        """Whether an activation task is running for this child."""
        return self._active

    def activate(self) -> bool:
        """Mark the child active; return ``False`` if it already was."""
        if self._active:
            return False
        self._active = True
        return True

    def evicted(self) -> bool:
        """Whether the supervisor forgot this child (:meth:`evict`): its task only ends.
        (A method: a check of it must not be taken as holding across an ``await``.)"""
        return self._evicted

    def activation_scope(self) -> anyio.CancelScope:
        """The scope of the running activation task, which :meth:`evict` cancels."""
        self._scope = anyio.CancelScope()
        return self._scope

    def evict(self) -> list[Envelope]:
        """Forget this child at once: cancel its activation (the message in hand and its
        background tasks), close its mailbox; return the message in hand and the queued ones."""
        self._evicted = True
        if self._scope is not None:
            self._scope.cancel()
        handling = self.take_handling()
        self._actor = None
        return [*([handling] if handling else []), *self._mailbox.close()]

    def deactivate(self, now: float) -> None:
        """The activation task ended: dormant (no task) until the next message."""
        self._active = False
        self._watchdog = None
        self._scope = None
        if self._state is not ChildState.FAILED:
            self._state = ChildState.IDLE
            self._last_progress = max(self._last_progress, now)

    def dormant_for(self, now: float) -> float:
        """Seconds this child has been dormant and passivatable; 0 if it is not."""
        if self._active or self._state is not ChildState.IDLE or len(self._mailbox):
            return 0.0
        if self._actor is not None and not self._actor.can_passivate():
            return 0.0
        return now - self._last_progress

    def start(self, actor: Actor[Any]) -> None:
        """A new incarnation begins."""
        self._actor = actor
        self._incarnation += 1
        self._state = ChildState.STARTING
        self._background = 0

    def watch(self, scope: anyio.CancelScope) -> None:
        """Use ``scope`` (the activation's) as the watchdog: its deadline cancels a hung handler."""
        self._watchdog = scope

    def idle(self) -> None:
        """Waiting for mail while background work runs: no handler to watch."""
        self._state = ChildState.IDLE
        if self._watchdog is not None:
            self._watchdog.deadline = math.inf

    def backing_off(self) -> None:
        self._state = ChildState.BACKING_OFF
        self._actor = None

    def quiescent(self) -> bool:
        """Empty mailbox and no background work: the activation may end."""
        return not len(self._mailbox) and not self._background

    def begin(self, envelope: Envelope, now: float) -> None:
        """Start handling ``envelope``; starting the next message is progress too."""
        self._state = ChildState.BUSY
        self._handling = envelope
        self._handling_since = now
        self._last_progress = now
        self._arm(now)

    def finish(self) -> None:
        """The current message was handled."""
        self._handling = None

    def take_handling(self) -> Envelope | None:
        """Return (and forget) the message that was being handled when the incarnation ended."""
        envelope, self._handling, self._watchdog = self._handling, None, None
        return envelope

    def progress(self, now: float) -> None:
        """A heartbeat: push the watchdog deadline of the current message forward."""
        self._last_progress = now
        if self._handling is not None:
            self._arm(now)

    def _arm(self, now: float) -> None:
        # The deadline is moved coarsely (to 1.5x ahead, once it is less than 1x ahead), so a
        # busy actor touches its timer about twice per stall period instead of per message.
        # A hung handler is thus cancelled between 1x and 1.5x stall_timeout after progress.
        scope = self._watchdog
        if scope is not None and not now + self._stall_timeout <= scope.deadline < math.inf:
            scope.deadline = now + 1.5 * self._stall_timeout

    def background_started(self) -> None:
        self._background += 1

    def background_ended(self) -> None:
        self._background -= 1
        self._mailbox.nudge()  # the loop re-checks passivation and draining

    def record_restart(self, now: float, within: float) -> int:
        """Count a restart; return how many fall within the last ``within`` seconds."""
        self._restarts += 1
        if self._window is None:
            self._window = deque()
        self._window.append(now)
        while self._window[0] <= now - within:
            self._window.popleft()
        return len(self._window)

    def fail(self, until: float) -> None:
        self._state = ChildState.FAILED
        self._failed_until = until
        self._actor = None

    def status(self, now: float) -> ChildStatus:
        state = self._state
        if state is ChildState.IDLE and self._background:
            state = ChildState.BUSY
        detail = self._actor.describe() if self._actor is not None else {}
        return ChildStatus(
            key=self._key,
            state=state,
            mailbox_depth=len(self._mailbox),
            restarts=self._restarts,
            last_progress_age=max(0.0, now - self._last_progress),
            current_message_age=(
                now - self._handling_since if self._handling is not None else None
            ),
            background_tasks=self._background,
            detail=tuple((name, _scalar(value)) for name, value in detail.items()),
        )


def _scalar(value: object) -> Scalar:
    """A describe() value as a status field: numbers and ``None`` as they are (JSON-able)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
