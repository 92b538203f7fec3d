"""Reading the files users send: images, voice (transcribed), documents, into content parts.

The gateway fetches a file's bytes (``gateway.media``) and hands them here with their
reference; what comes back is what the agent is given (``RunRequest.parts``).
"""

from __future__ import annotations

from actors.thread import MediaRef, MediaUnusableError, Part


async def read(ref: MediaRef, data: bytes) -> tuple[Part, ...]:
    """The content of one file, or :class:`MediaUnusableError` with a reason for the user.

    The interface the gateway codes against; the media work of issue 20 fills it in (and
    may add keyword arguments for settings and the transcriber).
    """
    raise MediaUnusableError(f"files of kind {ref.kind.value} cannot be read yet")
