from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import DocumentPart, ImagePart, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey
from providers.agents import AgentContext, available, load_agent
from providers.chain import FallbackChain
from providers.exceptions import AgentUnknownError
from providers.http_agent import HttpAgent
from tests.fakes.agent_server import AgentServer, protocol_problem
from tests.fakes.sink import RecordingSink

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


class NoHistory:
    async def recent(self, session_id: str, budget: int) -> list[Any]:
        return []


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def context(http: httpx.AsyncClient, **options: str) -> AgentContext:
    return AgentContext(FallbackChain(()), NoHistory(), http, "sys", 1000, options)


def request(*inputs: str, session: str = "s1") -> RunRequest:
    return RunRequest(ThreadKey(9), session, 0, inputs, "model-x")


async def test_example_plugin_agent_loads_through_the_entry_point(http: httpx.AsyncClient) -> None:
    assert {"chat", "http", "notes"} <= set(available())
    agent = load_agent("notes", context(http))
    first, second, other = RecordingSink(), RecordingSink(), RecordingSink()
    await agent.run(request("note buy milk", "note call Ann"), first)
    await agent.run(request("notes"), second)
    await agent.run(request("notes", session="s2"), other)
    assert "".join(second.chunks) == "1. buy milk\n2. call Ann\n"
    assert second.heartbeats == 2
    assert "".join(other.chunks) == "No notes in this session.\n"
    with pytest.raises(AgentRejectedError):
        await agent.run(request("  "), RecordingSink())


async def test_unknown_agent_names_the_available_ones(http: httpx.AsyncClient) -> None:
    with pytest.raises(AgentUnknownError, match="notes"):
        load_agent("nonexistent", context(http))
    with pytest.raises(AgentUnknownError, match=r"needs agent\.url$"):
        load_agent("http", context(http))


async def test_http_agent_streams_text_and_heartbeats(http: httpx.AsyncClient) -> None:
    server = AgentServer(['{"text": "Hel"}', '{"heartbeat": true}', '{"text": "lo"}', "[DONE]"])
    with server.serving():
        agent = load_agent("http", context(http, url=server.url, token="agent-secret-1234"))
        sink = RecordingSink()
        await agent.run(request("hi", "there"), sink)
    assert sink.chunks == ["Hel", "lo"]
    assert sink.heartbeats == 1
    assert server.received == [
        {
            "thread": "9",
            "session_id": "s1",
            "generation": 0,
            "inputs": ["hi", "there"],
            "model": "model-x",
            "parts": [[], []],
            "media": [[], []],
        }
    ]
    assert server.problems == []


async def test_http_agent_sends_parts_with_images_as_data_urls(http: httpx.AsyncClient) -> None:
    server = AgentServer(['{"text": "seen"}', "[DONE]"])
    refs = (
        (MediaRef(MediaKind.IMAGE, "file-1", len(PNG), "image/png"),),
        (MediaRef(MediaKind.VOICE, "file-2", 900, "audio/ogg", duration=3),),
        (MediaRef(MediaKind.DOCUMENT, "file-3", 5, "text/plain", "a.txt"),),
    )
    parts = (
        (ImagePart("image/png", PNG),),
        (TextPart("the transcript"),),
        (DocumentPart("a.txt", "hello"),),
    )
    turn = RunRequest(ThreadKey(9), "s1", 0, ("look", "", "read"), media=refs, parts=parts)
    with server.serving():
        await HttpAgent(server.url, http).run(turn, RecordingSink())
    assert server.problems == []
    (body,) = server.received
    image, transcript, document = (p for parts in body["parts"] for p in parts)
    assert image["type"] == "image"
    assert image["mime_type"] == "image/png"
    assert base64.b64decode(image["url"].removeprefix("data:image/png;base64,")) == PNG
    assert transcript == {"type": "text", "text": "the transcript"}
    assert document == {"type": "document", "name": "a.txt", "text": "hello"}
    assert body["media"][1] == [
        {"kind": "voice", "mime_type": "audio/ogg", "file_name": "", "size": 900, "duration": 3}
    ]
    assert "file-1" not in json.dumps(body)  # Telegram's file ids stay in the gateway


def test_the_fake_agent_server_catches_a_body_that_breaks_the_protocol() -> None:
    good = {"inputs": ["a"], "parts": [[{"type": "text", "text": "t"}]], "media": [[]]}
    assert protocol_problem(good) == ""
    assert "one list per input" in protocol_problem({**good, "parts": []})
    bad_image = {"type": "image", "mime_type": "image/png", "url": "data:image/jpeg;base64,AA=="}
    assert "not a data URL" in protocol_problem({**good, "parts": [[bad_image]]})


async def test_an_entry_point_agent_reads_the_parts(http: httpx.AsyncClient) -> None:
    agent = load_agent("notes", context(http))
    image = RunRequest(ThreadKey(9), "s1", 0, ("note",), parts=((ImagePart("image/png", PNG),),))
    voice = RunRequest(ThreadKey(9), "s1", 0, ("",), parts=((TextPart("note buy milk"),),))
    listing = RecordingSink()
    await agent.run(image, RecordingSink())
    await agent.run(voice, RecordingSink())
    await agent.run(request("notes"), listing)
    assert "".join(listing.chunks) == f"1. [image image/png, {len(PNG)} bytes]\n2. buy milk\n"


@pytest.mark.parametrize(
    ("server", "error"),
    [
        (
            AgentServer(['{"error": "no credit", "kind": "exhausted", "retry_after": 60}']),
            CredentialsExhaustedError,
        ),
        (AgentServer(['{"error": "too long", "kind": "rejected"}']), AgentRejectedError),
        (AgentServer(['{"error": "boom"}']), AgentUnavailableError),
        (AgentServer(['{"text": "partial"}']), AgentUnavailableError),  # no [DONE]
        (AgentServer(status=402, retry_after="30"), CredentialsExhaustedError),
        (AgentServer(status=400), AgentRejectedError),
        (AgentServer(status=503), AgentUnavailableError),
    ],
)
async def test_http_agent_failures_are_typed(
    http: httpx.AsyncClient, server: AgentServer, error: type[Exception]
) -> None:
    with server.serving(), pytest.raises(error) as info:
        await HttpAgent(server.url, http).run(request("hi"), RecordingSink())
    if isinstance(info.value, CredentialsExhaustedError):
        assert info.value.retry_after in (60, 30.0)


async def test_http_agent_unreachable_is_unavailable(http: httpx.AsyncClient) -> None:
    with pytest.raises(AgentUnavailableError):
        await HttpAgent("http://127.0.0.1:9/turn", http).run(request("hi"), RecordingSink())
