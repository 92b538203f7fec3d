"""API keys as values that never print themselves."""

from __future__ import annotations

import re

import attrs

_KEY_LIKE = re.compile(r"\b(sk|pk|gsk|or)-[A-Za-z0-9_\-]{6,}|\bBearer\s+\S+", re.IGNORECASE)


@attrs.frozen
class ApiKey:
    """An API key with a label. ``repr`` and ``str`` show the label only."""

    label: str
    """A name for logs and status (e.g. ``openai-1``); never the key."""
    secret: str = attrs.field(repr=False)
    """The key itself. Only the HTTP client reads it."""

    def __str__(self) -> str:
        return self.label


def redact(text: str, *secrets: str) -> str:
    """Remove ``secrets`` and anything shaped like an API key or bearer token from ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)
