"""Token usage against the LLM simulator: read from the provider's usage chunk, asked again
without ``stream_options`` when an endpoint refuses it, estimated (and marked so) without
usage data; recorded by the agents per model call, attributed to chat, user and model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest

from actors.thread.exceptions import AgentUnavailableError, CredentialsExhaustedError
from actors.thread.ports import RunRequest
from actors.thread.records import ThreadKey
from gateway.demo.model_sim import counted_usage
from providers.chain import FallbackChain, ProviderEntry
from providers.chat_agent import ChatAgent
from providers.exceptions import RequestRejectedError, StreamBrokenError
from providers.http import ChatHttp, open_chat_http
from providers.http_agent import HttpAgent
from providers.openai_client import ChatClient
from providers.pool import CredentialPool
from providers.secrets import ApiKey
from providers.usage import Tokens, Usage, estimate_tokens, prompt_chars
from tests.fakes.agent_server import AgentServer
from tests.fakes.llm import LLMSimulator, Reply
from tests.fakes.sink import MemoryHistory, RecordingSink
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio
KEY = ApiKey("main", "sk-test-SECRET-0123456789")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


@attrs.define
class Ledger:
    """A ``UsageLedger`` in memory (the gateway's is the store, tested with it)."""

    recorded: list[Usage] = attrs.Factory(list)

    async def record(self, usage: Usage) -> None:
        await anyio.lowlevel.checkpoint()  # a real ledger waits for its write: so does this
        self.recorded.append(usage)


async def ignore(text: str) -> None:
    pass


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def chat_http() -> AsyncIterator[ChatHttp]:
    """The chat client's HTTP for the running backend: aiohttp on asyncio, httpx on trio."""
    async with open_chat_http() as http:
        yield http


def test_the_estimate_is_a_token_per_four_characters_rounded_up() -> None:
    assert [estimate_tokens(n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    blocks = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert prompt_chars([{"content": "hello"}, {"content": blocks}, {"content": None}]) == 9
    assert Tokens.estimate(9, 4) == Tokens(3, 1, estimated=True)
    assert Tokens.reported({"prompt_tokens": 5, "completion_tokens": 2}) == Tokens(5, 2)
    malformed: object
    for malformed in (None, [], {"prompt_tokens": "5", "completion_tokens": 2}, {"x": 1}):
        assert Tokens.reported(malformed) is None
    assert Tokens.reported({"prompt_tokens": True, "completion_tokens": 2}) is None


async def test_a_stream_asks_for_usage_and_reads_the_usage_chunk(
    llm_server: LLMSimulator, chat_http: ChatHttp
) -> None:
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    seen: list[Tokens] = []
    llm_server.script(KEY.secret, Reply("one two three", usage=(123, 45)))
    text = await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    assert text == "one two three"
    assert seen == [Tokens(123, 45, estimated=False)]
    _, body = llm_server.requests[-1]
    assert body["stream_options"] == {"include_usage": True}
    # Unscripted: the simulator's own count, which is never the gateway's estimate.
    text = await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    counted = counted_usage(MESSAGES, text)
    assert seen[-1] == Tokens(*counted)
    assert seen[-1] != Tokens.estimate(prompt_chars(MESSAGES), len(text))


async def test_an_endpoint_refusing_stream_options_is_asked_again_without_it_once(
    chat_http: ChatHttp,
) -> None:
    with (
        LLMSimulator(stream_options=False).serving_in_thread() as server,
        captured_logs("WARNING") as logs,
    ):
        client = ChatClient(server.base_url, chat_http, read_timeout=5)
        seen: list[Tokens] = []
        first = await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
        second = await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    assert first.startswith("You said: hello there")
    assert second == first
    asked = [("stream_options" in body) for _, body in server.requests]
    assert asked == [True, False, False], "once refused, never asked again by this client"
    estimate = Tokens.estimate(prompt_chars(MESSAGES), len(first))
    assert seen == [estimate, estimate]
    assert all(tokens.estimated for tokens in seen)
    refused = [line for line in logs if "refuses stream_options" in line]
    assert len(refused) == 1, logs
    assert KEY.secret not in "\n".join(logs)


async def test_another_400_is_a_refusal_and_is_not_asked_again(chat_http: ChatHttp) -> None:
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]
    with LLMSimulator(vision=False, stream_options=False).serving_in_thread() as server:
        client = ChatClient(server.base_url, chat_http, read_timeout=5)
        seen: list[Tokens] = []
        with pytest.raises(RequestRejectedError) as info:
            await client.stream(
                KEY, "m", [{"role": "user", "content": image}], ignore, on_usage=seen.append
            )
    assert info.value.status == 400
    # The stream_options refusal comes first (the simulator checks it first), then the
    # image's: two requests, and nothing used.
    assert len(server.requests) == 2
    assert seen == []


async def test_without_usage_data_the_answer_is_estimated_and_marked(
    chat_http: ChatHttp,
) -> None:
    with LLMSimulator(usage=False).serving_in_thread() as server:
        seen: list[Tokens] = []
        client = ChatClient(server.base_url, chat_http, read_timeout=5)
        text = await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
        whole = await client.complete(KEY, "m", MESSAGES, on_usage=seen.append)
        quiet = ChatClient(server.base_url, chat_http, read_timeout=5, stream_usage=False)
        await quiet.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    assert seen[0] == Tokens(
        estimate_tokens(len("Be brief.") + len("hello there")), estimate_tokens(len(text)), True
    )
    assert seen[1] == Tokens.estimate(prompt_chars(MESSAGES), len(whole))
    assert seen[2].estimated
    assert "stream_options" not in server.requests[-1][1], "stream_usage off: never asked"


async def test_a_whole_answer_reads_its_usage(
    llm_server: LLMSimulator, chat_http: ChatHttp
) -> None:
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    seen: list[Tokens] = []
    llm_server.script(KEY.secret, Reply("whole answer", usage=(10, 2)))
    assert await client.complete(KEY, "m", MESSAGES, on_usage=seen.append) == "whole answer"
    assert seen == [Tokens(10, 2)]


async def test_a_failed_call_without_usage_reports_nothing_and_a_stopped_one_an_estimate(
    llm_server: LLMSimulator, chat_http: ChatHttp
) -> None:
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    seen: list[Tokens] = []
    llm_server.script(KEY.secret, Reply("one two three four", drop_after=2))
    with pytest.raises(StreamBrokenError):
        await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    assert seen == []
    llm_server.script(KEY.secret, Reply(status=500))
    with pytest.raises(Exception, match="HTTP 500"):
        await client.stream(KEY, "m", MESSAGES, ignore, on_usage=seen.append)
    assert seen == [], "a call the provider refused used nothing"

    got: list[str] = []

    async def collect(text: str) -> None:
        got.append(text)

    llm_server.script(KEY.secret, Reply("one two three four five", chunk_delay=0.5))
    with anyio.move_on_after(0.8):
        await client.stream(KEY, "m", MESSAGES, collect, on_usage=seen.append)
    assert got, "it was stopped midway"
    assert seen == [Tokens.estimate(prompt_chars(MESSAGES), len("".join(got)))]


def entry(name: str, keys: list[ApiKey], client: ChatClient, model: str) -> ProviderEntry:
    return ProviderEntry(name, CredentialPool(name, keys), client, model)


async def test_the_chat_agent_records_each_call_for_the_chat_user_and_model_that_answered(
    llm_server: LLMSimulator, chat_http: ChatHttp
) -> None:
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    first, second = ApiKey("a", "sk-a-secret-1111"), ApiKey("b", "sk-b-secret-2222")
    chain = FallbackChain(
        (entry("a/m1", [first], client, "m1"), entry("b/m2", [second], client, "m2"))
    )
    ledger = Ledger()
    agent = ChatAgent(chain, MemoryHistory(), usage=ledger)
    llm_server.script(first.secret, Reply(status=402))
    llm_server.script(second.secret, Reply("fallback answer", usage=(30, 2)))
    key = ThreadKey(-100555, 7)
    await agent.run(RunRequest(key, "s1", 0, ("a", "b"), user_ids=(41, 42)), RecordingSink())
    assert ledger.recorded == [Usage(-100555, 42, "m2", Tokens(30, 2))], "the last input's user"
    # Before the thread fills in user ids (or for an input without one): user None.
    fresh = ApiKey("c", "sk-c-secret-3333")
    agent = attrs.evolve(agent, chain=FallbackChain((entry("c/m3", [fresh], client, "m3"),)))
    llm_server.script(fresh.secret, Reply("answer", usage=(5, 1)))
    await agent.run(RunRequest(ThreadKey(9), "s2", 0, ("c",)), RecordingSink())
    assert ledger.recorded[-1] == Usage(9, None, "m3", Tokens(5, 1))


async def test_the_chat_agent_records_a_stopped_run_and_nothing_for_calls_that_used_nothing(
    llm_server: LLMSimulator, chat_http: ChatHttp
) -> None:
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    only = ApiKey("a", "sk-a-secret-1111")
    ledger = Ledger()

    def agent_with(key: ApiKey) -> ChatAgent:
        chain = FallbackChain((entry("a/m1", [key], client, "m1"),))
        return ChatAgent(chain, MemoryHistory(), usage=ledger)

    llm_server.script(only.secret, Reply(status=402))
    with pytest.raises(CredentialsExhaustedError):
        await agent_with(only).run(RunRequest(ThreadKey(1), "s", 0, ("x",)), RecordingSink())
    assert ledger.recorded == []
    agent = agent_with(other := ApiKey("b", "sk-b-secret-2222"))
    llm_server.script(other.secret, Reply("one two three four five six", chunk_delay=0.4))
    sink = RecordingSink()
    with anyio.move_on_after(0.6):
        await agent.run(RunRequest(ThreadKey(1), "s", 0, ("x",), user_ids=(5,)), sink)
    (stopped,) = ledger.recorded
    assert (stopped.user_id, stopped.model, stopped.tokens.estimated) == (5, "m1", True)
    assert stopped.tokens.completion == estimate_tokens(len("".join(sink.chunks)))


async def test_the_http_agent_records_the_usage_its_agent_reports(
    http: httpx.AsyncClient,
) -> None:
    ledger = Ledger()
    reported = AgentServer(
        [
            '{"text": "Hello"}',
            '{"usage": {"prompt_tokens": 70, "completion_tokens": 3, "model": "gpt-x"}}',
            "[DONE]",
        ]
    )
    with reported.serving():
        agent = HttpAgent(reported.url, http, usage=ledger)
        await agent.run(RunRequest(ThreadKey(3), "s", 0, ("hi",), user_ids=(8,)), RecordingSink())
    assert ledger.recorded == [Usage(3, 8, "gpt-x", Tokens(70, 3))]


async def test_the_http_agent_estimates_usage_its_agent_does_not_report(
    http: httpx.AsyncClient,
) -> None:
    ledger = Ledger()
    silent = AgentServer(['{"text": "Hello there"}', "[DONE]"])
    with silent.serving():
        agent = HttpAgent(silent.url, http, usage=ledger)
        turn = RunRequest(ThreadKey(3), "s", 0, ("hi", "you"), model="chosen")
        await agent.run(turn, RecordingSink())
    estimate = Tokens(estimate_tokens(5), estimate_tokens(11), estimated=True)
    assert ledger.recorded == [Usage(3, None, "chosen", estimate)]


async def test_the_http_agent_records_nothing_for_a_failed_turn_without_usage(
    http: httpx.AsyncClient,
) -> None:
    ledger = Ledger()
    failed = AgentServer(['{"text": "partial"}'])  # no [DONE]: the turn fails
    with failed.serving(), pytest.raises(AgentUnavailableError):
        await HttpAgent(failed.url, http, usage=ledger).run(
            RunRequest(ThreadKey(3), "s", 0, ("hi",)), RecordingSink()
        )
    assert ledger.recorded == []


@attrs.define
class StuckLedger:
    """A ledger whose writes never finish (a disk that stopped answering)."""

    async def record(self, usage: Usage) -> None:
        await anyio.sleep_forever()


async def test_a_ledger_that_hangs_costs_a_run_at_most_the_record_timeout(
    llm_server: LLMSimulator, chat_http: ChatHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.usage.RECORD_TIMEOUT", 0.3)
    client = ChatClient(llm_server.base_url, chat_http, read_timeout=5)
    chain = FallbackChain((entry("a/m1", [KEY], client, "m1"),))
    sink = RecordingSink()
    with captured_logs("WARNING") as logs, anyio.fail_after(5):
        await ChatAgent(chain, MemoryHistory(), usage=StuckLedger()).run(
            RunRequest(ThreadKey(77), "s", 0, ("hi",)), sink
        )
    assert sink.remembered, "the run answered all the same"
    assert any("usage of 1 model call(s) in chat 77 not recorded within 0.3s" in x for x in logs)
