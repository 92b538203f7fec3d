from __future__ import annotations

from actors.thread.records import MediaKind, MediaRef
from gateway.media.checks import MediaLimits, megabytes, refusal


def test_sizes_are_checked_against_their_kinds_limit_and_telegrams_cap() -> None:
    limits = MediaLimits(max_image_bytes=1024 * 1024, max_document_bytes=50 * 1024 * 1024)
    image = MediaRef(MediaKind.IMAGE, "a", size=2 * 1024 * 1024)
    assert (
        refusal([image], limits) == "This image (2 MB) is too big: I can read images of up to 1 MB."
    )
    document = MediaRef(MediaKind.DOCUMENT, "b", size=30 * 1024 * 1024, file_name="big.pdf")
    assert "up to 20 MB" in refusal([document], limits), "never above Telegram's cap"
    assert refusal([MediaRef(MediaKind.DOCUMENT, "c", size=None)], limits) == ""


def test_sound_needs_stt_and_a_duration_within_the_limit() -> None:
    voice = MediaRef(MediaKind.VOICE, "v", size=1000, duration=2 * 3600)
    assert "no speech-to-text service" in refusal([voice], MediaLimits(stt_available=False))
    reply = refusal([voice], MediaLimits(stt_max_seconds=600))
    assert (
        reply == "This voice message is too long (2 h 00 min): I can transcribe up to 10 min 00 s."
    )
    assert refusal([voice], MediaLimits()) == ""


def test_megabytes_reads_plainly() -> None:
    assert [megabytes(n) for n in (300 * 1024, 1536 * 1024, 20 * 1024 * 1024)] == [
        "300 KB",
        "1.5 MB",
        "20 MB",
    ]
