"""The chat client's HTTP port over an ``aiohttp.ClientSession`` (asyncio only).

It is the gateway's: aiogram speaks to Telegram over aiohttp already, and aiohttp costs a
fraction of httpx + httpcore's CPU per streamed answer (bench/bench_gateway.py). What httpx
did by default, it does too: certificates as httpx verifies them (certifi, or
``SSL_CERT_FILE``/``SSL_CERT_DIR``), the proxy from ``HTTP(S)_PROXY``/``ALL_PROXY`` and
``NO_PROXY`` (read once, when it opens: aiohttp's own ``trust_env`` reads them, and
``.netrc``, in a worker thread on every request), and a timeout only between bytes (no
limit on a whole answer).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

import aiohttp
import attrs
import httpx

from providers.exceptions import HttpConnectionError, HttpTimeoutError
from providers.http.port import HttpAnswer, Limits, Timeouts


def _timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """``timeouts`` as aiohttp says them: ``connect`` covers the wait for a free connection
    and the connecting (httpx bounds them apart: ``read``, then ``connect``)."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.read + timeouts.connect,
        sock_connect=timeouts.connect,
        sock_read=timeouts.read,
    )


@attrs.frozen
class _Stream:
    _response: aiohttp.ClientResponse

    @property
    def status(self) -> int:
        return self._response.status

    async def answer(self) -> HttpAnswer:
        content = await self._response.read()
        return HttpAnswer(self._response.status, self._response.headers, content)

    async def lines(self) -> AsyncGenerator[str, None]:
        pending = b""
        async for chunk in self._response.content.iter_any():
            end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))  # SSE ends lines either way
            if end < 0:
                pending += chunk
                continue
            text = (pending + chunk[: end + 1]).decode("utf-8", errors="replace")
            pending = chunk[end + 1 :]
            for line in text.splitlines():
                if line:
                    yield line
        for line in pending.decode("utf-8", errors="replace").splitlines():
            if line:
                yield line


@attrs.define(eq=False)
class AiohttpChatHttp:
    """The port over ``session`` (its owner closes it); ``proxies`` as
    ``urllib.request.getproxies_environment`` says them."""

    _session: aiohttp.ClientSession = attrs.field(repr=False)
    _proxies: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    _proxy_by_url: dict[str, str | None] = attrs.field(factory=dict, init=False, repr=False)

    @asynccontextmanager
    async def stream(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> AsyncIterator[_Stream]:
        try:
            response = await self._session.post(
                url,
                json=body,
                headers=headers,
                timeout=_timeout(timeouts),
                proxy=self._proxy(url),
                allow_redirects=False,  # as httpx: a 3xx is the answer (a typed error)
            )
            try:
                yield _Stream(response)
            except BaseException:
                if not response.content.is_eof():
                    response.close()  # left mid-answer (an error, a cancellation): not reused
                raise
            finally:
                response.release()  # read to its end: back to the pool (after close: nothing)
        except TimeoutError as error:  # aiohttp's ServerTimeoutError is one
            raise HttpTimeoutError(type(error).__name__) from None
        except aiohttp.ClientError as error:
            raise HttpConnectionError(type(error).__name__) from None

    async def post(
        self, url: str, body: Any, headers: Mapping[str, str], timeouts: Timeouts
    ) -> HttpAnswer:
        async with self.stream(url, body, headers, timeouts) as answer:  # its errors, typed
            return await answer.answer()

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url``, if the environment names one (as httpx chooses it)."""
        try:
            return self._proxy_by_url[url]
        except KeyError:
            pass
        parts = urlsplit(url)
        proxy = None
        if self._proxies and not proxy_bypass(parts.hostname or ""):  # NO_PROXY
            proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        self._proxy_by_url[url] = proxy
        return proxy


@asynccontextmanager
async def open_aiohttp(limits: Limits) -> AsyncIterator[AiohttpChatHttp]:
    """A session of its own with ``limits`` (no limit per host), closed on exit; enter it in
    the running loop."""
    connector = aiohttp.TCPConnector(
        limit=limits.connections,
        limit_per_host=0,
        keepalive_timeout=limits.keepalive,
        ssl=httpx.create_ssl_context(),
    )
    session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None), trust_env=False
    )
    async with session:
        yield AiohttpChatHttp(session, getproxies_environment())
