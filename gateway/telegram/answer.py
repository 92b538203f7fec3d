"""One streamed answer, between the run that writes it and the chat sender that shows it.

Rules:

* An answer's stream and its chat's sender share the ``Answer`` and nothing else; each writes
  only its own half. The stream writes the text (latest wins) and how it ended; the sender
  writes what is shown (the messages and their texts), the ``queued`` mark and the outcome.
* The stream never waits for Telegram while the agent writes: ``publish`` returns at once,
  and tells the sender (``AnswerReady``) only when the answer is not already queued with it.
  However many chunks arrive meanwhile, the sender's next request carries all of them. An
  ending is always told: it changes what the sender may do next (a final text goes where a
  partial update may not).
* The answer owns its messages: only its sender sends or edits them, one request at a time,
  so a cancelled answer never leaves a second, stray message. What has not gone out when it
  ends goes out in its final text; what has is edited.
* An answer ends once: ``FINISHED`` (complete), ``ABORTED`` (shown cut off), or ``WITHDRAWN``
  (the stream gave up waiting: what is out is edited to show it is cut off, nothing new is
  sent). One change of mind: a finished answer whose run was cancelled while it was being
  delivered is aborted after all. The outcome is delivered, or the ``SendFailedError`` that
  stopped it.
"""

from __future__ import annotations

import enum
import math

import attrs

from actors import Reply
from actors.thread.records import ThreadKey
from gateway.exceptions import SendFailedError
from gateway.telegram.markup import Piece, pieces

CUT_OFF = " …\n[answer cut off]"
EMPTY = "(the agent gave an empty answer)"


class Ending(enum.Enum):
    """How far an answer is."""

    OPEN = "open"
    """Still being written."""
    FINISHED = "finished"
    """Complete: its final text is what the user must see."""
    ABORTED = "aborted"
    """Incomplete: shown as written so far, marked cut off."""
    WITHDRAWN = "withdrawn"
    """Given up: nothing more is sent; what is out is marked cut off."""


@attrs.frozen
class AnswerReady:
    """Told to a chat sender: ``answer`` has text or an ending it has not shown yet."""

    answer: Answer
    """The answer (its sender queues it once, however often it is told)."""


@attrs.frozen
class Delivered:
    """The outcome of a delivered answer."""

    message_ids: tuple[int, ...]
    """The messages it became, in order (none for an aborted answer with no text)."""


@attrs.define(eq=False)
class Answer:
    """One answer in one thread (see the module's rules)."""

    id: int
    key: ThreadKey
    reply_to: int | None
    _text: str = attrs.field(default="", init=False)
    _ending: Ending = attrs.field(default=Ending.OPEN, init=False)
    _queued: bool = attrs.field(default=False, init=False)
    _message_ids: list[int] = attrs.field(factory=list, init=False)
    _shown: list[str] = attrs.field(factory=list, init=False)
    _outcome: Reply = attrs.field(factory=Reply, init=False)
    _last_request: float = attrs.field(default=-math.inf, init=False)
    _retry_at: float = attrs.field(default=-math.inf, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _failed: bool = attrs.field(default=False, init=False)
    _told: bool = attrs.field(default=False, init=False)
    _covered: int = attrs.field(default=0, init=False)
    _plain: bool = attrs.field(default=False, init=False)

    # -- the stream's half ---------------------------------------------------------------

    @property
    def text(self) -> str:
        return self._text

    @property
    def ending(self) -> Ending:
        return self._ending

    @property
    def visible(self) -> bool:
        """Whether any of it has gone out."""
        return bool(self._message_ids)

    def publish(self, more: str) -> bool:
        """Add ``more`` to the text; ``True`` if the sender must be told (not queued yet)."""
        if self._ending is not Ending.OPEN:
            return False
        self._text += more
        return self._mark_queued()

    def end(self, ending: Ending) -> bool:
        """End the answer (once); ``True`` if the sender must be told."""
        if self._ending is Ending.FINISHED and ending is Ending.ABORTED and not self._failed:
            # Cancelled while (or after) its final text was delivered: it shows as cut off.
            self._outcome = Reply()
        elif self._ending is not Ending.OPEN or ending is Ending.OPEN:
            return False
        if ending is Ending.FINISHED and not self._text.strip():
            self._text = EMPTY
        self._ending = ending
        if self.settled or self._nothing_to_show():
            self._outcome.set_value(Delivered(tuple(self._message_ids)))
            return self._told  # a sender that has seen it must let go of it
        self._queued = self._told = True
        return True  # even if queued: its sender may be waiting for nothing but this

    def withdraw(self) -> bool:
        """The stream stops waiting before the outcome: nothing new goes out, and what is
        out is marked cut off. ``True`` if the sender must be told."""
        if self.settled:
            return False
        self._ending = Ending.WITHDRAWN
        self._queued = self._told = True
        return True

    def unqueue(self) -> None:
        """The sender could not be told: the next ``publish`` or ``end`` tries again."""
        self._queued = False

    async def outcome(self) -> Delivered:
        """Wait until the answer is delivered, or raise the ``SendFailedError`` that stopped
        it."""
        delivered = await self._outcome.wait()
        assert isinstance(delivered, Delivered)
        return delivered

    # -- the sender's half ---------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Whether the outcome is set (delivered or failed): nothing more to do."""
        return self._outcome.done

    @property
    def final(self) -> bool:
        return self._ending is not Ending.OPEN

    @property
    def message_ids(self) -> tuple[int, ...]:
        return tuple(self._message_ids)

    @property
    def last_request(self) -> float:
        return self._last_request

    @property
    def failures(self) -> int:
        """Transient failures in a row."""
        return self._failures

    @property
    def retry_at(self) -> float:
        return self._retry_at

    @property
    def plain(self) -> bool:
        """Telegram refused its markup once: it goes on as plain text."""
        return self._plain

    def use_plain(self) -> None:
        self._plain = True

    def pieces(self) -> list[Piece]:
        """The messages the answer is now (its final form once it has ended)."""
        if self._ending is Ending.OPEN or self._ending is Ending.FINISHED:
            return pieces(self._text)
        if self._ending is Ending.WITHDRAWN:  # what is out, marked cut off; nothing new
            return pieces(self._text[: self._covered], suffix=CUT_OFF)
        return pieces(self._text, suffix=CUT_OFF)

    def next_request(self) -> tuple[int, Piece] | None:
        """Which message to send (index past the last) or edit next, and with what; ``None``
        when everything shown is up to date."""
        shown = self._shown
        for index, piece in enumerate(self.pieces()):
            if index >= len(shown):
                if self._ending is Ending.WITHDRAWN:
                    return None
                return index, piece
            if piece.html != shown[index]:
                return index, piece
        return None

    def dequeue(self) -> None:
        """The sender has nothing to do for the answer until it is told again."""
        self._queued = False

    def sent(self, index: int, message_id: int, html: str, now: float, covered: int) -> None:
        """Message ``index`` went out (or was edited) with ``html``, rendered from the first
        ``covered`` characters of the text."""
        if self._ending is not Ending.WITHDRAWN:  # a withdrawn one shows no more than it did
            self._covered = max(self._covered, covered)
        if index >= len(self._message_ids):
            self._message_ids.append(message_id)
            self._shown.append(html)
        else:
            self._shown[index] = html
        self._last_request, self._failures = now, 0

    def retry_later(self, at: float) -> int:
        """A transient failure: try again at ``at``. Returns how many in a row."""
        self._failures += 1
        self._retry_at = at
        return self._failures

    def settle_if_done(self) -> bool:
        """Set the outcome if the answer ended and everything is shown; whether it is set."""
        if self.final and not self.settled and self.next_request() is None:
            self._outcome.set_value(Delivered(tuple(self._message_ids)))
        return self.settled

    def fail(self, error: SendFailedError) -> None:
        """Delivery failed for good: nothing more goes out for this answer."""
        self._failed = True
        self._outcome.set_error(error)
        self._queued = False

    def _mark_queued(self) -> bool:
        if self._queued:
            return False
        self._queued = self._told = True
        return True

    def _nothing_to_show(self) -> bool:
        return self._ending is Ending.ABORTED and not self._text.strip() and not self._message_ids
