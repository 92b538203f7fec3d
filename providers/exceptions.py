"""Every error the providers raise, rooted in :class:`ProviderError`.

Messages never contain an API key: anything a provider echoes back is passed through
:func:`providers.secrets.redact` first.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Root of every error raised by ``providers``."""


class KeyRejectedError(ProviderError):
    """Raised when the provider refused the key itself (HTTP 401/403): it is disabled."""


class QuotaExhaustedError(ProviderError):
    """Raised when the key's credit or quota is used up (HTTP 402, or 429 insufficient_quota)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(ProviderError):
    """Raised when the key is rate limited (HTTP 429); ``retry_after`` from ``Retry-After``."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailableError(ProviderError):
    """Raised when the provider failed (HTTP 5xx, connection refused or dropped)."""


class HttpTimeoutError(ProviderError):
    """The chat client's HTTP adapter got no connection, or no next bytes, in time; its text
    names the library's error. The client raises it on as ``ProviderTimeoutError``."""


class HttpConnectionError(ProviderError):
    """The chat client's HTTP adapter could not connect, or the connection dropped; its text
    names the library's error. The client raises it on as ``ProviderUnavailableError`` (or
    ``StreamBrokenError`` mid-answer)."""


class ProviderTimeoutError(ProviderUnavailableError):
    """Raised when connecting, or waiting for the next bytes of an answer, took too long."""


class RequestRejectedError(ProviderError):
    """Raised when the provider refused the request (HTTP 400/404/413/422): not the key's fault.

    ``status`` is the HTTP status (a 400 to a request with images: the model cannot see)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StreamBrokenError(ProviderUnavailableError):
    """Raised when a streamed answer was malformed or ended before it was complete."""


class PoolExhaustedError(ProviderError):
    """Raised when no key of a pool is usable; ``retry_after`` is when the first comes back."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AgentUnknownError(ProviderError):
    """Raised when no agent of the configured name exists (or it lacks what it needs)."""
