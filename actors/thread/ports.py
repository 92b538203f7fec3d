"""Ports: what the thread actor needs from the outside world, as protocols.

``gateway/`` and ``providers/`` implement them; ``actors/`` never imports those packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from actors.thread.records import Concluded, Exchange, MediaRef, ThreadKey, ThreadRecord, Turn
from actors.thread.settings import Activation


@attrs.frozen
class TextPart:
    """Text that comes with an input besides what the user typed (a voice note's transcript)."""

    text: str
    """The text."""


@attrs.frozen
class ImagePart:
    """An image, for a model that can see."""

    mime_type: str
    """Its real type (``image/jpeg``, ``image/png``, ``image/webp``, ``image/gif``), as read
    from its bytes."""
    data: bytes = attrs.field(repr=False)
    """The image file's bytes."""


@attrs.frozen
class DocumentPart:
    """A document, read as text."""

    name: str
    """Its file name."""
    text: str
    """Its text (a PDF's extracted text, within the page limit)."""


Part = TextPart | ImagePart | DocumentPart
"""A piece of content an input carries besides its text."""


@attrs.frozen
class RunRequest:
    """What an agent is given for one turn."""

    key: ThreadKey
    """The thread."""
    session_id: str
    """The session whose history the agent should use (and extend, when it finishes)."""
    generation: int
    """The session generation (for logs)."""
    inputs: tuple[str, ...]
    """The user texts of this turn, oldest first (several when messages were queued)."""
    model: str | None = None
    """The model chosen for this session with ``/model``; ``None``: the agent's default."""
    message_ids: tuple[int, ...] = ()
    """The Telegram message ids of ``inputs``, in the same order."""
    regenerate: bool = False
    """A ``/retry`` of the session's last exchange: answer its input afresh, without that
    exchange in the context; the new exchange replaces it."""
    media: tuple[tuple[MediaRef, ...], ...] = ()
    """The files each of ``inputs`` came with, in the same order (empty: text only)."""
    user_ids: tuple[int | None, ...] = ()
    """Who sent each of ``inputs``, in the same order (usage is counted per user)."""
    parts: tuple[tuple[Part, ...], ...] = ()
    """The content of ``media``, fetched and read, one tuple per input: filled in by the
    gateway before the agent is called (the thread actor passes references only)."""


class RunSink(Protocol):
    """Where a running agent puts its output."""

    async def emit(self, text: str) -> None:
        """Append ``text`` to the answer; counts as progress."""

    def heartbeat(self) -> None:
        """Report progress without output (tool calls, thinking)."""

    def remember(self, turns: Sequence[Turn]) -> None:
        """What this turn adds to the session's history. It is written together with the
        run's conclusion if the answer is delivered and the thread records it answered, and
        dropped otherwise (failed, cancelled, parked, cut off): a session's history holds
        the turns its user saw answered, each once."""


class AgentRunner(Protocol):
    """Runs one turn of an agent.

    Must raise a subclass of :class:`~actors.exceptions.AgentError` to say how a failed run
    ended (``CredentialsExhaustedError``, ``AgentUnavailableError``, ``AgentRejectedError``);
    any other exception is reported as an internal error.
    """

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        """Stream the answer to ``request`` into ``sink``; return when it is complete."""


class ReplyStream(Protocol):
    """One streamed answer in the chat (the gateway edits it as text grows)."""

    async def append(self, text: str) -> None:
        """Add ``text`` to the answer."""

    async def finish(self) -> None:
        """The answer is complete: show it; return once it is shown, or raise
        ``ReplyUndeliveredError`` if it cannot be."""

    async def abort(self) -> None:
        """The answer is incomplete: show what there is, marked as cut off (raises like
        ``finish``)."""

    def keepalive(self) -> None:
        """Called ``keepalive_delay`` into the run, then every ``keepalive_interval`` while it
        is active (e.g. to show "typing…" while nothing of the answer is visible). Should
        not raise; if it does, the run logs it and goes on."""


class Outbox(Protocol):
    """Sends to the chat. Calls return promptly: sending is queued, rate-limited elsewhere."""

    async def notice(self, key: ThreadKey, text: str, *, reply_to: int | None = None) -> None:
        """Send a short notice to the thread. If it raises or takes longer than the thread's
        ``notice_timeout``, the thread logs that the notice was not delivered and goes on."""

    def open_stream(
        self, key: ThreadKey, *, reply_to: int | None = None, run_id: int | None = None
    ) -> ReplyStream:
        """Start a streamed answer in the thread, written by run ``run_id`` (its Stop
        button's callback data carries it, and a draft's id is it)."""

    def react(self, key: ThreadKey, message_id: int, emoji: str | None) -> None:
        """Set the bot's reaction to user message ``message_id`` to ``emoji``, or clear it
        (``None``). Returns at once and never raises: a chat that forbids reactions is a
        log line."""


class Siblings(Protocol):
    """The other thread actors of a conversation (per-user threads of one group or topic)."""

    def tell(self, conversation: ThreadKey, message: object) -> None:
        """Tell ``message`` to every live thread of ``conversation``; never raises. Threads
        not live then read what they need from the store when they start."""


class ThreadStore(Protocol):
    """Durable thread state, the outcome of every user message, and session histories."""

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        """Return the saved record, or ``None`` for a thread never seen."""

    async def save(
        self,
        key: ThreadKey,
        record: ThreadRecord,
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        """Replace the saved record (a new ``session_id`` starts a new session), record the
        outcomes ``concluded`` and append ``exchange`` to its session's history, in one
        atomic write: a crash keeps all of it or none."""

    async def load_activation(self, conversation: ThreadKey) -> Activation | None:
        """The activation ``/activation`` chose for ``conversation`` (a group or topic),
        or ``None`` if none was chosen (the settings' default applies)."""

    async def save_activation(self, conversation: ThreadKey, activation: Activation) -> None:
        """Persist ``conversation``'s activation (shared by its per-user threads)."""
