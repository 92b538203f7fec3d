"""What can be answered from a file's metadata alone, before any run: a file that is too
big to download, a voice note too long to transcribe, a voice note with nothing to
transcribe it. The reply names the limit; the message's outcome is recorded (a refusal).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from actors.thread.records import MediaKind, MediaRef

TELEGRAM_DOWNLOAD_CAP = 20 * 1024 * 1024
"""The most a bot may download through the Bot API (``getFile``): 20 MB."""

SOUND = frozenset({MediaKind.VOICE, MediaKind.AUDIO, MediaKind.VIDEO_NOTE})
"""The kinds that are transcribed."""

SUPPORTED = (
    "text, photos (and images sent as files), voice messages, audio files, video notes "
    "and documents (text files, PDFs)"
)
"""What a user may send, as the replies name it."""


@attrs.frozen
class MediaLimits:
    """The limits the metadata checks and the download apply."""

    max_image_bytes: int = TELEGRAM_DOWNLOAD_CAP
    """Largest image downloaded."""
    max_document_bytes: int = 10 * 1024 * 1024
    """Largest document downloaded."""
    stt_available: bool = True
    """Whether voice, audio and video notes can be transcribed (an STT endpoint is set)."""
    stt_max_seconds: int | None = None
    """Longest voice, audio or video note transcribed (``None``: no limit here)."""
    download_timeout: float = 60.0
    """Seconds one file's download may take."""

    def max_bytes(self, kind: MediaKind) -> int:
        """The largest file of ``kind`` downloaded (never above Telegram's cap)."""
        if kind is MediaKind.IMAGE:
            limit = self.max_image_bytes
        elif kind is MediaKind.DOCUMENT:
            limit = self.max_document_bytes
        else:
            limit = TELEGRAM_DOWNLOAD_CAP
        return min(limit, TELEGRAM_DOWNLOAD_CAP)


def megabytes(size: int) -> str:
    """``size`` bytes for a user: ``20 MB``, ``1.5 MB``, ``300 KB``."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(size / 1024))} KB"


def noun(ref: MediaRef) -> str:
    """What ``ref`` is, for a user."""
    return {
        MediaKind.IMAGE: "image",
        MediaKind.VOICE: "voice message",
        MediaKind.AUDIO: "audio file",
        MediaKind.VIDEO_NOTE: "video note",
        MediaKind.DOCUMENT: "document",
    }[ref.kind] + (f" {ref.file_name}" if ref.file_name else "")


def too_big(ref: MediaRef, limit: int) -> str:
    """The reply to a file over ``limit`` bytes."""
    size = f" ({megabytes(ref.size)})" if ref.size else ""
    return (
        f"This {noun(ref)}{size} is too big: I can read "
        f"{'images' if ref.kind is MediaKind.IMAGE else 'files'} of up to {megabytes(limit)}."
    )


def refusal(media: Sequence[MediaRef], limits: MediaLimits) -> str:
    """Why ``media`` cannot be used, from its metadata alone; empty if it may be."""
    for ref in media:
        limit = limits.max_bytes(ref.kind)
        if ref.size is not None and ref.size > limit:
            return too_big(ref, limit)
        if ref.kind in SOUND:
            if not limits.stt_available:
                return (
                    f"I cannot listen to this {noun(ref)}: no speech-to-text service is "
                    "configured (stt.base_url). Please write your message as text."
                )
            longest = limits.stt_max_seconds
            if longest is not None and ref.duration is not None and ref.duration > longest:
                return (
                    f"This {noun(ref)} is too long ({_duration(ref.duration)}): I can "
                    f"transcribe up to {_duration(longest)}."
                )
    return ""


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
