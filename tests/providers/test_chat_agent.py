"""The chat agent with media: what the model (the LLM simulator, over real HTTP) received."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import pytest

from actors.thread.exceptions import AgentRejectedError, MediaUnusableError
from actors.thread.ports import DocumentPart, ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey, Turn
from gateway.demo.model_sim import content_text, image_urls
from providers.chain import FallbackChain, ProviderEntry
from providers.chat_agent import (
    IMAGE_ONLY_OFF,
    IMAGE_ONLY_REFUSED,
    VISION_OFF,
    VISION_REFUSED,
    ChatAgent,
)
from providers.http import open_chat_http
from providers.openai_client import ChatClient
from providers.pool import CredentialPool
from providers.secrets import ApiKey
from tests.fakes.llm import LLMSimulator, Reply
from tests.fakes.sink import MemoryHistory, RecordingSink

pytestmark = pytest.mark.anyio
KEY = ApiKey("k0", "sk-k0-secret-000")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg-bytes" * 50


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@attrs.define
class Setup:
    server: LLMSimulator
    chain: FallbackChain
    history: MemoryHistory = attrs.Factory(MemoryHistory)

    def agent(self, **options: Any) -> ChatAgent:
        return ChatAgent(self.chain, self.history, "sys", **options)

    def user_contents(self) -> list[Any]:
        """The content of the last user message of each request the model received."""
        return [
            [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
            for _, body in self.server.requests
        ]


@pytest.fixture
async def setup(llm_server: LLMSimulator) -> AsyncIterator[Setup]:
    async with open_chat_http() as http:
        client = ChatClient(llm_server.base_url, http, read_timeout=5)
        entry = ProviderEntry("sim/m", CredentialPool("sim", [KEY]), client, "m")
        yield Setup(llm_server, FallbackChain((entry,), backoff=0.01))


def turn(
    *inputs: tuple[str, Sequence[Part], Sequence[MediaRef]], session: str = "s1"
) -> RunRequest:
    return RunRequest(
        ThreadKey(1),
        session,
        0,
        tuple(text for text, _, _ in inputs),
        media=tuple(tuple(refs) for _, _, refs in inputs),
        parts=tuple(tuple(parts) for _, parts, _ in inputs),
    )


def photo(n: int = 1) -> list[MediaRef]:
    return [MediaRef(MediaKind.IMAGE, f"photo-{i}", 1000, "image/jpeg") for i in range(n)]


def data_of(url: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert url.startswith(prefix), url[:40]
    return base64.b64decode(url.removeprefix(prefix), validate=True)


async def test_a_photo_goes_to_the_model_as_an_image_part_with_its_caption(
    setup: Setup,
) -> None:
    sink = RecordingSink()
    await setup.agent().run(turn(("what is this?", [ImagePart("image/png", PNG)], photo())), sink)
    (content,) = setup.user_contents()
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["type"] == "image_url"
    assert data_of(content[1]["image_url"]["url"], "image/png") == PNG
    assert "".join(sink.chunks) == "You said: what is this? and 1 image (turn 1 of this session)"
    assert sink.remembered == [
        Turn("user", "[image: what is this?]", tuple(photo())),
        Turn("assistant", "".join(sink.chunks)),
    ]


async def test_an_album_and_a_queued_text_make_one_user_message_in_order(setup: Setup) -> None:
    images = [ImagePart("image/png", PNG), ImagePart("image/jpeg", JPEG)]
    sink = RecordingSink()
    await setup.agent().run(turn(("", images, photo(2)), ("and which is older?", [], [])), sink)
    (content,) = setup.user_contents()
    assert [b["type"] for b in content] == ["image_url", "image_url", "text"]
    assert data_of(content[0]["image_url"]["url"], "image/png") == PNG
    assert data_of(content[1]["image_url"]["url"], "image/jpeg") == JPEG
    assert content[2]["text"] == "and which is older?"
    assert sink.remembered[0] == Turn("user", "[2 images]\n\nand which is older?", tuple(photo(2)))


async def test_a_transcript_is_the_user_turn_and_the_history_keeps_it_as_voice(
    setup: Setup,
) -> None:
    voice = [MediaRef(MediaKind.VOICE, "voice-1", 9000, "audio/ogg", duration=4)]
    sink = RecordingSink()
    await setup.agent().run(turn(("", [TextPart("remind me to call Ann")], voice)), sink)
    assert setup.user_contents() == ["remind me to call Ann"]  # plain text: any model takes it
    assert sink.remembered[0] == Turn("user", "[voice: remind me to call Ann]", tuple(voice))


async def test_a_document_is_inlined_with_its_name_and_the_history_keeps_only_the_name(
    setup: Setup,
) -> None:
    text = "line one\nline two\n" * 100
    ref = MediaRef(MediaKind.DOCUMENT, "doc-1", len(text), "text/plain", "notes.txt")
    sink = RecordingSink()
    await setup.agent().run(turn(("summarize", [DocumentPart("notes.txt", text)], [ref])), sink)
    (content,) = setup.user_contents()
    assert content == f"summarize\n\n[document: notes.txt]\n{text}"
    assert sink.remembered[0] == Turn("user", "[document: notes.txt]\nsummarize", (ref,))


async def test_later_turns_carry_the_placeholder_never_the_image(setup: Setup) -> None:
    agent = setup.agent(context_budget=200)
    first = RecordingSink()
    await agent.run(turn(("my cat", [ImagePart("image/png", PNG)], photo())), first)
    setup.history.answered("s1", first)
    await agent.run(turn(("what colour was it?", [], [])), RecordingSink())
    _, body = setup.server.requests[-1]
    assert body["messages"][1] == {"role": "user", "content": "[image: my cat]"}
    assert not any(image_urls(m["content"]) for m in body["messages"])
    assert body["messages"][-1] == {"role": "user", "content": "what colour was it?"}
    assert all(len(t.content) < 200 for t in setup.history.sessions["s1"])


async def test_vision_off_answers_the_text_and_says_the_image_was_not_seen(
    setup: Setup,
) -> None:
    sink = RecordingSink()
    await setup.agent(vision=False).run(
        turn(("is this a cat?", [ImagePart("image/png", PNG)], photo())), sink
    )
    (content,) = setup.user_contents()
    assert isinstance(content, str)
    assert content.startswith("is this a cat?\n\n[1 image sent here could not be shown to you]")
    assert sink.chunks[0] == VISION_OFF
    answer = "".join(sink.chunks[1:])
    assert answer.startswith("You said: is this a cat?")
    assert [t.content for t in sink.remembered] == ["[image: is this a cat?]", answer]


async def test_vision_off_and_only_an_image_is_a_clear_reply_without_a_request(
    setup: Setup,
) -> None:
    sink = RecordingSink()
    with pytest.raises(MediaUnusableError) as info:
        await setup.agent(vision=False).run(
            turn(("", [ImagePart("image/png", PNG)], photo())), sink
        )
    assert info.value.reason == IMAGE_ONLY_OFF
    assert setup.server.requests == []
    assert sink.chunks == []
    assert sink.remembered == []


async def test_a_provider_refusing_images_gets_the_text_alone_and_the_user_is_told(
    setup: Setup,
) -> None:
    setup.server.vision = False
    sink = RecordingSink()
    await setup.agent().run(turn(("is this a cat?", [ImagePart("image/png", PNG)], photo())), sink)
    refused, answered = setup.user_contents()
    assert image_urls(refused)
    assert not image_urls(answered)
    assert content_text(answered).startswith("is this a cat?")
    assert sink.chunks[0] == VISION_REFUSED
    assert "".join(sink.chunks[1:]).startswith("You said: is this a cat?")


async def test_a_provider_refusing_an_image_alone_is_a_clear_reply(setup: Setup) -> None:
    setup.server.vision = False
    with pytest.raises(MediaUnusableError) as info:
        await setup.agent().run(turn(("", [ImagePart("image/png", PNG)], photo())), RecordingSink())
    assert info.value.reason == IMAGE_ONLY_REFUSED
    assert len(setup.server.requests) == 1


async def test_other_refusals_of_a_request_with_images_are_not_retried(setup: Setup) -> None:
    setup.server.script(KEY.secret, Reply(status=404, error_code="model_not_found"))
    with pytest.raises(AgentRejectedError):
        await setup.agent().run(
            turn(("hi", [ImagePart("image/png", PNG)], photo())), RecordingSink()
        )
    assert len(setup.server.requests) == 1


async def test_a_text_turn_is_sent_as_before(setup: Setup) -> None:
    await setup.agent().run(RunRequest(ThreadKey(1), "s1", 0, ("a", "b")), RecordingSink())
    assert setup.user_contents() == ["a\n\nb"]
