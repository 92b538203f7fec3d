"""Every error of the thread actor and its ports, rooted in :class:`ThreadError`.

The agent errors belong to the ``AgentRunner`` port: an agent raises one of them to say how a
run ended, and the thread tells the user accordingly. Their messages carry no payloads and
no secrets.
"""

from __future__ import annotations

from actors import ActorError


class ThreadError(ActorError):
    """Root of every error raised by the thread actor or its ports."""


class AgentError(ThreadError):
    """Root of the errors an agent runner (a port) raises to say how a run ended."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CredentialsExhaustedError(AgentError):
    """Raised when no API key is usable; ``retry_after`` says when one is expected back."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AgentUnavailableError(AgentError):
    """Raised when the model provider failed after retries (5xx, timeouts, dropped streams)."""


class AgentRejectedError(AgentError):
    """Raised when the provider refused the request itself (bad request, content too long)."""


class MediaUnusableError(AgentError):
    """Raised when a file sent with the input cannot be used: it could not be downloaded
    (too big, expired), it is not what it claims, it is empty or corrupt, or nothing here
    reads its kind. ``reason`` is said to the user as it is: plain, naming what is
    supported."""


class ReplyUndeliveredError(ThreadError):
    """Raised by a ``ReplyStream``'s ``finish`` or ``abort`` (a port) when the answer could not
    be shown; the run then reports that it could not be delivered (logged without a
    traceback: it is an outcome, not a bug)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
