from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from loguru import logger

from actors.thread import MediaKind, MediaRef, MediaUnusableError
from providers.media.stt import SpeechToText, upload_name
from tests.fakes.llm import LLMSimulator, Transcript

pytestmark = pytest.mark.anyio
SECRET_ONE = "sk-stt-SECRET-one-0123456789"
SECRET_TWO = "sk-stt-SECRET-two-0123456789"
VOICE = MediaRef(MediaKind.VOICE, "voice-1", size=12, mime_type="audio/ogg", duration=3)


@pytest.fixture
def anyio_backend(network_backend: Any) -> Any:
    return network_backend


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client(
    server: LLMSimulator, http: httpx.AsyncClient, *keys: str, timeout: float = 5.0
) -> SpeechToText:
    return SpeechToText.configured(
        server.base_url, "whisper-1", keys, ("sk-llm-key-abcdefgh",), http, read_timeout=timeout
    )


async def test_a_voice_note_goes_up_as_multipart_and_its_transcript_comes_back(
    llm_server: LLMSimulator, http: httpx.AsyncClient
) -> None:
    text = await client(llm_server, http, SECRET_ONE).transcribe(VOICE, b"  what time is it  ")
    assert text == "what time is it"
    [upload] = llm_server.transcriptions
    assert (upload.key, upload.model) == (SECRET_ONE, "whisper-1")
    assert (upload.file_name, upload.content_type) == ("voice.ogg", "audio/ogg")
    assert upload.data == b"  what time is it  "
    assert upload.fields == {"response_format": "json"}


async def test_without_keys_of_its_own_it_uses_the_llm_keys(
    llm_server: LLMSimulator, http: httpx.AsyncClient
) -> None:
    stt = client(llm_server, http)
    assert [key.label for key in stt.keys] == ["llm-1"]
    await stt.transcribe(VOICE, b"hi")
    assert llm_server.transcriptions[0].key == "sk-llm-key-abcdefgh"
    own = client(llm_server, http, SECRET_ONE, SECRET_TWO)
    assert [key.label for key in own.keys] == ["stt-1", "stt-2"]
    assert SECRET_ONE not in repr(own)


def test_the_upload_is_named_for_its_format() -> None:
    assert upload_name(MediaRef(MediaKind.AUDIO, "a", file_name="song.flac")) == "song.flac"
    assert upload_name(MediaRef(MediaKind.AUDIO, "a", mime_type="audio/mpeg")) == "audio.mp3"
    assert upload_name(MediaRef(MediaKind.AUDIO, "a", file_name="memo")) == "audio.mp3"
    assert upload_name(MediaRef(MediaKind.VIDEO_NOTE, "v")) == "video_note.mp4"
    assert upload_name(MediaRef(MediaKind.VOICE, "v")) == "voice.ogg"


@pytest.mark.parametrize("status", [401, 429, 500])
async def test_a_refused_or_failing_key_passes_to_the_next(
    llm_server: LLMSimulator, http: httpx.AsyncClient, status: int
) -> None:
    llm_server.script_transcripts(Transcript(status=status), Transcript("second key heard it"))
    stt = client(llm_server, http, SECRET_ONE, SECRET_TWO)
    assert await stt.transcribe(VOICE, b"x") == "second key heard it"
    assert [u.key for u in llm_server.transcriptions] == [SECRET_ONE, SECRET_TWO]


KEY_REFUSED = (
    "Speech-to-text refused its API keys, so I cannot listen to voice messages now; please "
    "send text (the operator must check [stt])."
)


def unavailable(why: str) -> str:
    return f"Speech-to-text is unavailable right now ({why}); please try again later or send text."


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([Transcript(status=401)] * 2, KEY_REFUSED),
        ([Transcript(status=401), Transcript(status=403)], KEY_REFUSED),
        (
            [Transcript(status=429, retry_after="20")] * 2,
            unavailable("HTTP 429, retry after 20 s"),
        ),
        ([Transcript(status=500), Transcript(status=503)], unavailable("HTTP 500; HTTP 503")),
        ([Transcript(status=401), Transcript(status=503)], unavailable("HTTP 503")),
        (
            [Transcript(status=404)] * 2,
            "Speech-to-text failed (HTTP 404), so I cannot listen to voice messages now; "
            "please send text (the operator must check [stt]).",
        ),
    ],
    ids=["401", "401-403", "429", "5xx", "401-then-503", "404"],
)
async def test_when_every_key_fails_the_user_is_told_plainly_and_no_key_is_said(
    llm_server: LLMSimulator, http: httpx.AsyncClient, answers: list[Transcript], expected: str
) -> None:
    """Not the model provider's "unavailable": a refused key is the operator's to fix (review)."""
    llm_server.script_transcripts(*answers)
    logged: list[str] = []
    sink = logger.add(logged.append, level="WARNING")
    try:
        with pytest.raises(MediaUnusableError) as caught:
            await client(llm_server, http, SECRET_ONE, SECRET_TWO).transcribe(VOICE, b"x")
    finally:
        logger.remove(sink)
    assert caught.value.reason == expected
    assert len(logged) == 2
    for text in [caught.value.reason, *logged]:
        assert "SECRET" not in text
        assert "sk-" not in text


async def test_a_key_the_service_rejects_with_401_is_the_operators_to_fix(
    http: httpx.AsyncClient,
) -> None:
    with LLMSimulator(accepted_keys=frozenset({"sk-the-right-one"})).serving_in_thread() as server:
        logged: list[str] = []
        sink = logger.add(logged.append, level="WARNING")
        try:
            with pytest.raises(MediaUnusableError) as caught:
                await client(server, http, SECRET_ONE).transcribe(
                    MediaRef(MediaKind.AUDIO, "a", mime_type="audio/mpeg"), b"x"
                )
        finally:
            logger.remove(sink)
        assert caught.value.reason == (
            "Speech-to-text refused its API key, so I cannot listen to audio files now; "
            "please send text (the operator must check [stt])."
        )
        [line] = logged
        assert "HTTP 401 (invalid_api_key)" in line, "the operator's log says why"
        assert SECRET_ONE not in line
        assert await client(server, http, "sk-the-right-one").transcribe(VOICE, b"ok") == "ok"


@pytest.mark.slow
async def test_a_service_that_never_answers_times_out_as_unavailable(
    llm_server: LLMSimulator, http: httpx.AsyncClient
) -> None:
    llm_server.script_transcripts(Transcript(hang=True))
    stt = client(llm_server, http, SECRET_ONE, SECRET_TWO, timeout=0.5)
    with pytest.raises(MediaUnusableError) as caught:
        await stt.transcribe(VOICE, b"x")
    assert caught.value.reason == unavailable("no answer within 0.5 s")
    assert len(llm_server.transcriptions) == 1  # not tried again on the next key


async def test_an_unreachable_service_is_unavailable(http: httpx.AsyncClient) -> None:
    stt = SpeechToText("http://127.0.0.1:9/v1", "whisper-1", (), http)
    with pytest.raises(MediaUnusableError) as caught:
        await stt.transcribe(VOICE, b"x")
    assert caught.value.reason == unavailable("it could not be reached")


async def test_a_connection_that_times_out_is_unreachable_and_not_tried_again() -> None:
    attempts: list[httpx.Request] = []

    def hang_up(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang_up)) as mocked:
        stt = SpeechToText.configured("http://stt/v1", "m", (SECRET_ONE, SECRET_TWO), (), mocked)
        with pytest.raises(MediaUnusableError) as caught:
            await stt.transcribe(VOICE, b"x")
    assert caught.value.reason == unavailable("it could not be reached")
    assert len(attempts) == 1


async def test_an_answer_without_a_transcript_is_unavailable() -> None:
    def no_text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"transcript": "wrong field"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(no_text)) as mocked:
        stt = SpeechToText.configured("http://stt/v1", "m", (SECRET_ONE,), (), mocked)
        with pytest.raises(MediaUnusableError) as caught:
            await stt.transcribe(VOICE, b"x")
    assert caught.value.reason == unavailable("it answered without a transcript")


async def test_a_file_the_service_refuses_is_unusable_with_a_plain_reason(
    llm_server: LLMSimulator, http: httpx.AsyncClient
) -> None:
    llm_server.script_transcripts(Transcript(status=400))
    with pytest.raises(MediaUnusableError) as caught:
        await client(llm_server, http, SECRET_ONE, SECRET_TWO).transcribe(VOICE, b"x")
    assert caught.value.reason.startswith(
        "The voice message could not be transcribed: the speech-to-text service refused it "
        "(HTTP 400)."
    )
    assert "ogg, mp3, m4a, wav, mp4" in caught.value.reason
    assert len(llm_server.transcriptions) == 1


async def test_silence_too_long_or_empty_recordings_are_unusable(
    llm_server: LLMSimulator, http: httpx.AsyncClient
) -> None:
    stt = client(llm_server, http, SECRET_ONE)
    llm_server.script_transcripts(Transcript(" "))
    with pytest.raises(MediaUnusableError, match="could not make out any words in the voice"):
        await stt.transcribe(VOICE, b"x")
    two_hours = MediaRef(MediaKind.VIDEO_NOTE, "v", duration=7200)
    with pytest.raises(MediaUnusableError) as caught:
        await stt.transcribe(two_hours, b"x")
    assert (
        caught.value.reason == "The video message is 2 h 0 min long; I transcribe up to 10 minutes."
    )
    with pytest.raises(MediaUnusableError, match=r"The audio file is empty \(0 bytes\)"):
        await stt.transcribe(MediaRef(MediaKind.AUDIO, "a"), b"")
    assert len(llm_server.transcriptions) == 1  # neither was sent
