"""Speech to text: an OpenAI-compatible ``/audio/transcriptions`` endpoint, over httpx.

One client serves OpenAI (whisper-1, gpt-4o-transcribe), Groq (whisper-large-v3) and local
faster-whisper or whisper.cpp servers that speak the same API: the file goes up as a
multipart form with the model's name, the transcript comes back as ``{"text": ...}``.

Whatever goes wrong is a :class:`MediaUnusableError`, whose reason the user reads as it
is: the file itself was refused, is empty, too long, or held no words (sending it again
will not help); the service refused every key (a configuration error: the operator must
check ``[stt]``, the user had better send text); or it failed — rate limited, 5xx, no
answer, not reachable (try again later, or send text). None of these is the *model*
provider being unavailable, so none is an ``AgentUnavailableError``. Keys are tried in
turn when one is refused or limited; none is ever logged or put in a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import httpx
from loguru import logger

from actors.thread import MediaKind, MediaRef, MediaUnusableError
from providers.openai_client import parse_retry_after
from providers.secrets import ApiKey, redact

_NOUNS = {
    MediaKind.VOICE: "voice message",
    MediaKind.AUDIO: "audio file",
    MediaKind.VIDEO_NOTE: "video message",
}
_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/webm": "webm",
    "video/mp4": "mp4",
}
_DEFAULT_EXTENSIONS = {MediaKind.VOICE: "ogg", MediaKind.VIDEO_NOTE: "mp4", MediaKind.AUDIO: "mp3"}
_REFUSED_FILE = frozenset({400, 413, 415, 422})
"""The service refused the file itself: another key will not help, nor will trying again."""
_REFUSED_KEY = frozenset({401, 403})
"""The service refused the key: the next one is tried."""


class Transcriber(Protocol):
    """What :func:`providers.media.read` hands voice, audio and video notes to."""

    async def transcribe(self, ref: MediaRef, data: bytes) -> str:
        """The words spoken in ``data`` (the file ``ref`` names), or a
        :class:`MediaUnusableError` saying why not."""


def noun(kind: MediaKind) -> str:
    """``voice message``, ``audio file``, ``video message``."""
    return _NOUNS.get(kind, "recording")


def upload_name(ref: MediaRef) -> str:
    """The file name sent with the upload: services tell the format by its extension."""
    if ref.file_name and "." in ref.file_name:
        return ref.file_name
    mime = ref.mime_type.lower().split(";")[0].strip()
    extension = _EXTENSIONS.get(mime, _DEFAULT_EXTENSIONS.get(ref.kind, "ogg"))
    return f"{ref.kind.value}.{extension}"


@attrs.frozen
class SpeechToText:
    """Calls one transcription endpoint.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` (``/audio/transcriptions`` is added).
        model: e.g. ``whisper-1``.
        keys: tried in order; empty: no ``Authorization`` header (a local server).
        http: the shared ``httpx.AsyncClient`` (its owner closes it).
        max_seconds: longer recordings are refused without being sent.
        read_timeout: seconds to wait for the transcript (long files take a while).
    """

    base_url: str
    model: str
    keys: tuple[ApiKey, ...] = attrs.field(repr=False)
    _http: httpx.AsyncClient = attrs.field(repr=False)
    max_seconds: int = 600
    read_timeout: float = 120.0
    connect_timeout: float = 10.0

    @classmethod
    def configured(
        cls,
        base_url: str,
        model: str,
        api_keys: Sequence[str],
        llm_keys: Sequence[str],
        http: httpx.AsyncClient,
        *,
        max_seconds: int = 600,
        read_timeout: float = 120.0,
    ) -> SpeechToText:
        """From the config: its own keys (``stt-1``, ...), else the LLM's (``llm-1``, ...)."""
        keys = tuple(ApiKey(f"stt-{i}", k) for i, k in enumerate(api_keys, 1)) or tuple(
            ApiKey(f"llm-{i}", k) for i, k in enumerate(llm_keys, 1)
        )
        return cls(base_url, model, keys, http, max_seconds, read_timeout)

    async def transcribe(self, ref: MediaRef, data: bytes) -> str:
        what = noun(ref.kind)
        if ref.duration is not None and ref.duration > self.max_seconds:
            raise MediaUnusableError(
                f"The {what} is {_minutes(ref.duration)} long; I transcribe up to "
                f"{_minutes(self.max_seconds)}."
            )
        if not data:
            raise MediaUnusableError(f"The {what} is empty (0 bytes).")
        transient: list[str] = []  # rate limited, 5xx, not reachable: try again later
        refused: list[str] = []  # the key or the endpoint refused: the operator must look
        for key in self.keys or (ApiKey("no key", ""),):
            try:
                response = await self._post(key, ref, data)
            except httpx.TimeoutException as error:  # not tried again with the next key
                connecting = isinstance(error, httpx.ConnectTimeout)
                why = (
                    "it could not be reached"
                    if connecting
                    else f"no answer within {self.read_timeout:g} s"
                )
                logger.warning("speech-to-text timed out: {why}", why=why)
                raise MediaUnusableError(_unavailable(why)) from None
            except httpx.TransportError as error:
                logger.warning("speech-to-text not reachable: {error}", error=type(error).__name__)
                transient.append("it could not be reached")
                continue
            if response.status_code == 200:
                return self._transcript(response, what)
            failure = _status(response, key)
            logger.warning("speech-to-text with key {key}: {failure}", key=key, failure=failure)
            if response.status_code in _REFUSED_FILE:
                raise MediaUnusableError(
                    f"The {what} could not be transcribed: the speech-to-text service refused "
                    f"it ({failure}). I transcribe voice messages, audio files and video "
                    "messages in the usual formats (ogg, mp3, m4a, wav, mp4)."
                )
            code = response.status_code
            if code == 429 or code >= 500:
                transient.append(_status(response, key, with_code=False))
            else:
                refused.append(f"HTTP {code}")
        if transient:
            raise MediaUnusableError(_unavailable("; ".join(dict.fromkeys(transient))))
        if set(refused) <= {f"HTTP {code}" for code in _REFUSED_KEY}:
            raise MediaUnusableError(
                f"Speech-to-text refused its API {'keys' if len(self.keys) > 1 else 'key'}, so "
                f"I cannot listen to {what}s now; please send text (the operator must check "
                "[stt])."
            )
        raise MediaUnusableError(
            f"Speech-to-text failed ({'; '.join(dict.fromkeys(refused))}), so I cannot listen "
            f"to {what}s now; please send text (the operator must check [stt])."
        )

    async def _post(self, key: ApiKey, ref: MediaRef, data: bytes) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key.secret}"} if key.secret else {}
        return await self._http.post(
            self.base_url.rstrip("/") + "/audio/transcriptions",
            files={"file": (upload_name(ref), data, ref.mime_type or "application/octet-stream")},
            data={"model": self.model, "response_format": "json"},
            headers=headers,
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
        )

    @staticmethod
    def _transcript(response: httpx.Response, what: str) -> str:
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                text = response.json()["text"]
            except (ValueError, KeyError, TypeError):
                text = None
            if not isinstance(text, str):
                raise MediaUnusableError(_unavailable("it answered without a transcript"))
        else:
            text = response.text  # response_format=text servers
        if not text.strip():
            raise MediaUnusableError(f"I could not make out any words in the {what}.")
        return text.strip()


def _unavailable(why: str) -> str:
    """The reason given when the service failed in a way that may pass."""
    return f"Speech-to-text is unavailable right now ({why}); please try again later or send text."


def _status(response: httpx.Response, key: ApiKey, *, with_code: bool = True) -> str:
    """``HTTP 429 (rate_limit_exceeded), retry after 20 s``, with no secret in it
    (``with_code=False``: without the service's error code, for the user)."""
    code = ""
    try:
        error = response.json().get("error", {})
        if isinstance(error, dict):
            code = redact(str(error.get("code") or error.get("type") or ""), key.secret)[:60]
    except (ValueError, AttributeError):
        pass
    text = f"HTTP {response.status_code}" + (f" ({code})" if code and with_code else "")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return text + (f", retry after {retry_after:.0f} s" if retry_after is not None else "")


def _minutes(seconds: int) -> str:
    """``45 seconds``, ``10 minutes``, ``2 h 5 min``."""
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
