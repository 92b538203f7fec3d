"""The chat client's HTTP port over an ``httpx.AsyncClient`` (any backend: asyncio, trio)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import attrs
import httpx

from providers.exceptions import HttpConnectionError, HttpTimeoutError
from providers.http.port import HttpAnswer, Limits, Timeouts


def httpx_limits(limits: Limits) -> httpx.Limits:
    """``limits`` as httpx says them: every connection may stay alive."""
    return httpx.Limits(
        max_connections=limits.connections,
        max_keepalive_connections=limits.connections,
        keepalive_expiry=limits.keepalive,
    )


@attrs.frozen
class _Stream:
    _response: httpx.Response

    @property
    def status(self) -> int:
        return self._response.status_code

    async def answer(self) -> HttpAnswer:
        content = await self._response.aread()
        return HttpAnswer(self._response.status_code, self._response.headers, content)

    def lines(self) -> AsyncGenerator[str, None]:
        return cast("AsyncGenerator[str, None]", self._response.aiter_lines())


@attrs.frozen
class HttpxChatHttp:
    """The port over ``client`` (its owner closes it)."""

    _client: httpx.AsyncClient = attrs.field(repr=False)

    @asynccontextmanager
    async def stream(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> AsyncIterator[_Stream]:
        timeout = httpx.Timeout(timeouts.read, connect=timeouts.connect)
        try:
            async with self._client.stream(
                "POST", url, json=body, headers=headers, timeout=timeout
            ) as response:
                yield _Stream(response)
        except httpx.TimeoutException as error:
            raise HttpTimeoutError(type(error).__name__) from None
        except httpx.TransportError as error:
            raise HttpConnectionError(type(error).__name__) from None

    async def post(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> HttpAnswer:
        timeout = httpx.Timeout(timeouts.read, connect=timeouts.connect)
        try:
            response = await self._client.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException as error:
            raise HttpTimeoutError(type(error).__name__) from None
        except httpx.TransportError as error:
            raise HttpConnectionError(type(error).__name__) from None
        return HttpAnswer(response.status_code, response.headers, response.content)
