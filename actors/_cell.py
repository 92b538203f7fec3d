"""The runtime record of one supervised child. Owned by its supervisor; never shared out.

Only the child's own supervision task changes it (state, handling, restarts), except
:meth:`Cell.progress`, which the child's own tasks call, and reads for status snapshots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import anyio
import attrs

from actors.actor import Actor
from actors.envelope import Envelope
from actors.mailbox import Mailbox
from actors.status import ChildState, ChildStatus


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
    _stall_scope: anyio.CancelScope | None = None
    _background: int = 0
    _failed_until: float | None = None

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

    def start(self, actor: Actor[Any]) -> None:
        """A new incarnation begins."""
        self._actor = actor
        self._state = ChildState.STARTING
        self._background = 0

    def idle(self) -> None:
        self._state = ChildState.IDLE

    def backing_off(self) -> None:
        self._state = ChildState.BACKING_OFF
        self._actor = None

    def quiescent(self) -> bool:
        """Empty mailbox, no background work, and the actor agrees to stop."""
        return (
            not len(self._mailbox)
            and not self._background
            and self._actor is not None
            and self._actor.can_passivate()
        )

    def begin(self, envelope: Envelope, now: float, scope: anyio.CancelScope) -> None:
        """Start handling ``envelope`` under the watchdog ``scope``."""
        self._state = ChildState.BUSY
        self._handling = envelope
        self._handling_since = now
        self._stall_scope = scope

    def finish(self, now: float) -> None:
        """The current message was handled: that is progress."""
        self._handling = None
        self._stall_scope = None
        self._last_progress = now

    def take_handling(self) -> Envelope | None:
        """Return (and forget) the message that was being handled when the incarnation ended."""
        envelope, self._handling, self._stall_scope = self._handling, None, None
        return envelope

    def progress(self, now: float) -> None:
        """A heartbeat: push the watchdog deadline of the current message forward."""
        self._last_progress = now
        if self._stall_scope is not None:
            self._stall_scope.deadline = now + self._stall_timeout

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
            detail=tuple((name, str(value)) for name, value in detail.items()),
        )
