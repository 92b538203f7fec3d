"""What the thread actor says to users, in one place."""

from __future__ import annotations

import uuid

from actors.thread.messages import FailureKind
from actors.thread.records import ThreadStatus
from actors.thread.settings import Activation

HELP = (
    "Send a message and the agent answers here.\n"
    "/new or /reset: start a new session\n"
    "/stop: stop the current answer and drop queued messages\n"
    "/retry: run the last input again\n"
    "/model NAME: switch this session's model (if allowed)\n"
    "/status: what this thread is doing\n"
    "/status all: every thread and API key (gateway admins only)\n"
    "/usage: your token usage today and this month (/usage all: everyone's, admins only)"
)
"""``/help`` with no reset skills configured (``help`` adds them)."""

HELP_GROUP = (
    "/activation always|mention: answer every message here, or only when addressed "
    "(an @mention or a reply to me; gateway admins only)"
)
"""``/help``'s line for a group or topic."""

BUILT_IN_RESETS = frozenset({"new", "reset"})
"""The reset commands every thread knows; the others in ``reset_commands`` are skills."""


def help_text(reset_commands: frozenset[str], *, group: bool = False) -> str:
    """``/help``: the commands, with ``/activation`` in a group and the configured reset
    skills (such as ``/cc``)."""
    text = f"{HELP}\n{HELP_GROUP}" if group else HELP
    skills = sorted(reset_commands - BUILT_IN_RESETS)
    if not skills:
        return text
    named = ", ".join(f"/{skill}" for skill in skills)
    return (
        f"{text}\n{named}: start a new session with this skill "
        "(text after it is the new session's first message)"
    )


ACTIVATION_PRIVATE = "Private chats always answer every message; /activation is for groups."

_ANSWERS = {
    Activation.ALWAYS: "answers every message",
    Activation.MENTION: "answers only when addressed (an @mention of me, or a reply to me)",
}


def activation_shown(mode: Activation, *, topic: bool) -> str:
    """``/activation`` without an argument."""
    where = "This topic" if topic else "This chat"
    return f"{where} {_ANSWERS[mode]}. /activation always|mention switches it (admins only)."


def activation_usage(mode: Activation) -> str:
    """``/activation`` with an argument it does not know."""
    return f"Usage: /activation always|mention. Now it {_ANSWERS[mode]}."


def activation_admins_only(mode: Activation) -> str:
    """``/activation MODE`` from a user who is not an admin."""
    return f"Only the gateway's admins can switch /activation. Now it {_ANSWERS[mode]}."


def activation_switched(mode: Activation, *, topic: bool) -> str:
    """``/activation MODE`` done."""
    where = "This topic" if topic else "This chat"
    return f"✅ {where} now {_ANSWERS[mode]}."


GAVE_UP = "⚠️ Your message could not be answered: the agent kept failing."
RETRYING = "⚠️ I was interrupted by a restart; answering your message again."
STILL_WORKING = "⏳ Still working on the previous message; I'll answer this next."
NO_KEY_NOW = (
    "🔑 No API key is usable right now. Your message is saved and will be answered "
    "automatically when one is back."
)
RUN_IN_PROGRESS = "A run is in progress; /stop it first."
NOTHING_TO_RETRY = "Nothing to retry yet."

FAILURE_TEXT = {
    FailureKind.CANCELLED: "⚠️ The answer was cancelled ({detail}).",
    FailureKind.STALLED: "⌛ The agent stopped responding ({detail}); the answer was cancelled.",
    FailureKind.TIMED_OUT: "⌛ The answer took too long ({detail}) and was cancelled.",
    FailureKind.UNAVAILABLE: "⚠️ The model provider is unavailable ({detail}). Try again later.",
    FailureKind.REJECTED: "⚠️ The model provider refused the request ({detail}).",
    FailureKind.MEDIA: "⚠️ {detail}",
    FailureKind.ERROR: "⚠️ Something went wrong ({detail}). Try again or /new.",
}


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return uuid.uuid4().hex


def about(seconds: float) -> str:
    """``seconds`` for humans: 'about 5 minutes'."""
    if seconds < 1.5:
        return "a moment"
    if seconds < 90:
        return f"about {round(seconds)} seconds"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} minutes"
    return f"about {seconds / 3600:.1f} hours"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def status_text(status: ThreadStatus) -> str:
    """A thread's ``/status`` reply."""
    parts = [f"Thread {status.key}: {status.phase.value}"]
    if status.run_age is not None:
        parts.append(f"answering for {status.run_age:.0f}s")
    parts.append(f"{plural(status.queued, 'message')} queued")
    parts.append(f"session {status.session_id[:8]} (generation {status.generation})")
    if status.activation is not None:
        parts.append(f"activation {status.activation.value}")
    return ", ".join(parts) + "."


def queue_full(waiting: int) -> str:
    """A message refused because ``waiting`` are queued already."""
    return (
        f"⏳ {plural(waiting, 'message')} already waiting; this one was not queued. "
        "Wait for the answer, or /stop."
    )


def keys_used_up(delay: float) -> str:
    """The thread parked: a key is expected back in ``delay`` seconds."""
    return (
        "🔑 All API keys are used up right now. Your message is saved and will be answered "
        f"automatically when a key is back, expected in {about(delay)}."
    )


def new_session(dropped: int) -> str:
    """A reset's notice, with how many messages it discarded."""
    text = "🆕 New session started."
    if dropped:
        text += f" {plural(dropped, 'earlier message')} discarded unanswered."
    return text


def stopped(*, answering: bool, queued: int) -> str:
    """``/stop``'s reply: whether an answer was cut off, and how many queued messages (not
    counting the ones being answered) were dropped."""
    dropped = f"{plural(queued, 'queued message')} dropped"
    if answering:
        return f"⏹ Stopped the answer; {dropped}." if queued else "⏹ Stopped the answer."
    return f"⏹ {dropped}." if queued else "Nothing to stop."


def describe(status: ThreadStatus) -> dict[str, object]:
    """A thread's columns in the supervisor's status table."""
    return {
        "phase": status.phase.value,
        "generation": status.generation,
        "queued": status.queued,
        "run_age": None if status.run_age is None else round(status.run_age, 3),
    }


def model_reply(
    allowed: tuple[str, ...], current: str | None, wanted: str
) -> tuple[str | None, str]:
    """``/model wanted``: the model to switch to (``None``: no switch) and the reply."""
    if not allowed:
        return None, "Switching models is not enabled here."
    choices = f"Allowed: {', '.join(allowed)}."
    if not wanted:
        return None, f"This session uses {current or 'the default model'}. {choices}"
    if wanted not in allowed:
        return None, f"{wanted} is not allowed. {choices}"
    return wanted, f"This session now uses {wanted} (from the next answer on)."


def thread_failed(count: int) -> str:
    """A thread marked failed concluded ``count`` messages it held."""
    return (
        f"⚠️ Sorry, {plural(count, 'message')} could not be answered: this conversation hit "
        "repeated internal errors. Please send again in a minute."
    )
