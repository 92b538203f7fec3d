"""What the thread actor says to users, in one place."""

from __future__ import annotations

import uuid

from actors.thread_messages import FailureKind

HELP = (
    "Send a message and the agent answers here.\n"
    "/new or /reset: start a new session\n"
    "/stop: stop the current answer and drop queued messages\n"
    "/retry: run the last input again\n"
    "/model NAME: switch this session's model (if allowed)\n"
    "/status: what this thread is doing"
)

FAILURE_TEXT = {
    FailureKind.CANCELLED: "⚠️ The answer was cancelled ({detail}).",
    FailureKind.STALLED: "⌛ The agent stopped responding ({detail}); the answer was cancelled.",
    FailureKind.TIMED_OUT: "⌛ The answer took too long ({detail}) and was cancelled.",
    FailureKind.UNAVAILABLE: "⚠️ The model provider is unavailable ({detail}). Try again later.",
    FailureKind.REJECTED: "⚠️ The model provider refused the request ({detail}).",
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
