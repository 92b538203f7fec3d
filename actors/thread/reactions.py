"""Reactions as acknowledgement (``ThreadSettings.reactions``).

Rules:

* A user message queued behind an active run gets 👀 (``Outbox.react``), after the write
  that queued it, marked ``PendingInput.reacted`` in the record.
* When such a message is concluded (any final outcome), its reaction is cleared
  (``react(..., None)``), once, after the write that concluded it, whether that write
  succeeded or raised: one that raised may have landed (its answer lost), and then nobody
  would clear it. One that did not land crashes the thread, whose next incarnation holds
  the message still, marked, and clears it again when it concludes it: a second clearing
  is harmless, a 👀 left forever is not. The mark is in the record, so a restart clears it
  too (``actors.thread.failure`` clears it for a thread marked failed). A message whose
  write to queue it raised may be cleared without having shown 👀 (harmless too).
* A reaction never fails the thread: ``Outbox.react`` does not raise, and if it did, that
  is logged (``ThreadIO.react``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from actors.thread.io import ThreadIO
from actors.thread.records import Concluded, PendingInput

EYES = "👀"
"""Seen; the thread is busy with an earlier message."""


@attrs.define(eq=False)
class Reactions:
    """The messages of one thread that show 👀."""

    _io: ThreadIO
    _enabled: bool
    _shown: set[int] | None = None
    """``None`` while none does (most threads, most of the time: no empty set each)."""

    def restore(self, held: Iterable[PendingInput]) -> None:
        """After a restart: the held inputs marked ``reacted`` show 👀."""
        self._shown = {p.message_id for p in held if p.reacted} or None

    def mark(self, pending: PendingInput) -> PendingInput:
        """``pending``, queued behind a run: marked to get 👀 (if reactions are on)."""
        return attrs.evolve(pending, reacted=True) if self._enabled else pending

    def show(self, pending: PendingInput) -> None:
        """React 👀 to ``pending`` if it is marked (after the write that queued it)."""
        if pending.reacted and (self._shown is None or pending.message_id not in self._shown):
            if self._shown is None:
                self._shown = set()
            self._shown.add(pending.message_id)
            self._io.react(pending.message_id, EYES)

    def concluded(self, concluded: Sequence[Concluded]) -> None:
        """Clear the 👀 of each message ``concluded`` finally (after the write)."""
        for c in concluded:
            if c.outcome.final and self._shown and c.message_id in self._shown:
                self._shown.discard(c.message_id)
                self._io.react(c.message_id, None)
        if not self._shown:
            self._shown = None
