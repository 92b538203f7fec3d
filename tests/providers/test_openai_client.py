from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from providers.exceptions import (
    KeyRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
    RequestRejectedError,
    StreamBrokenError,
)
from providers.http import open_chat_http
from providers.openai_client import ChatClient, parse_retry_after
from providers.secrets import ApiKey, redact
from tests.fakes.llm import LLMSimulator, Reply

pytestmark = pytest.mark.anyio
KEY = ApiKey("main", "sk-test-SECRET-0123456789")
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


@pytest.fixture
async def client(llm_server: LLMSimulator) -> AsyncIterator[ChatClient]:
    async with open_chat_http() as http:
        yield ChatClient(llm_server.base_url, http, connect_timeout=2, read_timeout=0.5)


async def test_streams_deltas_and_returns_the_whole_answer(
    client: ChatClient, llm_server: LLMSimulator
) -> None:
    chunks: list[str] = []

    async def emit(text: str) -> None:
        chunks.append(text)

    text = await client.stream(KEY, "m", MESSAGES, emit)
    assert text == "You said: hello there (turn 1 of this session)"
    assert len(chunks) > 3
    assert "".join(chunks) == text
    key, body = llm_server.requests[-1]
    assert (key, body["model"], body["stream"]) == (KEY.secret, "m", True)


async def test_complete_without_streaming(client: ChatClient, llm_server: LLMSimulator) -> None:
    llm_server.script(KEY.secret, Reply("whole answer"))
    assert await client.complete(KEY, "m", MESSAGES) == "whole answer"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(status=401), KeyRejectedError, None),
        (Reply(status=403), KeyRejectedError, None),
        (Reply(status=402), QuotaExhaustedError, None),
        (Reply(status=429, error_code="insufficient_quota"), QuotaExhaustedError, None),
        (Reply(status=429, retry_after="7"), RateLimitedError, 7.0),
        (Reply(status=429), RateLimitedError, None),
        (Reply(status=400), RequestRejectedError, None),
        (Reply(status=500), ProviderUnavailableError, None),
        (Reply(status=503, retry_after="2"), ProviderUnavailableError, None),
    ],
)
async def test_error_statuses_are_typed(
    client: ChatClient,
    llm_server: LLMSimulator,
    reply: Reply,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    llm_server.script(KEY.secret, reply)

    async def emit(text: str) -> None:
        raise AssertionError("no output expected")

    with pytest.raises(error) as info:
        await client.stream(KEY, "m", MESSAGES, emit)
    assert f"HTTP {reply.status}" in str(info.value)
    assert getattr(info.value, "retry_after", None) == retry_after
    assert KEY.secret not in str(info.value)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply("one two three", hang=True), ProviderTimeoutError),
        (Reply("one two three four", chunk_delay=2.0), ProviderTimeoutError),
        (Reply("one two three four", drop_after=2), StreamBrokenError),
        (Reply("one two three", malformed=True), StreamBrokenError),
    ],
)
async def test_broken_streams_are_typed(
    client: ChatClient, llm_server: LLMSimulator, reply: Reply, error: type[Exception]
) -> None:
    llm_server.script(KEY.secret, reply)
    received: list[str] = []

    async def emit(text: str) -> None:
        received.append(text)

    with pytest.raises(error):
        await client.stream(KEY, "m", MESSAGES, emit)


async def test_connection_refused_is_unavailable() -> None:
    async with open_chat_http() as http:
        client = ChatClient("http://127.0.0.1:9/v1", http, connect_timeout=1)

        async def emit(text: str) -> None:
            raise AssertionError

        with pytest.raises(ProviderUnavailableError):
            await client.stream(KEY, "m", MESSAGES, emit)


def test_keys_never_print_themselves() -> None:
    assert KEY.secret not in repr(KEY)
    assert str(KEY) == "main"
    leaked = f"Incorrect API key provided: {KEY.secret}. Bearer {KEY.secret}"
    assert KEY.secret not in redact(leaked, KEY.secret)
    assert "sk-" not in redact("key sk-abcdef123456 was wrong")


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
