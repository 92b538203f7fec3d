"""Reading the files users send: images, voice (transcribed), documents, into content parts.

The gateway fetches a file's bytes (``gateway.media``) and hands them here with their
reference; what comes back is what the agent is given (``RunRequest.parts``):

* an image: an :class:`ImagePart` of its real type, read from the bytes (``images``);
* a document: a :class:`DocumentPart` with its name and text — text-like files as they are,
  PDFs' text through pypdf — or an image part for an unnamed image (``documents``);
* a voice message, audio file or video note: a :class:`TextPart` with its transcript
  (``stt``).

Whatever cannot be used (empty, corrupt, not what it claims, of a kind nothing reads, no
speech-to-text configured, a speech-to-text service that refuses its key or fails) raises
:class:`MediaUnusableError` with a reason for the user that names what is supported or what
to do. Nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

from actors.thread import MediaKind, MediaRef, MediaUnusableError, Part, TextPart
from providers.media.documents import SUPPORTED, ReadSettings, read_document
from providers.media.images import read_image
from providers.media.stt import SpeechToText, Transcriber, noun

__all__ = ["SUPPORTED", "ReadSettings", "SpeechToText", "Transcriber", "read"]

_DEFAULTS = ReadSettings()


async def read(
    ref: MediaRef,
    data: bytes,
    *,
    settings: ReadSettings = _DEFAULTS,
    transcriber: Transcriber | None = None,
) -> tuple[Part, ...]:
    """The content of one file, or :class:`MediaUnusableError` with a reason for the user.

    ``settings`` bounds documents (``[media]``); ``transcriber`` turns speech into text
    (``None``: speech-to-text is not configured, and voice is refused with a reply).
    """
    if ref.kind is MediaKind.IMAGE:
        return (await read_image(data, ref.file_name or "the photo"),)
    if ref.kind is MediaKind.DOCUMENT:
        return (await read_document(data, ref.file_name, ref.mime_type, settings),)
    if transcriber is None:
        raise MediaUnusableError(
            f"I can't listen to a {noun(ref.kind)} here: speech-to-text is not set up. "
            "Please send your message as text."
        )
    return (TextPart(await transcriber.transcribe(ref, data)),)
