"""Dead letters: messages that end without being handled, and why. Never silent."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable

import attrs
from loguru import logger

from actors.envelope import Envelope
from actors.exceptions import ActorCrashedError, ActorStoppedError


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


@attrs.define(eq=False)
class DeadLetterOffice:
    """Where a supervisor's given-up messages go, counted.

    Rule: a dead letter with an asker waiting is answered to the asker (``ActorStoppedError``
    at shutdown, else ``ActorCrashedError``), never both; every other one goes to the handler.
    A handler that raises is logged; it never stops supervision.
    """

    _handler: Callable[[DeadLetter], None] = log_dead_letter
    _count: int = attrs.field(default=0, init=False)

    @property
    def count(self) -> int:
        """Dead letters posted so far."""
        return self._count

    def post(
        self, key: Hashable, envelope: Envelope, reason: DeadLetterReason, detail: str
    ) -> None:
        """Give up on ``envelope`` (for the actor ``key``), for ``reason``."""
        self._count += 1
        if envelope.reply is not None:
            error: Exception = (
                ActorStoppedError(f"actor {key!r} stopped: {detail}")
                if reason is DeadLetterReason.SHUTDOWN
                else ActorCrashedError(f"actor {key!r}: {detail}")
            )
            envelope.reply.set_error(error)
            return
        try:
            self._handler(DeadLetter(key, envelope.message, reason, detail))
        except Exception as error:  # noqa: BLE001 - a broken handler must not kill supervision
            logger.exception("dead-letter handler failed for actor {key!r}: {e}", key=key, e=error)
