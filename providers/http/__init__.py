"""The chat client's HTTP: its port (``port``), its adapters, and ``open_chat_http``, which
picks the adapter for the running backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from providers.exceptions import HttpConnectionError, HttpTimeoutError
from providers.http.aiohttp_adapter import AiohttpChatHttp, open_aiohttp
from providers.http.httpx_adapter import HttpxChatHttp, httpx_limits
from providers.http.port import ChatHttp, HttpAnswer, HttpStream, Limits, Timeouts

__all__ = [
    "AiohttpChatHttp",
    "ChatHttp",
    "HttpAnswer",
    "HttpConnectionError",
    "HttpStream",
    "HttpTimeoutError",
    "HttpxChatHttp",
    "Limits",
    "Timeouts",
    "httpx_limits",
    "open_aiohttp",
    "open_chat_http",
]


@asynccontextmanager
async def open_chat_http(limits: Limits | None = None) -> AsyncIterator[ChatHttp]:
    """A client of its own for the running backend, closed on exit: aiohttp on asyncio (the
    gateway's), httpx otherwise (trio)."""
    limits = limits or Limits()
    if _on_asyncio():
        async with open_aiohttp(limits) as http:
            yield http
    else:
        async with httpx.AsyncClient(limits=httpx_limits(limits)) as client:
            yield HttpxChatHttp(client)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio
        return False
    return True
