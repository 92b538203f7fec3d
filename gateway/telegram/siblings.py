"""The thread actor's ``Siblings`` port over the thread supervisor: per-user group sessions.

A per-user thread that switched its conversation's activation tells the conversation's other
threads. Their keys are not known (a per-user key names a member), so the message is
broadcast (``Supervisor.broadcast``): a dormant thread is woken only if its actor
``wants`` it (its own conversation's), and an active thread of another conversation ignores
it. Threads not live read the activation from the store when they start.

The supervisor is built after the actor factory that needs this port, so it is bound late
(``bind``); until then, or if the broadcast fails, ``tell`` logs and returns.
"""

from __future__ import annotations

import attrs
from loguru import logger

from actors import Supervisor
from actors.thread import ThreadKey


@attrs.define(eq=False)
class ThreadSiblings:
    """Tells the live threads of a conversation (``actors.thread.ports.Siblings``)."""

    _supervisor: Supervisor[ThreadKey] | None = attrs.field(default=None, repr=False)
    """Not in the repr: every thread's repr would hold all threads (a traceback's locals)."""

    def bind(self, supervisor: Supervisor[ThreadKey]) -> None:
        """The thread supervisor, once it is built."""
        self._supervisor = supervisor

    def tell(self, conversation: ThreadKey, message: object) -> None:
        if self._supervisor is None:
            logger.warning(
                "{kind} for {conv} not told to its threads: no thread supervisor yet",
                kind=type(message).__name__,
                conv=conversation,
            )
            return
        try:
            told = self._supervisor.broadcast(message, control=True)
        except Exception as error:  # noqa: BLE001 - the port never raises; they read the store
            logger.error(
                "{kind} for {conv} not told to its threads: {e!r}",
                kind=type(message).__name__,
                conv=conversation,
                e=error,
            )
            return
        logger.debug(
            "{kind} for {conv} told to {n} live thread(s)",
            kind=type(message).__name__,
            conv=conversation,
            n=told,
        )
