"""What a file is, by its bytes: the few kinds a reason names, and whether it is text."""

from __future__ import annotations

import codecs


def sniff(data: bytes) -> str:
    """What ``data`` is, by its first bytes, in words (``""``: nothing recognised)."""
    head = data[:16]
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if b"%PDF-" in data[:1024]:
        return "a PDF"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (e.g. an Office document)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head[4:8] == b"ftyp":
        return "a video or audio file (MP4)"
    if head.startswith(b"OggS"):
        return "an audio file (Ogg)"
    if head.startswith(b"ID3"):
        return "an audio file (MP3)"
    return ""


def what_it_is(data: bytes) -> str:
    """`` (it is ...)`` for the reason, or nothing when the bytes are of no known kind."""
    found = sniff(data)
    if found:
        return f" (it is {found})"
    return " (it is text)" if looks_like_text(data) else ""


def looks_like_text(data: bytes) -> bool:
    """Whether the start of ``data`` is UTF-8 text (a character cut at the end is fine)."""
    head = data[:4096]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return is_plain(text)


def is_plain(text: str) -> bool:
    """No NUL and hardly any other control characters: text, not binary that decoded."""
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    return "\x00" not in text and controls <= len(text) // 100
