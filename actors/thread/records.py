"""Data the thread actor keeps and reports: its key, durable record, inputs and outcomes."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

from actors.thread.settings import Activation


@attrs.frozen(order=True)
class ThreadKey:
    """A chat thread: a DM, a group, or one forum topic (the General topic is its own)."""

    chat_id: int
    """Telegram chat id."""
    thread_id: int | None = None
    """``message_thread_id`` of the forum topic; ``None`` outside forums."""
    user_id: int | None = None
    """With per-user group sessions (``group_sessions = "per_user"``): the member whose own
    thread this is; ``None`` otherwise (one thread for everyone in the chat or topic)."""

    @property
    def conversation(self) -> ThreadKey:
        """The chat or topic this thread is in (itself, but for a per-user thread): what
        ``/activation`` and the chat's send pacing apply to."""
        return self if self.user_id is None else ThreadKey(self.chat_id, self.thread_id)

    def __str__(self) -> str:
        text = f"{self.chat_id}" if self.thread_id is None else f"{self.chat_id}:{self.thread_id}"
        return text if self.user_id is None else f"{text}~{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> ThreadKey:
        """The key ``str(key)`` wrote (``chat``, ``chat:topic``, either with ``~user``).

        Raises:
            ValueError: ``text`` is not such a key.
        """
        base, _, user = text.partition("~")
        chat, _, topic = base.partition(":")
        return cls(int(chat), int(topic) if topic else None, int(user) if user else None)


class MediaKind(enum.Enum):
    """What kind of file a user sent."""

    IMAGE = "image"
    """A photo, or an image sent as a document."""
    VOICE = "voice"
    """A voice message."""
    AUDIO = "audio"
    """An audio file."""
    VIDEO_NOTE = "video_note"
    """A round video message (its sound is transcribed)."""
    DOCUMENT = "document"
    """Any other file."""


@attrs.frozen
class MediaRef:
    """A file a user sent, as Telegram names it. Records and history keep this, never bytes:
    the bytes are fetched (again, after a restart) when a run needs them."""

    kind: MediaKind
    """What it is."""
    file_id: str
    """Telegram's id for downloading it (``getFile``)."""
    size: int | None = None
    """Its size in bytes, as Telegram reported it (``None``: not said)."""
    mime_type: str = ""
    """Its MIME type, as the sender's client claimed it (may be wrong)."""
    file_name: str = ""
    """Its file name, for documents and audio files."""
    duration: int | None = None
    """Seconds, for voice, audio and video notes."""


@attrs.frozen
class PendingInput:
    """A user message the thread accepted and has not answered yet."""

    message_id: int
    """Telegram message id (what replies answer, and what the outcome is recorded for)."""
    text: str
    """What the user wrote."""
    attempts: int = 0
    """Runs it was part of that ended without an answer to it (restarts, not user actions)."""
    parked: bool = False
    """Whether the user was told it waits for credentials (told once, however often it waits)."""
    regenerate: bool = False
    """A ``/retry`` of the last turn, which was answered: its answer replaces that turn's in
    the session's history (when it is the run's only input)."""
    media: tuple[MediaRef, ...] = ()
    """The files sent with it (an album's are all here), in the order sent; ``text`` is then
    the caption."""
    user_id: int | None = None
    """Who sent it (usage is counted per user)."""
    reacted: bool = False
    """Whether the thread reacted 👀 to it (queued behind a run): the reaction is cleared
    when it is concluded, after a restart too."""


class Outcome(enum.Enum):
    """How a user message ended. Each message gets exactly one final outcome."""

    ANSWERED = "answered"
    """The agent's answer was delivered."""
    ERROR_REPLIED = "error-replied"
    """The run failed; the user got a reply saying why."""
    DISCARDED_BY_RESET = "discarded-by-reset"
    """A reset dropped it; the user got one notice with the count."""
    STOPPED = "stopped"
    """``/stop`` ended it; the user got a notice."""
    NOT_ADDRESSED = "not-addressed"
    """In a group whose activation is ``mention``: not addressed to the bot (no mention, not
    a reply to it), so no run and no reply; nobody waits for an answer to it."""
    LIMITED = "limited"
    """Its sender was over a daily limit; they were told when it resets. No run."""
    PARKED = "parked"
    """Not final: no API key is usable; it is retried when one is back."""

    @property
    def final(self) -> bool:
        """Whether no other outcome can follow."""
        return self is not Outcome.PARKED


@attrs.frozen
class Concluded:
    """How one user message ended: written together with the record that no longer holds it."""

    message_id: int
    """The message."""
    outcome: Outcome
    """How it ended."""
    detail: str = ""
    """Why, briefly (a command name, a failure kind)."""


@attrs.frozen
class Turn:
    """One message of a session's history."""

    role: str
    """``user``, ``assistant`` or ``system``."""
    content: str
    """Its text; a user's files are in it as placeholders (``[image: caption]``)."""
    media: tuple[MediaRef, ...] = ()
    """The files the user sent with it, as references (Telegram's file id, kind, size;
    never bytes): an agent can fetch one again."""


@attrs.frozen
class Exchange:
    """What an answered run adds to its session's history, written with its conclusion."""

    session_id: str
    """The session whose history it extends."""
    turns: tuple[Turn, ...]
    """The turns, oldest first (the user's, then the agent's)."""
    replaces_last: bool = False
    """It replaces the session's last exchange (``/retry`` of an answered turn)."""


RECENT_IDS = 32
"""How many of the last accepted message ids a record keeps (see ``ThreadRecord.recent``)."""


@attrs.frozen
class ThreadRecord:
    """What a thread actor persists after every change, so a restart loses nothing."""

    session_id: str
    """The current session (a reset starts a new one)."""
    generation: int = 0
    """Bumped by every reset; never decreases."""
    run_seq: int = 0
    """Id of the last run started; reports of other runs are stale."""
    in_flight: tuple[PendingInput, ...] = ()
    """Inputs of the run that was active when this was saved."""
    queued: tuple[PendingInput, ...] = ()
    """Inputs waiting for the next turn (or for a usable key, when parked)."""
    parked: bool = False
    """Waiting for credentials (the user was told)."""
    last_inputs: tuple[str, ...] = ()
    """Texts of the last turn started, for ``/retry``."""
    model: str | None = None
    """The session's model, if switched with ``/model``."""
    recent: tuple[int, ...] = ()
    """Ids of the last messages the thread accepted (``RECENT_IDS`` at most), written with
    what each did: a message handled again (the retry after a crash) is recognized and
    ignored, so handling is idempotent."""
    last_answered: bool = False
    """Whether the last run begun was answered (then ``/retry`` replaces its turn)."""
    last_media: tuple[MediaRef, ...] = ()
    """The files of the last turn started, for ``/retry`` (references, never bytes)."""

    def accepted(self, message_id: int) -> bool:
        """Whether the thread took ``message_id`` in: it holds it, or concluded it lately.
        Such a message is the thread's to conclude; nobody else may (a dead letter of it)."""
        return accepted(message_id, self.recent, (*self.in_flight, *self.queued))


def accepted(message_id: int, recent: Sequence[int], held: Iterable[PendingInput]) -> bool:
    """Whether a thread that accepted ``recent`` lately and holds ``held`` took
    ``message_id`` in."""
    return message_id in recent or any(p.message_id == message_id for p in held)


def interrupted(
    inputs: tuple[PendingInput, ...], max_attempts: int
) -> tuple[list[PendingInput], list[PendingInput]]:
    """The inputs of a run a restart interrupted, each counting one attempt more: those to
    retry, and those given up on after ``max_attempts``."""
    counted = [attrs.evolve(p, attempts=p.attempts + 1) for p in inputs]
    return (
        [p for p in counted if p.attempts < max_attempts],
        [p for p in counted if p.attempts >= max_attempts],
    )


class ThreadPhase(enum.Enum):
    """What a thread is doing."""

    IDLE = "idle"
    RUNNING = "running"
    PARKED = "parked"


@attrs.frozen
class ThreadStatus:
    """One thread at one moment (the answer to a ``StatusQuery``)."""

    key: ThreadKey
    """The thread."""
    phase: ThreadPhase
    """Idle, running or parked."""
    session_id: str
    """The current session."""
    generation: int
    """Resets so far."""
    queued: int
    """Inputs waiting for the next turn."""
    run_age: float | None
    """Seconds the current run has been going; ``None`` when none is."""
    activation: Activation | None = None
    """When it answers, for a group or topic thread (``None``: a private chat, which always
    answers)."""
