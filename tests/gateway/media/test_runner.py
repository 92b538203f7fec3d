from __future__ import annotations

from collections.abc import Sequence

import anyio
import attrs
import pytest

from actors.thread.exceptions import MediaUnusableError
from actors.thread.ports import ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey, Turn
from gateway.media.runner import HEARTBEAT, MediaRunner, quote

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


async def picky(ref: MediaRef, data: bytes) -> tuple[Part, ...]:
    """Reads every file but those whose id starts with ``bad``."""
    if ref.file_id.startswith("bad"):
        raise MediaUnusableError(f"{ref.file_id} is damaged.")
    return await read(ref, data)


def image(file_id: str) -> MediaRef:
    return MediaRef(MediaKind.IMAGE, file_id)


async def test_a_bad_file_is_left_out_alone_and_the_rest_of_the_run_is_answered() -> None:
    """Found by review: one unusable file failed every input batched into its run."""
    agent, sink = Agent(), Sink()
    request = RunRequest(
        ThreadKey(1),
        "s",
        0,
        ("just text", "look", "these"),
        message_ids=(1, 2, 3),
        media=((), (image("bad-1"),), (image("a"), image("bad-2"), image("c"))),
    )
    await MediaRunner(agent, fetch, picky).run(request, sink)  # type: ignore[arg-type]
    [sent] = agent.requests
    assert sent.parts[0] == ()
    assert sent.parts[1] == (TextPart("[the file: not readable: bad-1 is damaged.]"),)
    assert sent.parts[2] == (
        ImagePart("image/png", b"a"),
        TextPart("[image 2 of 3: not readable: bad-2 is damaged.]"),
        ImagePart("image/png", b"c"),
    )
    assert sink.emitted[0] == "⚠️ bad-1 is damaged.\n⚠️ image 2 of 3: bad-2 is damaged.\n\n"
    assert sink.emitted[-1] == "answer"


async def test_a_run_with_nothing_usable_fails_with_every_reason() -> None:
    agent, sink = Agent(), Sink()
    request = RunRequest(
        ThreadKey(1),
        "s",
        0,
        ("", "caption"),
        message_ids=(1, 2),
        media=((image("bad-1"),), (image("bad-2"),)),
    )
    with pytest.raises(MediaUnusableError) as caught:
        await MediaRunner(agent, fetch, picky).run(request, sink)  # type: ignore[arg-type]
    assert caught.value.reason == "bad-1 is damaged. bad-2 is damaged."
    assert not agent.requests
    assert not sink.emitted


async def test_a_long_download_keeps_heartbeating() -> None:
    """The stall watchdog sees progress while a file downloads or is transcribed."""

    async def slow(ref: MediaRef) -> bytes:
        await anyio.sleep(1.0)
        return b"x"

    agent, sink = Agent(), Sink()
    request = RunRequest(ThreadKey(1), "s", 0, ("",), media=((image("a"),),))
    runner = MediaRunner(agent, slow, read, heartbeat=0.1)  # type: ignore[arg-type]
    await runner.run(request, sink)
    assert sink.beats >= 8, "about one each 0.1 s of the download"
    assert HEARTBEAT < 30, "well below the default stall timeout"
