from __future__ import annotations

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.thread import (
    DocumentPart,
    ImagePart,
    MediaKind,
    MediaRef,
    MediaUnusableError,
    TextPart,
)
from providers.media import SpeechToText, read
from tests.fakes.llm import LLMSimulator
from tests.providers.media.files import image, pdf

pytestmark = pytest.mark.anyio


async def test_each_kind_becomes_its_part() -> None:
    png = image("PNG")
    assert await read(MediaRef(MediaKind.IMAGE, "p"), png) == (ImagePart("image/png", png),)
    doc = await read(MediaRef(MediaKind.DOCUMENT, "d", file_name="a.md"), b"# hi")
    assert doc == (DocumentPart("a.md", "# hi"),)
    paper = await read(MediaRef(MediaKind.DOCUMENT, "d", file_name="p.pdf"), pdf("Abstract"))
    assert paper == (DocumentPart("p.pdf", "[page 1]\nAbstract"),)


@pytest.mark.parametrize(
    ("kind", "noun"),
    [
        (MediaKind.VOICE, "voice message"),
        (MediaKind.AUDIO, "audio file"),
        (MediaKind.VIDEO_NOTE, "video message"),
    ],
)
async def test_without_speech_to_text_a_recording_gets_a_plain_reply(
    kind: MediaKind, noun: str
) -> None:
    with pytest.raises(MediaUnusableError) as caught:
        await read(MediaRef(kind, "v"), b"OggS...")
    assert caught.value.reason == (
        f"I can't listen to a {noun} here: speech-to-text is not set up. "
        "Please send your message as text."
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_voice_note_becomes_its_transcript(llm_server: LLMSimulator) -> None:
    async with httpx.AsyncClient() as http:
        stt = SpeechToText(llm_server.base_url, "whisper-1", (), http)
        parts = await read(MediaRef(MediaKind.VOICE, "v"), b"remind me at noon", transcriber=stt)
    assert parts == (TextPart("remind me at noon"),)
    assert llm_server.transcriptions[0].file_name == "voice.ogg"


SEEDS = [
    b"",
    image("PNG"),
    image("JPEG"),
    image("GIF"),
    image("BMP"),
    image("TIFF"),
    pdf("a page"),
    b"%PDF-1.7\n",
    b"PK\x03\x04",
]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from([MediaKind.IMAGE, MediaKind.DOCUMENT]),
    seed=st.sampled_from(SEEDS),
    cut=st.integers(0, 4000),
    noise=st.binary(max_size=64),
    name=st.sampled_from(["", "a.txt", "a.pdf", "a.png", "a.docx", "a.weird", "Makefile"]),
    mime=st.sampled_from(["", "text/plain", "application/pdf", "image/png", "video/mp4"]),
)
def test_whatever_the_bytes_the_answer_is_parts_or_a_plain_refusal(
    kind: MediaKind, seed: bytes, cut: int, noise: bytes, name: str, mime: str
) -> None:
    data = seed[:cut] + noise  # real files cut short and followed by garbage, or garbage
    ref = MediaRef(kind, "f", size=len(data), mime_type=mime, file_name=name)

    async def attempt() -> tuple[object, ...] | str:
        try:
            return await read(ref, data)
        except MediaUnusableError as error:
            return error.reason

    answer = anyio.run(attempt)
    if isinstance(answer, str):
        assert answer.endswith((".", ")")), answer
        assert "Error" not in answer  # no exception names leak into the reply
    else:
        assert len(answer) == 1
        assert isinstance(answer[0], ImagePart | DocumentPart)
