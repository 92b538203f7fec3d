"""Dead letters: messages that end without being handled, and why. Never silent."""

from __future__ import annotations

import enum
from collections.abc import Hashable

import attrs
from loguru import logger


class DeadLetterReason(enum.Enum):
    """Why a message was not handled."""

    CRASHED = "crashed"
    """Handling it crashed (or stalled) the actor twice: once, and on the one retry."""
    FAILED = "failed"
    """It was queued when its actor was marked failed."""
    SHUTDOWN = "shutdown"
    """It was still queued when the supervisor shut down (handed back)."""


@attrs.frozen
class DeadLetter:
    """A message the runtime gives up on, handed to the supervisor's dead-letter handler."""

    key: Hashable
    """The actor it was for."""
    message: object
    """The message itself."""
    reason: DeadLetterReason
    """Why it was not handled."""
    detail: str
    """A short human-readable explanation (no payload, no secrets)."""


def log_dead_letter(letter: DeadLetter) -> None:
    """The default handler: one warning line per dead letter."""
    logger.warning(
        "dead letter for actor {key!r}: {kind} ({reason}: {detail})",
        key=letter.key,
        kind=type(letter.message).__name__,
        reason=letter.reason.value,
        detail=letter.detail,
    )
