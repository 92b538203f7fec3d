"""Every error the actor core raises, rooted in :class:`ActorError`.

Errors are named after the state they report. Their messages never carry message payloads,
so nothing a user typed (or a secret an adapter held) leaks into logs through them.
"""

from __future__ import annotations

from typing import Any


class ActorError(Exception):
    """Root of every error raised by the actor core."""


class MailboxFullError(ActorError):
    """Raised when a mailbox is at capacity and the send may not wait for room."""

    def __init__(self, key: Any, capacity: int, *, control: bool = False) -> None:
        lane = "control lane" if control else "mailbox"
        super().__init__(f"{lane} of actor {key!r} is full (capacity {capacity})")
        self.key = key
        self.capacity = capacity
        self.control = control


class MailboxClosedError(ActorError):
    """Raised when a message is sent to a mailbox that no longer accepts messages."""


class SupervisorClosedError(ActorError):
    """Raised when a message is routed through a supervisor that is not running or is closing."""


class ActorFailedError(ActorError):
    """Raised when an actor exceeded its restart intensity and is marked failed for a while."""

    def __init__(self, key: Any, retry_after: float) -> None:
        super().__init__(
            f"actor {key!r} is failed (restarted too often); it is respawned "
            f"on the first message after {retry_after:.1f}s"
        )
        self.key = key
        self.retry_after = retry_after


class ActorCrashedError(ActorError):
    """Raised to an asker when its message crashed the actor twice and was dead-lettered."""


class ActorStalledError(ActorError):
    """Raised (as the crash reason) when an actor handled one message too long without progress."""

    def __init__(self, key: Any, stall_timeout: float) -> None:
        super().__init__(f"actor {key!r} made no progress for {stall_timeout:.1f}s")
        self.key = key
        self.stall_timeout = stall_timeout


class AskTimeoutError(ActorError, TimeoutError):
    """Raised when an ``ask`` got no reply within its timeout."""


class ActorStoppedError(ActorError):
    """Raised to an asker whose message was still queued when the actor stopped for good."""
