"""The messages a chat's sender takes (besides ``AnswerReady`` and ``React``)."""

from __future__ import annotations

import attrs

from actors.thread.records import ThreadKey
from gateway.telegram.markup import Piece


@attrs.frozen
class Notice:
    """Send ``text`` to a thread: told, queued ahead of every answer's update."""

    key: ThreadKey
    """Where."""
    text: str
    """What (split into several messages if long)."""
    reply_to: int | None = None
    """The message it answers."""
    fenced: bool = True
    """A thread's: sent only while this replica holds the chat's shard. ``False``: a reply
    of the intake (an ignored update, a pairing code), sent by the replica that received
    the update, whoever holds the chat."""


@attrs.frozen
class Typing:
    """Show "typing…" in the thread (cosmetic: not paced per chat, failures logged)."""

    key: ThreadKey
    """Where."""


@attrs.frozen
class Wake:
    """Told by the sender to itself when the next request may go."""


@attrs.frozen
class NoticePiece:
    """One message of a notice, queued."""

    key: ThreadKey
    """Where."""
    piece: Piece
    """What."""
    reply_to: int | None
    """The message it answers (the first piece of a notice only)."""
    plain: bool = False
    """Telegram rejected its markup: it goes as plain text."""
    fenced: bool = True
    """A thread's: sent only while this replica holds the chat's shard. ``False``: a reply
    of the intake (an ignored update, a pairing code), sent by the replica that received
    the update, whoever holds the chat."""
