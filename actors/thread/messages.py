"""The thread actor's protocol: every message it handles, one at a time, in order."""

from __future__ import annotations

import enum

import attrs

from actors.thread.records import MediaRef, ThreadKey
from actors.thread.settings import Activation


@attrs.frozen
class UserMessage:
    """Text a user sent to the thread."""

    message_id: int
    """Telegram message id."""
    text: str
    """The text, as sent."""
    user_id: int | None = None
    """Who sent it."""
    media: tuple[MediaRef, ...] = ()
    """The files sent with it, in order (an album is one message); ``text`` is the caption."""
    addressed: bool = True
    """Whether it is addressed to the bot: always in a private chat; in a group, an
    @mention of the bot (removed from ``text``) or a reply to one of its messages. A thread
    whose activation is ``mention`` answers only these."""


@attrs.frozen
class Command:
    """A bot command (``/name args``), already parsed: no slash, no ``@botname``, lower case."""

    name: str
    """Command name, e.g. ``new``, ``stop``, ``cc``."""
    args: str
    """Everything after the name, stripped."""
    message_id: int
    """Telegram message id of the command."""
    user_id: int | None = None
    """Who sent it."""
    admin: bool = False
    """Whether its sender is one of the gateway's admins (``telegram.admin_users``):
    ``/activation`` is theirs."""


class FailureKind(enum.Enum):
    """Why a run ended without an answer."""

    CANCELLED = "cancelled"
    """The thread cancelled it (stop, reset, interrupt, shutdown)."""
    STALLED = "stalled"
    """No output for ``stall_timeout``."""
    TIMED_OUT = "timed-out"
    """Longer than ``run_timeout``."""
    EXHAUSTED = "exhausted"
    """No API key is usable."""
    UNAVAILABLE = "unavailable"
    """The provider failed after retries."""
    REJECTED = "rejected"
    """The provider refused the request."""
    MEDIA = "media"
    """A file sent with the input could not be used (too big, corrupt, not supported)."""
    ERROR = "error"
    """Anything else (a bug in an agent): logged with its traceback."""


@attrs.frozen
class RunFinished:
    """A run reports that it delivered its answer."""

    run_id: int
    """Which run (stale if not the thread's current one)."""
    generation: int
    """The session generation it ran in."""


@attrs.frozen
class RunFailed:
    """A run reports that it ended without an answer (also sent when it is cancelled)."""

    run_id: int
    """Which run (stale if not the thread's current one)."""
    generation: int
    """The session generation it ran in."""
    kind: FailureKind
    """Why."""
    detail: str = ""
    """A short reason for the user (no secrets)."""
    retry_after: float | None = None
    """For ``EXHAUSTED``: seconds until a key is expected back, if known."""


@attrs.frozen
class CredentialsAvailable:
    """Broadcast by the gateway when a key of the pool is usable again."""


@attrs.frozen
class RetryTick:
    """The parked thread's own timer: time to try again."""

    epoch: int
    """Which parking it belongs to (ticks of an earlier parking are stale)."""


@attrs.frozen
class QueueNoticeTick:
    """The thread's own timer: a message queued behind run ``run_id`` has waited a while."""

    run_id: int
    """The run it waited behind (stale if that run has ended)."""
    message_id: int
    """The queued message the notice answers."""


@attrs.frozen
class KeepaliveTick:
    """The thread's own timer: run ``run_id`` is still going; show that it is alive."""

    run_id: int
    """The run it belongs to (stale if that run has ended)."""


@attrs.frozen
class Recover:
    """Sent by a thread to itself when it starts with inputs its record held: after any report
    the previous incarnation left unhandled, so a run that delivered its answer is concluded
    as answered, and only what is still unanswered is retried."""


@attrs.frozen
class Resume:
    """Sent at start-up to threads with unfinished work; starting the actor resumes it."""


@attrs.frozen
class StatusQuery:
    """Asked (``ref.ask``) for a ``ThreadStatus``; the thread answers without replying in chat."""


@attrs.frozen
class StopRun:
    """Asked (``ref.ask``) when a user pressed an answer's Stop button, or stopped a draft:
    stop run ``run_id`` if it is still the current one, never a later run. Answers ``True``
    if it stopped it, ``False`` if that run had ended already."""

    run_id: int
    """The run whose answer carried the button (or the draft)."""
    user_id: int | None = None
    """Who pressed it."""


@attrs.frozen
class ActivationChanged:
    """Told to the other threads of a conversation (the per-user threads of one group or
    topic) when an admin switched its activation in one of them."""

    conversation: ThreadKey
    """The group or topic (``ThreadKey.conversation``)."""
    activation: Activation
    """Its activation now."""


@attrs.frozen
class DebounceTick:
    """The thread's own timer: the debounce window of the inputs held since ``epoch`` has
    passed without a newer message; time to start their turn."""

    epoch: int
    """Which window it closes (a tick of a window a later message extended is stale)."""
