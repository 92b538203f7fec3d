from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import RunRequest
from actors.thread.records import ThreadKey, Turn
from providers.chain import FallbackChain, ProviderEntry
from providers.chat_agent import ChatAgent
from providers.exceptions import PoolExhaustedError, StreamBrokenError
from providers.http import open_chat_http
from providers.openai_client import ChatClient
from providers.pool import CredentialPool, KeyState
from providers.secrets import ApiKey
from tests.fakes.llm import LLMSimulator, Reply
from tests.fakes.sink import MemoryHistory, RecordingSink

pytestmark = pytest.mark.anyio
A = [ApiKey("a0", "sk-a0-secret-000"), ApiKey("a1", "sk-a1-secret-111")]
B = [ApiKey("b0", "sk-b0-secret-222")]


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


@attrs.define
class Harness:
    server: LLMSimulator
    chain: FallbackChain
    pools: tuple[CredentialPool, CredentialPool]
    chunks: list[str] = attrs.Factory(list)

    async def emit(self, text: str) -> None:
        self.chunks.append(text)


@pytest.fixture
async def harness(llm_server: LLMSimulator) -> AsyncIterator[Harness]:
    async with open_chat_http() as http:
        client = ChatClient(llm_server.base_url, http, read_timeout=2)
        pools = (CredentialPool("a", A), CredentialPool("b", B))
        chain = FallbackChain(
            (
                ProviderEntry("a/m1", pools[0], client, "m1"),
                ProviderEntry("b/m2", pools[1], client, "m2"),
            ),
            backoff=0.01,
        )
        yield Harness(llm_server, chain, pools)


MESSAGES = [{"role": "user", "content": "hi"}]


async def test_key_failures_move_to_the_next_key_at_once(harness: Harness) -> None:
    harness.server.script(A[0].secret, Reply(status=402))
    text = await harness.chain.stream(MESSAGES, harness.emit)
    assert text.startswith("You said: hi")
    assert [k for k, _ in harness.server.requests] == [A[0].secret, A[1].secret]
    assert harness.pools[0].status().keys[0].state is KeyState.COOLING


async def test_server_errors_are_retried_without_blaming_keys(harness: Harness) -> None:
    harness.server.script(A[0].secret, Reply(status=500), Reply(status=503))
    await harness.chain.stream(MESSAGES, harness.emit)
    assert len(harness.server.requests) == 3
    assert all(k.state is KeyState.USABLE for k in harness.pools[0].status().keys)


async def test_a_broken_stream_is_not_retried_after_output(harness: Harness) -> None:
    harness.server.script(A[0].secret, Reply("one two three four", drop_after=2))
    with pytest.raises(StreamBrokenError):
        await harness.chain.stream(MESSAGES, harness.emit)
    assert harness.chunks == ["one", " two"]
    assert len(harness.server.requests) == 1


async def test_exhausted_pool_falls_back_to_the_next_provider(harness: Harness) -> None:
    for key in A:
        harness.server.script(key.secret, Reply(status=429, retry_after="30"))
    await harness.chain.stream(MESSAGES, harness.emit)
    assert [(k, b["model"]) for k, b in harness.server.requests][-1] == (B[0].secret, "m2")


async def test_everything_exhausted_names_the_earliest_return(harness: Harness) -> None:
    harness.server.script(A[0].secret, Reply(status=402))
    harness.server.script(A[1].secret, Reply(status=429, retry_after="40"))
    harness.server.script(B[0].secret, Reply(status=429, retry_after="20"))
    with pytest.raises(PoolExhaustedError) as info:
        await harness.chain.stream(MESSAGES, harness.emit)
    assert info.value.retry_after == pytest.approx(20, abs=1)


def request(*inputs: str) -> RunRequest:
    return RunRequest(ThreadKey(1), "s1", 0, inputs)


async def test_agent_remembers_its_turn_and_sends_history(harness: Harness) -> None:
    history = MemoryHistory()
    agent = ChatAgent(harness.chain, history, system_prompt="Be brief.")
    first = RecordingSink()
    await agent.run(request("first"), first)
    assert [t.role for t in first.remembered] == ["user", "assistant"]
    history.answered("s1", first)
    second = RecordingSink()
    await agent.run(request("second", "third"), second)
    _, body = harness.server.requests[-1]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "second\n\nthird"
    assert second.remembered[0] == Turn("user", "second\n\nthird")
    assert second.remembered[-1].content.endswith("(turn 2 of this session)")


async def test_a_failed_turn_is_not_remembered(harness: Harness) -> None:
    agent = ChatAgent(harness.chain, MemoryHistory())
    harness.server.script(A[0].secret, Reply("partial answer here", drop_after=1))
    sink = RecordingSink()
    with pytest.raises(AgentUnavailableError):
        await agent.run(request("hi"), sink)
    assert sink.chunks, "part of the answer was streamed"
    assert sink.remembered == [], "no half answer, and no marker either"


async def test_a_regenerated_turn_is_asked_without_the_turn_it_replaces(
    harness: Harness,
) -> None:
    history = MemoryHistory({"s1": [Turn("user", "q0"), Turn("assistant", "a0")]})
    history.sessions["s1"] += [Turn("user", "q1"), Turn("assistant", "a1")]
    agent = ChatAgent(harness.chain, history)
    regenerate = RunRequest(ThreadKey(1), "s1", 0, ("q1",), regenerate=True)
    await agent.run(regenerate, RecordingSink())
    _, body = harness.server.requests[-1]
    assert [m["content"] for m in body["messages"][1:]] == ["q0", "a0", "q1"]


async def test_agent_maps_exhaustion_and_rejection(harness: Harness) -> None:
    agent = ChatAgent(harness.chain, MemoryHistory())
    harness.server.script(A[0].secret, Reply(status=400))
    with pytest.raises(AgentRejectedError):
        await agent.run(request("hi"), RecordingSink())
    for key in (*A, *B):
        harness.server.script(key.secret, Reply(status=402))
    with pytest.raises(CredentialsExhaustedError) as info:
        await agent.run(request("hi"), RecordingSink())
    assert info.value.retry_after == pytest.approx(3600, abs=1)
    assert "sk-" not in str(info.value)


async def test_agent_uses_the_topic_prompt_then_the_chat_prompt(harness: Harness) -> None:
    prompts = {"-5:2": "topic prompt", "-5": "chat prompt"}
    agent = ChatAgent(harness.chain, MemoryHistory(), "default prompt", prompts=prompts)
    for key in (ThreadKey(-5, 2), ThreadKey(-5, 3), ThreadKey(6)):
        await agent.run(RunRequest(key, f"s{key}", 0, ("hi",)), RecordingSink())
    systems = [body["messages"][0]["content"] for _, body in harness.server.requests]
    assert systems == ["topic prompt", "chat prompt", "default prompt"]
