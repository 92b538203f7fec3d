"""The chat client's HTTP (``providers.http``) on each backend: aiohttp on asyncio, httpx on
trio. What the adapters do of their own: pooled connections, a cancelled stream's connection
closed, timeouts, refusals, SSE split anywhere, the proxy from the environment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from aiohttp import web

from gateway.demo.model_sim import LoopbackServer, serve_in_thread
from providers.exceptions import (
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
)
from providers.http import AiohttpChatHttp, ChatHttp, HttpxChatHttp, Timeouts, open_chat_http
from providers.openai_client import ChatClient
from providers.secrets import ApiKey
from tests.fakes.llm import LLMSimulator, Reply

pytestmark = pytest.mark.anyio
KEY = ApiKey("main", "sk-test-SECRET-0123456789")
MESSAGES = [{"role": "user", "content": "hello there"}]
TIMEOUTS = Timeouts(connect=5.0, read=5.0)
REFUSING = "http://127.0.0.1:9/v1"  # the discard port: nothing listens


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


@pytest.fixture
async def http() -> AsyncIterator[ChatHttp]:
    async with open_chat_http() as http:
        yield http


async def ignore(text: str) -> None:
    pass


async def until(done: Any) -> None:
    with anyio.fail_after(10):
        while not done():
            await anyio.sleep(0.02)


async def test_each_backend_gets_its_adapter(http: ChatHttp, anyio_backend: str) -> None:
    expected = AiohttpChatHttp if anyio_backend == "asyncio" else HttpxChatHttp
    assert isinstance(http, expected)


async def test_answers_come_over_one_kept_connection(
    http: ChatHttp, llm_server: LLMSimulator
) -> None:
    client = ChatClient(llm_server.base_url, http, read_timeout=5)
    llm_server.script(KEY.secret, Reply(status=429))
    with pytest.raises(RateLimitedError):  # its body read whole: the connection is kept
        await client.stream(KEY, "m", MESSAGES, ignore)
    for _ in range(3):
        await client.stream(KEY, "m", MESSAGES, ignore)
    await client.complete(KEY, "m", MESSAGES)
    assert len(llm_server.peers) == 5
    assert len(set(llm_server.peers)) == 1, "one connection, kept alive"


async def test_a_cancelled_stream_closes_its_connection(
    http: ChatHttp, llm_server: LLMSimulator
) -> None:
    client = ChatClient(llm_server.base_url, http, read_timeout=5)
    llm_server.script(KEY.secret, Reply("one two three four five six seven", chunk_delay=0.2))
    received: list[str] = []

    async def emit(text: str) -> None:
        received.append(text)
        scope.cancel()

    with anyio.CancelScope() as scope:
        await client.stream(KEY, "m", MESSAGES, emit)
    assert received == ["one"]
    await until(lambda: llm_server.hangups == 1)  # the server saw it hang up
    await client.stream(KEY, "m", MESSAGES, ignore)
    first, second = llm_server.peers
    assert first != second, "the cancelled stream's connection was not reused"


async def test_a_hung_whole_answer_times_out(http: ChatHttp, llm_server: LLMSimulator) -> None:
    client = ChatClient(llm_server.base_url, http, read_timeout=0.3)
    llm_server.script(KEY.secret, Reply(hang=True))
    with pytest.raises(ProviderTimeoutError) as info:
        await client.complete(KEY, "m", MESSAGES)
    assert KEY.secret not in str(info.value)


async def test_a_refused_connection_is_unavailable_for_a_whole_answer(http: ChatHttp) -> None:
    client = ChatClient(REFUSING, http, connect_timeout=1)
    with pytest.raises(ProviderUnavailableError) as info:
        await client.complete(KEY, "m", MESSAGES)
    assert str(info.value).startswith("connection failed: ")
    assert "127.0.0.1" not in str(info.value), "the library's error names only its kind"


WORDS = ["naïve ", "café ", "日本語 ", "done"]


def event(text: str, finish: str | None = None) -> bytes:
    delta = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return f"data: {json.dumps({'choices': [delta]}, ensure_ascii=False)}\r\n\r\n".encode()


async def split_stream(request: web.Request) -> web.StreamResponse:
    """Events cut at every few bytes (inside a character, a line, a line break); with
    ``?cr``, lines end with a bare carriage return (SSE allows it), and the events go out
    one by one, so that nothing but a line end can mark where one ends."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    events = [event(word) for word in WORDS] + [event("", "stop")]
    if "cr" in request.query:
        for data in events:
            await response.write(data.replace(b"\r\n", b"\r"))
            await asyncio.sleep(0.01)
        await response.write(b"data: [DONE]\r")
        await asyncio.sleep(0.01)
        await response.write(b":\r")  # a comment: after a bare CR, no LF is coming
        await asyncio.sleep(2)  # the stream stays open: each event must come out on its own
        await response.write_eof()
        return response
    data = b"".join(events) + b"data: [DONE]"
    for start in range(0, len(data), 7):
        await response.write(data[start : start + 7])
        await asyncio.sleep(0.001)
    await response.write_eof()  # the last line has no line break
    return response


@pytest.fixture
def split_server() -> Iterator[str]:
    server = LoopbackServer()
    url: list[str] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", split_stream)
        url.append(f"http://127.0.0.1:{await server.start(app)}/v1")

    with serve_in_thread(start, server.stop, "split-sse"):
        yield url[0]


async def test_lines_ended_by_a_bare_carriage_return_stream(
    http: ChatHttp, split_server: str
) -> None:
    """Each line is handed on as it arrives, not when the stream ends (the server keeps it
    open two seconds after its last line)."""
    lines: list[str] = []
    started = anyio.current_time()
    body = {"model": "m", "stream": True}
    async with http.stream(f"{split_server}/chat/completions?cr", body, {}, TIMEOUTS) as stream:
        async for line in stream.lines():
            if line:  # (blank lines between events: httpx's adapter hands them on too)
                lines.append(line)
            if line == "data: [DONE]":
                break
    assert anyio.current_time() - started < 1.5, "the lines came out when the stream ended"
    assert len(lines) == len(WORDS) + 2
    assert all(line.startswith("data: ") for line in lines)


async def test_events_split_anywhere_are_read_whole(http: ChatHttp, split_server: str) -> None:
    client = ChatClient(split_server, http, read_timeout=5, stream_usage=False)
    chunks: list[str] = []

    async def emit(text: str) -> None:
        chunks.append(text)

    assert await client.stream(KEY, "m", MESSAGES, emit) == "".join(WORDS)
    assert chunks == WORDS


@pytest.fixture
def redirecting_server() -> Iterator[tuple[str, list[str]]]:
    """Answers the chat endpoint with a 302 to another path, and records every request."""
    server = LoopbackServer()
    url: list[str] = []
    seen: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        if request.path == "/v1/chat/completions":
            raise web.HTTPFound("/v1/elsewhere")
        return web.json_response({"error": {"message": "wrong place"}}, status=405)

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", redirect)
        url.append(f"http://127.0.0.1:{await server.start(app)}/v1")

    with serve_in_thread(start, server.stop, "redirecting"):
        yield url[0], seen


async def test_a_redirect_is_the_answer_and_is_not_followed(
    http: ChatHttp, redirecting_server: tuple[str, list[str]]
) -> None:
    """As httpx: a 3xx is an error of its own, and the prompt and key go nowhere else."""
    url, seen = redirecting_server
    client = ChatClient(url, http, read_timeout=5, stream_usage=False)
    with pytest.raises(ProviderError) as info:
        await client.stream(KEY, "m", MESSAGES, ignore)
    assert "302" in str(info.value)
    assert seen == ["POST /v1/chat/completions"], "the redirect was followed"


async def test_the_proxy_comes_from_the_environment(
    llm_server: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", llm_server.base_url.removesuffix("/v1"))
    async with open_chat_http() as http:  # the simulator answers absolute-form requests
        client = ChatClient(REFUSING, http, read_timeout=5)
        assert (await client.stream(KEY, "m", MESSAGES, ignore)).startswith("You said")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with open_chat_http() as http:
        client = ChatClient(REFUSING, http, connect_timeout=1)
        with pytest.raises(ProviderUnavailableError):
            await client.stream(KEY, "m", MESSAGES, ignore)
