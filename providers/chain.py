"""Calling a model through credential pools, with retries and an ordered fallback chain.

Rules:

* A key's own failure (401/403, 402/quota, 429) is reported to its pool and the request is
  tried at once on another key of the same pool.
* 5xx and timeouts are retried with backoff on another key, without blaming the key.
* Nothing is retried once part of the answer was streamed (it would be said twice).
* When a whole pool is exhausted the next provider entry is tried; when every one is, the
  ``PoolExhaustedError`` carries the earliest time any key comes back.
* Every call's usage (``providers.usage``, as the client reports it) goes to ``on_usage``
  with the model it asked: retries and fallbacks that used tokens are counted too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from loguru import logger

from providers.exceptions import (
    KeyRejectedError,
    PoolExhaustedError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
)
from providers.openai_client import ChatClient, Message
from providers.pool import CredentialPool
from providers.usage import Tokens

UsageSink = Callable[[str, Tokens], None]
"""Told the model asked and what one call used."""

_MAX_KEY_SWITCHES = 32  # a guard against keys that "cool" for 0 seconds


@attrs.frozen
class ProviderEntry:
    """One provider and model in the fallback chain."""

    name: str
    """For logs and status, e.g. ``openai/gpt-4o-mini``."""
    pool: CredentialPool
    """Its keys."""
    client: ChatClient
    """Its endpoint."""
    model: str
    """The model to ask for."""


@attrs.frozen
class FallbackChain:
    """Streams an answer from the first provider entry that has a usable key."""

    entries: tuple[ProviderEntry, ...]
    """In order of preference."""
    max_attempts: int = 3
    """Tries per entry for 5xx and timeouts."""
    backoff: float = 0.5
    """Delay before the second try; doubled for each further one."""

    async def stream(
        self,
        messages: Sequence[Message],
        emit: Callable[[str], Awaitable[None]],
        model: str | None = None,
        *,
        on_usage: UsageSink | None = None,
    ) -> str:
        """Stream the answer to ``messages`` into ``emit``; return it whole.

        ``model`` (a session's ``/model`` choice) overrides the first entry's model; the
        fallbacks are other providers, which keep their own. ``on_usage`` is told each
        call's usage, with the model it asked.
        """
        earliest: float | None = None
        for index, configured in enumerate(self.entries):
            entry = configured
            if model is not None and index == 0:
                entry = attrs.evolve(configured, model=model)
            try:
                return await self._stream_entry(entry, messages, emit, on_usage)
            except PoolExhaustedError as error:
                logger.warning("provider {name} exhausted: {e}", name=entry.name, e=error)
                if error.retry_after is not None:
                    earliest = min(earliest or error.retry_after, error.retry_after)
        raise PoolExhaustedError("every provider's credential pool is exhausted", earliest)

    async def _stream_entry(
        self,
        entry: ProviderEntry,
        messages: Sequence[Message],
        emit: Callable[[str], Awaitable[None]],
        on_usage: UsageSink | None = None,
    ) -> str:
        emitted = False

        def used(tokens: Tokens) -> None:
            if on_usage is not None:
                on_usage(entry.model, tokens)

        async def tracked(delta: str) -> None:
            nonlocal emitted
            emitted = True
            await emit(delta)

        failures = 0
        for _ in range(_MAX_KEY_SWITCHES):
            key = entry.pool.acquire()
            try:
                text = await entry.client.stream(key, entry.model, messages, tracked, on_usage=used)
            except (KeyRejectedError, QuotaExhaustedError, RateLimitedError) as error:
                entry.pool.report_failure(key, error)
                if emitted:
                    raise
                continue
            except ProviderUnavailableError as error:
                failures += 1
                if emitted or failures >= self.max_attempts:
                    raise
                logger.info(
                    "provider {name}: {e}; retry {n} on another key",
                    name=entry.name,
                    e=error,
                    n=failures,
                )
                await anyio.sleep(self.backoff * 2.0 ** (failures - 1))
                continue
            entry.pool.report_success(key)
            return text
        raise ProviderUnavailableError(f"provider {entry.name}: gave up after switching keys")
