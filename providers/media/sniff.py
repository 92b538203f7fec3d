"""What a file is, by its bytes: the few kinds a reason names, and whether it is text."""

from __future__ import annotations

import codecs

_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
"""Sizes of a BMP's DIB header (at byte 14): ``BM`` alone is too short to tell (``BMW``)."""
_WHITESPACE = b" \t\r\n\f\v\x00"


def sniff(data: bytes) -> str:
    """What ``data`` is, by its first bytes, in words (``""``: nothing recognised)."""
    head = data[:32]
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "a BMP image"
    if data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip(_WHITESPACE).startswith(b"%PDF-"):
        return "a PDF"  # at the start, after whitespace: not a text that mentions "%PDF-1.7"
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
