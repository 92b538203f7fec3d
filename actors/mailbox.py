"""A bounded FIFO mailbox with a priority lane for control messages.

Rules:

* Order is FIFO within a lane; the control lane is always served first.
* A full lane never drops: ``put_nowait`` raises :class:`MailboxFullError`, ``put`` waits
  for room (or raises, under :attr:`OverflowPolicy.REJECT`).
* Only one task consumes (the actor's loop); any number may produce.
* An empty mailbox holds no queue: a lane's deque is made by its first message and let go of
  when the consumer finds both lanes empty (a dormant actor keeps none).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import anyio
import attrs

from actors.envelope import Envelope
from actors.exceptions import MailboxClosedError, MailboxFullError
from actors.policy import OverflowPolicy


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox's counters."""

    depth: int
    """Messages queued in the normal lane."""
    control_depth: int
    """Messages queued in the control lane."""
    high_water: int
    """The largest total depth ever seen."""
    handled: int
    """Messages taken out by the consumer so far."""
    capacity: int
    """Capacity of the normal lane."""
    waiting_senders: int
    """Senders currently waiting for room."""


@attrs.define(eq=False)
class Mailbox:
    """The queue one actor consumes; it outlives the actor's restarts."""

    _key: Any
    _capacity: int = 1024
    _control_capacity: int = 64
    _overflow: OverflowPolicy = OverflowPolicy.WAIT
    # Lazily created (and let go of once empty: ``get_nowait``): most mailboxes are empty
    # most of the time, never see a control message or a waiting sender.
    _normal: deque[Envelope] | None = attrs.field(default=None, init=False)
    _control: deque[Envelope] | None = attrs.field(default=None, init=False)
    _senders: deque[anyio.Event] | None = attrs.field(default=None, init=False)
    _getter: anyio.Event | None = attrs.field(default=None, init=False)
    _closed: bool = attrs.field(default=False, init=False)
    _high_water: int = attrs.field(default=0, init=False)
    _handled: int = attrs.field(default=0, init=False)

    def __len__(self) -> int:
        return (len(self._normal) if self._normal else 0) + (
            len(self._control) if self._control else 0
        )

    @property
    def closed(self) -> bool:
        """Whether the mailbox refuses new messages."""
        return self._closed

    def put_nowait(self, envelope: Envelope) -> None:
        """Enqueue ``envelope`` or raise at once if its lane is full or the mailbox closed."""
        if self._closed:
            raise MailboxClosedError(f"mailbox of actor {self._key!r} is closed")
        if envelope.control:
            if self._control is None:
                self._control = deque()
            if len(self._control) >= self._control_capacity:
                raise MailboxFullError(self._key, self._control_capacity, control=True)
            self._control.append(envelope)
        else:
            if self._normal is None:
                self._normal = deque()
            if len(self._normal) >= self._capacity:
                raise MailboxFullError(self._key, self._capacity)
            self._normal.append(envelope)
        depth = len(self)
        if depth > self._high_water:
            self._high_water = depth
        self.nudge()

    async def put(self, envelope: Envelope) -> None:
        """Enqueue ``envelope``, waiting for room under :attr:`OverflowPolicy.WAIT`."""
        while True:
            try:
                self.put_nowait(envelope)
            except MailboxFullError:
                if envelope.control or self._overflow is OverflowPolicy.REJECT:
                    raise
            else:
                return
            if self._senders is None:
                self._senders = deque()
            event = anyio.Event()
            self._senders.append(event)
            try:
                await event.wait()
            except BaseException:
                if event.is_set():
                    self._wake_sender()  # pass the room we were given on to the next sender
                elif self._senders and event in self._senders:
                    self._senders.remove(event)
                raise

    def push_front(self, envelope: Envelope) -> None:
        """Put ``envelope`` back at the head of its lane (a retry); capacity is not checked."""
        if envelope.control:
            if self._control is None:
                self._control = deque()
            self._control.appendleft(envelope)
        else:
            if self._normal is None:
                self._normal = deque()
            self._normal.appendleft(envelope)
        self.nudge()

    def get_nowait(self) -> Envelope | None:
        """Take the next envelope, control lane first; ``None`` when both lanes are empty
        (and then their deques are let go of)."""
        if self._control:
            envelope = self._control.popleft()
        elif self._normal:
            envelope = self._normal.popleft()
            if self._senders:
                self._wake_sender()
        else:
            self._normal = self._control = None
            return None
        self._handled += 1
        return envelope

    async def get(self) -> Envelope | None:
        """Wait for the next envelope.

        Returns ``None`` when woken by :meth:`nudge` with nothing queued, so the consumer can
        re-check its own conditions (shutdown, passivation).

        Raises:
            MailboxClosedError: the mailbox is closed and empty.
        """
        envelope = self.get_nowait()
        if envelope is not None:
            return envelope
        if self._closed:
            raise MailboxClosedError(f"mailbox of actor {self._key!r} is closed")
        event = self._getter = anyio.Event()
        try:
            await event.wait()
        finally:
            self._getter = None
        return self.get_nowait()

    def nudge(self) -> None:
        """Wake the consumer if it is waiting."""
        if self._getter is not None:
            self._getter.set()

    def close(self) -> list[Envelope]:
        """Refuse new messages; return (and remove) everything still queued."""
        self._closed = True
        rest = [*(self._control or ()), *(self._normal or ())]
        self._normal = self._control = None
        while self._senders:
            self._wake_sender()
        self.nudge()
        return rest

    def statistics(self) -> MailboxStatistics:
        """Return a snapshot of the counters."""
        return MailboxStatistics(
            depth=len(self._normal) if self._normal else 0,
            control_depth=len(self._control) if self._control else 0,
            high_water=self._high_water,
            handled=self._handled,
            capacity=self._capacity,
            waiting_senders=len(self._senders) if self._senders else 0,
        )

    def _wake_sender(self) -> None:
        assert self._senders
        self._senders.popleft().set()
        if not self._senders:
            self._senders = None
