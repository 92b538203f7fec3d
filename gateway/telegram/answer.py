"""One streamed answer, between the run that writes it and the chat sender that shows it.

Rules:

* An answer's stream and its chat's sender share the ``Answer`` and nothing else; each writes
  only its own half. The stream writes the text (latest wins) and how it ended; the sender
  writes what is shown (the messages and their texts), the ``queued`` mark, when it first
  queued the answer (``opened_at``) and the outcome.
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
* While it streams, an answer written by a run (``run_id``) carries the Stop button on its
  last message, and only there, from ``BUTTON_AFTER`` after its sender first queued it: an
  answer complete sooner never carries one (no request is spent putting it on and taking it
  off), a longer one gets it with its next edit, or alone if its text has not changed. The
  request that shows a new message takes it off the one before (with that message's final
  text, or alone). An ended answer (finished, aborted or
  withdrawn) carries none: its final edit or send goes without it, and where the final text
  is already shown, the button is taken off alone (``editMessageReplyMarkup``).
* A drafted answer (``use_drafts``: a private chat streaming with ``sendMessageDraft``)
  shows the piece being written as the chat's draft, the draft id its run id; the pieces
  before it, complete, go out as messages as soon as the next one starts, and its final
  text as messages (drafts are ephemeral). Its draft carries Telegram's own stop button, so
  it has no Stop button of ours. A draft left unchanged for ``DRAFT_REFRESH`` is shown
  again (Telegram drops a draft after 30 s). A withdrawn drafted answer sends nothing: its
  messages stay as sent, and its draft vanishes. ``stop_drafting`` turns it into an edited
  answer (the chat refused drafts); ``hush`` keeps it drafted but shows no more drafts (a
  draft refused where drafts worked before, as after the user stopped it): its final text
  still goes out as messages.
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
BUTTON_AFTER = 1.0
"""Seconds an answer streams before it shows the Stop button (see the module's rules)."""
DRAFT_REFRESH = 20.0
"""Seconds after which an unchanged draft is shown again (Telegram keeps one for 30 s)."""


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


class Kind(enum.Enum):
    """What a request of an answer does."""

    SEND = "send"
    """Send message ``index`` (the next one)."""
    EDIT = "edit"
    """Edit message ``index``'s text (and its Stop button)."""
    MARKUP = "markup"
    """Put the Stop button on message ``index``, or take it off; its text is up to date."""
    DRAFT = "draft"
    """Show piece ``index`` as the chat's draft."""


@attrs.frozen
class Step:
    """The next request of an answer."""

    kind: Kind
    """What it does."""
    index: int
    """Which message (or, for a draft, which piece)."""
    piece: Piece
    """The text it carries (for ``MARKUP``: the message's text as shown)."""
    button: bool
    """Whether the message carries the Stop button after it."""


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
    run_id: int | None = None
    """The run writing it: its Stop button's callback data and its draft's id carry it."""
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
    _buttons: list[bool] = attrs.field(factory=list, init=False)
    _drafting: bool = attrs.field(default=False, init=False)
    _draft: str | None = attrs.field(default=None, init=False)
    _hushed: bool = attrs.field(default=False, init=False)
    _draft_at: float = attrs.field(default=-math.inf, init=False)
    _opened_at: float = attrs.field(default=-math.inf, init=False)
    _armed: bool = attrs.field(default=False, init=False)
    _rendered: tuple[tuple[str, Ending, int], list[Piece]] | None = attrs.field(
        default=None, init=False
    )
    """The last :meth:`pieces`, with what they were rendered from (rendering is the costly
    part of a step, and a step is asked for several times per request)."""

    # -- the stream's half ---------------------------------------------------------------

    @property
    def text(self) -> str:
        return self._text

    @property
    def ending(self) -> Ending:
        return self._ending

    @property
    def visible(self) -> bool:
        """Whether any of it has gone out (as a message or a draft)."""
        return bool(self._message_ids) or self._draft is not None

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
    def opened_at(self) -> float:
        """When its sender first queued it (``-inf``: not yet)."""
        return self._opened_at

    def opened(self, now: float) -> None:
        """Its sender queues it for the first time at ``now`` (later calls change nothing)."""
        if self._opened_at == -math.inf:
            self._opened_at = now

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

    @property
    def drafting(self) -> bool:
        """Whether the piece being written is shown as a draft (see the module's rules)."""
        return self._drafting

    def use_drafts(self) -> None:
        """Stream as a draft (only before anything of it is shown, and with a run id)."""
        if self.run_id is not None and not self._message_ids and self._draft is None:
            self._drafting = True

    def hush(self) -> None:
        """Show no more drafts; the final text still goes out as messages."""
        self._hushed = True
        self._draft = None

    def stop_drafting(self) -> None:
        """Stream by edits from now on (the chat refused drafts)."""
        self._drafting = False
        self._draft = None

    @property
    def draft_at(self) -> float:
        """When its draft was last shown (``-inf``: not shown)."""
        return self._draft_at if self._draft is not None else -math.inf

    def draft_stale(self, now: float, refresh: float = DRAFT_REFRESH) -> bool:
        """Whether its draft, still being written, has to be shown again to stay (it was
        last shown ``refresh`` seconds ago or more)."""
        stale = self._draft is not None and now >= self._draft_at + refresh
        return stale and self._drafting and self._ending is Ending.OPEN

    def forget_draft(self) -> None:
        """Its draft has to be shown again (stale)."""
        self._draft = None

    @property
    def button(self) -> bool:
        """Whether it carries a Stop button while it streams (from ``button_at`` on)."""
        return self._armed and self.run_id is not None and not self._drafting

    @property
    def button_at(self) -> float:
        """When its Stop button is due on a message already shown (``inf``: never, or it is
        there already, or the answer ended)."""
        wants = self.run_id is not None and not self._drafting and self._message_ids
        if self._armed or not wants or self._ending is not Ending.OPEN:
            return math.inf
        return self._opened_at + BUTTON_AFTER

    def arm(self, now: float) -> None:
        """Show the Stop button from now on if the answer has streamed ``BUTTON_AFTER``
        (its sender calls this before each request)."""
        if not self._armed and now >= self._opened_at + BUTTON_AFTER:
            self._armed = True

    def pieces(self) -> list[Piece]:
        """The messages the answer is now (its final form once it has ended)."""
        ending = self._ending
        if ending is Ending.FINISHED:
            ending = Ending.OPEN  # the same pieces: a quick answer is rendered once
        source = (self._text, ending, self._covered if ending is Ending.WITHDRAWN else 0)
        if self._rendered is not None and self._rendered[0] == source:
            return self._rendered[1]
        if ending is Ending.OPEN:
            parts = pieces(self._text)
        elif ending is Ending.WITHDRAWN:  # what is out, marked cut off; nothing new
            parts = pieces(self._text[: self._covered], suffix=CUT_OFF)
        else:
            parts = pieces(self._text, suffix=CUT_OFF)
        self._rendered = (source, parts)
        return parts

    def next_request(self) -> tuple[int, Piece] | None:
        """Which message to send (index past the last) or edit next, and with what; ``None``
        when everything shown is up to date (``step`` says how)."""
        step = self.step()
        return None if step is None else (step.index, step.piece)

    def step(self) -> Step | None:
        """The next request, or ``None`` when everything shown is up to date."""
        shown, parts = self._shown, self.pieces()
        last = len(parts) - 1
        for index, piece in enumerate(parts):
            button = self.button and self._ending is Ending.OPEN and index == last
            if index >= len(shown):
                if self._ending is Ending.WITHDRAWN:
                    break
                if self._drafting and self._ending is Ending.OPEN and index == last:
                    if self._hushed or piece.html == self._draft:
                        return None
                    return Step(Kind.DRAFT, index, piece, False)
                return Step(Kind.SEND, index, piece, button)
            if piece.html != shown[index]:
                return Step(Kind.EDIT, index, piece, button)
            if button != self._buttons[index]:
                return Step(Kind.MARKUP, index, piece, button)
        for index in range(len(parts), len(shown)):  # fewer pieces than messages now
            if self._buttons[index]:
                return Step(Kind.MARKUP, index, Piece(shown[index], ""), False)
        return None

    def dequeue(self) -> None:
        """The sender has nothing to do for the answer until it is told again."""
        self._queued = False

    def sent(
        self,
        index: int,
        message_id: int,
        html: str,
        now: float,
        covered: int,
        *,
        button: bool = False,
    ) -> None:
        """Message ``index`` went out (or was edited) with ``html``, rendered from the first
        ``covered`` characters of the text, with the Stop button if ``button``."""
        if self._ending is not Ending.WITHDRAWN:  # a withdrawn one shows no more than it did
            self._covered = max(self._covered, covered)
        if index >= len(self._message_ids):
            self._message_ids.append(message_id)
            self._shown.append(html)
            self._buttons.append(button)
            self._draft = None  # a message sent to the chat ends its draft
        else:
            self._shown[index] = html
            self._buttons[index] = button
        self._last_request, self._failures = now, 0

    def marked(self, index: int, button: bool, now: float) -> None:
        """Message ``index`` got the Stop button (``button``) or lost it."""
        self._buttons[index] = button
        self._last_request, self._failures = now, 0

    def drafted(self, html: str, now: float) -> None:
        """The draft now shows ``html`` (it covers nothing: a draft does not stay)."""
        self._draft, self._draft_at = html, now
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
