"""Configuration records of the runtime: overflow, restart and supervision policies."""

from __future__ import annotations

import enum
import random

import attrs


class OverflowPolicy(enum.Enum):
    """What a full mailbox does with a ``send`` (``send_nowait`` always raises when full)."""

    WAIT = "wait"
    """``send`` waits for room: back-pressure on the sender."""
    REJECT = "reject"
    """``send`` raises :class:`~actors.exceptions.MailboxFullError` at once."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RestartPolicy:
    """One-for-one restarts with exponential backoff, jitter and an intensity limit."""

    max_restarts: int = 5
    """Restarts allowed within ``within`` seconds; one more marks the child failed."""
    within: float = attrs.field(default=60.0, validator=_positive)
    """Length of the sliding window, in seconds, over which restarts are counted."""
    backoff_initial: float = attrs.field(default=0.1, validator=_positive)
    """Delay before the first restart in a window, in seconds."""
    backoff_max: float = attrs.field(default=10.0, validator=_positive)
    """Upper bound of the delay, in seconds, before jitter."""
    jitter: float = 0.2
    """Relative jitter: the delay is multiplied by a uniform factor in ``[1 - j, 1 + j]``."""
    failed_cooldown: float = attrs.field(default=60.0, validator=_positive)
    """How long a failed child refuses messages before the next message respawns it."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the backoff before restart number ``attempt`` (1-based) within the window."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** max(0, attempt - 1))
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


@attrs.frozen
class SupervisorConfig:
    """How a supervisor runs its children."""

    mailbox_capacity: int = 1024
    """Queued messages per child (the normal lane)."""
    control_capacity: int = 64
    """Queued control messages per child (the priority lane)."""
    overflow: OverflowPolicy = OverflowPolicy.WAIT
    """What ``send`` does when the normal lane is full."""
    stall_timeout: float = attrs.field(default=30.0, validator=_positive)
    """A child handling one message this long without progress is cancelled and restarted."""
    idle_ttl: float | None = 300.0
    """A child idle this long is passivated (stopped and forgotten); ``None`` keeps it."""
    drain_timeout: float = 5.0
    """On graceful shutdown, how long children may drain their mailboxes before cancellation."""
    restart: RestartPolicy = RestartPolicy()
    """Restart policy applied to every child."""
