"""The envelope a message travels in, and the one-shot reply slot of an ``ask``."""

from __future__ import annotations

import anyio
import attrs


@attrs.define(eq=False)
class Reply:
    """A one-shot slot the actor fills with the answer (or error) to an ``ask``."""

    _event: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _value: object = attrs.field(default=None, init=False)
    _error: BaseException | None = attrs.field(default=None, init=False)

    @property
    def done(self) -> bool:
        """Whether a value or an error was set."""
        return self._event.is_set()

    def set_value(self, value: object) -> None:
        """Deliver ``value`` to the asker (ignored if the slot is already filled)."""
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def set_error(self, error: BaseException) -> None:
        """Deliver ``error`` to the asker (ignored if the slot is already filled)."""
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> object:
        """Wait for the slot to be filled; return the value or raise the error."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.frozen
class Envelope:
    """A message on its way through a mailbox, with the runtime's bookkeeping."""

    message: object
    """The message itself (an ``@attrs.frozen`` record)."""
    control: bool = False
    """Whether it travels in the priority lane."""
    reply: Reply | None = None
    """Where the answer goes when the sender asked; ``None`` for a tell."""
    attempts: int = 0
    """How many times handling it crashed the actor already (at most one retry)."""
