"""The HTTP port the chat client (``providers.openai_client``) speaks through.

Two adapters: ``aiohttp_adapter`` (asyncio: the gateway, whose Telegram side is aiohttp
already) and ``httpx_adapter`` (any backend: trio). Each maps its library's failures to the
two transport errors (``providers.exceptions``), so the client types them the same whichever runs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import attrs


@attrs.frozen
class Timeouts:
    """How long a request may wait."""

    connect: float
    """Seconds to connect."""
    read: float
    """Seconds to wait for the next bytes (on a stream, the stall timeout); also how long a
    request may wait for a free connection in the pool."""


@attrs.frozen
class Limits:
    """The connection pool of one client."""

    connections: int = 200
    """Connections open at most (all of them kept alive when idle)."""
    keepalive: float = 5.0
    """Seconds an idle connection is kept."""


@attrs.frozen
class HttpAnswer:
    """A whole response."""

    status: int
    """The HTTP status."""
    headers: Mapping[str, str] = attrs.field(repr=False)
    """Its headers (names case-insensitive)."""
    content: bytes = attrs.field(repr=False)
    """Its body."""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)


class HttpStream(Protocol):
    """A response being read."""

    @property
    def status(self) -> int: ...

    async def answer(self) -> HttpAnswer:
        """Read the whole body (an error status's)."""
        ...

    def lines(self) -> AsyncGenerator[str, None]:
        """The body's lines as they come, without their line breaks (blank ones may be
        left out)."""
        ...


class ChatHttp(Protocol):
    """POSTs JSON; raises ``HttpTimeoutError`` or ``HttpConnectionError`` for a failed
    exchange (an HTTP error status is an answer, not an exception)."""

    def stream(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> AbstractAsyncContextManager[HttpStream]:
        """Send the request; inside, read its response. Leaving the block before the end of
        the body (an error, a cancellation) closes the connection."""
        ...

    async def post(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> HttpAnswer:
        """Send the request; return the whole response."""
        ...
