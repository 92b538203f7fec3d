from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from actors.thread.ports import ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey, Turn
from gateway.media.runner import MediaRunner, quote

pytestmark = pytest.mark.anyio


@attrs.define
class Sink:
    emitted: list[str] = attrs.Factory(list)
    beats: int = 0

    async def emit(self, text: str) -> None:
        self.emitted.append(text)

    def heartbeat(self) -> None:
        self.beats += 1

    def remember(self, turns: Sequence[Turn]) -> None:
        pass


@attrs.define
class Agent:
    requests: list[RunRequest] = attrs.Factory(list)

    async def run(self, request: RunRequest, sink: Sink) -> None:
        self.requests.append(request)
        await sink.emit("answer")


async def fetch(ref: MediaRef) -> bytes:
    return ref.file_id.encode()


async def read(ref: MediaRef, data: bytes) -> tuple[Part, ...]:
    if ref.kind is MediaKind.VOICE:
        return (TextPart(f"heard {data.decode()}"),)
    return (ImagePart("image/png", data),)


async def test_parts_are_filled_per_input_and_a_transcript_is_echoed_first() -> None:
    agent, sink = Agent(), Sink()
    request = RunRequest(
        ThreadKey(1),
        "s",
        0,
        ("look", "listen"),
        message_ids=(1, 2),
        media=((MediaRef(MediaKind.IMAGE, "img"),), (MediaRef(MediaKind.VOICE, "v1"),)),
    )
    await MediaRunner(agent, fetch, read).run(request, sink)  # type: ignore[arg-type]
    assert agent.requests[0].parts == ((ImagePart("image/png", b"img"),), (TextPart("heard v1"),))
    assert sink.emitted == ["> heard v1\n\n", "answer"]
    assert sink.beats >= 4


async def test_text_only_runs_pass_through_and_echo_can_be_off() -> None:
    agent, sink = Agent(), Sink()
    await MediaRunner(agent, fetch, read).run(RunRequest(ThreadKey(1), "s", 0, ("hi",)), sink)  # type: ignore[arg-type]
    assert agent.requests[0].parts == ()
    voice = RunRequest(ThreadKey(1), "s", 0, ("",), media=((MediaRef(MediaKind.VOICE, "v"),),))
    quiet = Sink()
    await MediaRunner(agent, fetch, read, echo=False).run(voice, quiet)  # type: ignore[arg-type]
    assert quiet.emitted == ["answer"]


def test_quote_marks_every_line() -> None:
    assert quote("one\n\ntwo") == "> one\n>\n> two\n\n"
