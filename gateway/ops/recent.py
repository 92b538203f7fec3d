"""The recent outcomes and errors the status page shows: two bounded in-memory rings.

Outcomes are fed by the store as it records them (how each user message ended); errors by a
loguru sink of every warning and error logged (the project's rule: every failure gets a log
line, so the log is where errors happen). Rules:

* Bounded: each ring keeps its last ``size`` entries; a text is cut at ``TEXT_LIMIT``.
* No secrets: the texts are log texts and outcome details, which carry none by the project's
  rules; as a second line of defence every configured secret, and anything shaped like an API
  key or a bearer token, is replaced by ``[redacted]`` (``providers.secrets.redact``).
* Nothing here is durable: the store keeps the outcomes; this is a window on the last ones.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from actors.thread.records import Concluded, ThreadKey
from gateway.config import Config
from gateway.store.postgres import url_secrets
from providers.secrets import redact

if TYPE_CHECKING:
    from loguru import Message

TEXT_LIMIT = 500
"""Characters of one entry's text kept at most."""


def secrets_of(values: Iterable[str]) -> tuple[str, ...]:
    """The non-empty secrets among ``values``, longest first (so a secret that contains
    another is replaced whole)."""
    return tuple(sorted({v for v in values if v}, key=len, reverse=True))


def config_secrets(config: Config) -> tuple[str, ...]:
    """Every secret in ``config`` (``gateway.config.SECRET_KEYS``)."""
    return secrets_of(
        (
            config.telegram.token,
            config.telegram.webhook_secret,
            *config.llm.api_keys,
            *(key for fallback in config.llm.fallbacks for key in fallback.api_keys),
            config.admin.token,
            config.agent.token,
            *url_secrets(config.store.url),
        )
    )


@attrs.frozen
class RecentEntry:
    """One outcome or error, as the status page shows it."""

    at: float
    """Wall-clock time it happened."""
    kind: str
    """The outcome (``answered``, ``error-replied``, ...), or the log level (``warning``,
    ``error``, ``critical``)."""
    thread: str
    """The thread it concerns (``""`` for an error not tied to one)."""
    text: str
    """The message and the outcome's detail, or the error's text (no secrets, at most
    ``TEXT_LIMIT`` characters)."""

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "thread": self.thread, "text": self.text}


@attrs.define
class Recent:
    """The last ``size`` outcomes and the last ``size`` errors.

    Args:
        secrets: every configured secret (bot token, API keys, tokens); none of them is kept.
        size: entries kept per ring.
        clock: the wall clock of ``RecentEntry.at``.
    """

    _secrets: tuple[str, ...] = attrs.field(default=(), converter=secrets_of, alias="secrets")
    _size: int = attrs.field(default=100, alias="size")
    _clock: Callable[[], float] = attrs.field(default=time.time, alias="clock")
    _outcomes: collections.deque[RecentEntry] = attrs.field(init=False)
    _errors: collections.deque[RecentEntry] = attrs.field(init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    """Warnings are logged from worker threads too (the store's)."""

    def __attrs_post_init__(self) -> None:
        self._outcomes = collections.deque(maxlen=self._size)
        self._errors = collections.deque(maxlen=self._size)

    def _clean(self, text: str) -> str:
        text = redact(text, *self._secrets)
        return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"

    def outcome(self, thread: object, concluded: Concluded) -> None:
        """Note how a message of ``thread`` ended (the store's ``on_outcome``)."""
        text = f"message {concluded.message_id}"
        if concluded.detail:
            text += f": {concluded.detail}"
        kind = concluded.outcome.value
        entry = RecentEntry(self._clock(), kind, self._clean(str(thread)), self._clean(text))
        with self._lock:
            self._outcomes.append(entry)

    def error(self, level: str, text: str, thread: object = "") -> None:
        """Note an error (or warning) logged."""
        entry = RecentEntry(
            self._clock(), level.lower(), self._clean(str(thread)), self._clean(text)
        )
        with self._lock:
            self._errors.append(entry)

    def _sink(self, message: Message) -> None:
        record = message.record
        text = record["message"]
        exception = record["exception"]
        if exception is not None and exception.type is not None:
            text += f" [{exception.type.__name__}]"
        key = record["extra"].get("key")
        self.error(record["level"].name, text, key if isinstance(key, ThreadKey) else "")

    @contextlib.contextmanager
    def watching_logs(self, level: str = "WARNING") -> Iterator[None]:
        """Feed the errors ring from loguru while inside."""
        sink = logger.add(self._sink, level=level, format="{message}", catch=True)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):  # gone already: ``logs.setup`` removes all
                logger.remove(sink)

    def outcomes(self) -> list[RecentEntry]:
        """The last outcomes, newest first."""
        with self._lock:
            return list(reversed(self._outcomes))

    def errors(self) -> list[RecentEntry]:
        """The last errors and warnings, newest first."""
        with self._lock:
            return list(reversed(self._errors))

    def as_json(self) -> dict[str, Any]:
        return {
            "outcomes": [entry.as_json() for entry in self.outcomes()],
            "errors": [entry.as_json() for entry in self.errors()],
        }
