"""Documents: text-like files inlined with their name, PDFs through pypdf, the rest refused.

What a file claims to be (its name's extension, else its MIME type) is checked against what
its bytes are: a ``.pdf`` that is not a PDF, a ``.txt`` that is binary, text named ``.pdf``
are refused, each with a reason naming what is supported. A file that claims nothing
(no extension, ``application/octet-stream``) is read for what it is.
"""

from __future__ import annotations

import io
from pathlib import PurePath

import anyio
import attrs
from pypdf import PdfReader

from actors.thread import DocumentPart, ImagePart, MediaUnusableError
from providers.media.images import SUPPORTED_IMAGES, read_image
from providers.media.sniff import is_plain, sniff

SUPPORTED = (
    f"I can read text files (txt, md, csv, json, source code), PDFs, and {SUPPORTED_IMAGES}."
)
"""The sentence every refusal of a document ends with."""

TEXT_EXTENSIONS = frozenset(
    " ".join(
        (
            "txt text md markdown rst org csv tsv json jsonl ndjson yaml yml toml ini cfg",
            "conf env log xml html htm css svg tex srt vtt py pyi ipynb js mjs cjs ts tsx",
            "jsx java kt kts scala go rs c h cc cpp cxx hpp hh cs swift m mm rb php pl pm",
            "lua r jl dart ex exs erl hs ml clj sql sh bash zsh fish ps1 bat cmd gradle make",
            "mk cmake dockerfile tf hcl proto graphql vue svelte diff patch",
        )
    ).split()
)
"""Extensions of the text-like files inlined."""
_TEXT_MIMES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/x-python",
        "application/sql",
        "application/x-ndjson",
    }
)
_UNCLAIMED_MIMES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_NAMED_FORMATS = {
    "doc": "Word documents",
    "docx": "Word documents",
    "odt": "OpenDocument texts",
    "rtf": "RTF documents",
    "xls": "Excel spreadsheets",
    "xlsx": "Excel spreadsheets",
    "ods": "OpenDocument spreadsheets",
    "ppt": "PowerPoint presentations",
    "pptx": "PowerPoint presentations",
    "epub": "e-books",
    "zip": "ZIP archives",
    "rar": "RAR archives",
    "7z": "7-Zip archives",
    "gz": "gzip archives",
    "tar": "tar archives",
    "exe": "programs",
    "apk": "Android apps",
    "heic": "HEIC photos",
}


@attrs.frozen
class ReadSettings:
    """The limits of reading documents (``[media]`` in the config)."""

    max_document_bytes: int = 10 * 1024 * 1024
    """Bytes a document may have."""
    max_pdf_pages: int = 50
    """Pages of a PDF read at most (the model is told when there were more)."""
    max_document_chars: int = 100_000
    """Characters of a document's text given to the model at most (the model is told when
    there were more): the text goes into the turn itself, which the context budget of the
    history does not bound."""


async def read_document(
    data: bytes, name: str, mime_type: str, settings: ReadSettings
) -> DocumentPart | ImagePart:
    """The document's content, or :class:`MediaUnusableError` saying why not.

    ``name`` and ``mime_type`` are what the sender's client said (either may be empty).
    """
    label = name or "The document"
    if not data:
        raise MediaUnusableError(f"{label} is empty (0 bytes).")
    if len(data) > settings.max_document_bytes:
        raise MediaUnusableError(
            f"{label} is {_size(len(data))}; I read documents up to "
            f"{_size(settings.max_document_bytes)}."
        )
    claim = _claim(name, mime_type)
    found = sniff(data)
    if found == "a PDF" and claim in ("pdf", ""):
        return await anyio.to_thread.run_sync(
            _read_pdf, data, name or "document.pdf", settings, abandon_on_cancel=True
        )
    if found.endswith(" image") and claim in ("image", ""):
        return await read_image(data, label)
    if not found and claim in ("text", ""):
        text = _decode(data, lenient=claim == "text")
        if text is not None:
            return DocumentPart(name or "document.txt", _within(text, settings))
    raise MediaUnusableError(_refusal(label, name, mime_type, claim, found, data))


def _claim(name: str, mime_type: str) -> str:
    """What the file says it is: ``pdf``, ``text``, ``image``, ``other`` or ``""`` (nothing)."""
    suffix = PurePath(name).suffix.lower().lstrip(".")
    bare = PurePath(name).name.lower()
    if suffix == "pdf":
        return "pdf"
    if suffix in TEXT_EXTENSIONS or bare in ("dockerfile", "makefile", "readme", "license"):
        return "text"
    if suffix in ("png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff"):
        return "image"
    if suffix in _NAMED_FORMATS:
        return "other"
    mime = mime_type.lower().split(";")[0].strip()
    if mime in _UNCLAIMED_MIMES:
        return ""
    if mime == "application/pdf":
        return "pdf"
    if mime.startswith("text/") or mime in _TEXT_MIMES:
        return "text"
    if mime.startswith("image/"):
        return "image"
    return "other"


def _decode(data: bytes, *, lenient: bool) -> str | None:
    """``data`` as text (UTF-8, UTF-16 with its BOM; Windows-1252 when the file claims to be
    text), lines ending in ``\\n``; ``None`` when it is not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8-sig"] + (["cp1252"] if lenient else [])
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if is_plain(text):
            return text.replace("\r\n", "\n")
    return None


def _refusal(label: str, name: str, mime_type: str, claim: str, found: str, data: bytes) -> str:
    """The reason a document is refused: what it claims against what it is."""
    suffix = PurePath(name).suffix.lower().lstrip(".")
    text = not found and _decode(data, lenient=False) is not None
    is_ = f"it is {found}" if found else "it is text" if text else "it is not one"
    if claim == "pdf":
        return f"{label} claims to be a PDF, but {is_}. {SUPPORTED}"
    if claim == "text":
        return f"{label} claims to be a text file, but {is_}. {SUPPORTED}"
    if claim == "image":
        return f"{label} claims to be an image, but {is_}. {SUPPORTED}"
    if suffix in _NAMED_FORMATS:
        return f"{_NAMED_FORMATS[suffix]} (.{suffix}) are not supported. {SUPPORTED}"
    shown = f".{suffix}" if suffix else mime_type or found or "this kind of file"
    return f"I can't read {name or 'this document'} ({shown}). {SUPPORTED}"


def _read_pdf(data: bytes, name: str, settings: ReadSettings) -> DocumentPart:
    """A PDF's text, page by page, within the page and character limits."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise MediaUnusableError(
                f"{name} is protected by a password; send it without the password."
            )
        total = len(reader.pages)
        pages = [
            f"[page {number}]\n{(reader.pages[number - 1].extract_text() or '').strip()}"
            for number in range(1, min(total, settings.max_pdf_pages) + 1)
        ]
    except MediaUnusableError:
        raise
    except Exception:  # noqa: BLE001 - pypdf's errors on a damaged file are of many types
        raise MediaUnusableError(
            f"{name} could not be read as a PDF (it may be damaged). {SUPPORTED}"
        ) from None
    if not any(page.partition("\n")[2] for page in pages):
        raise MediaUnusableError(
            f"{name} has no text I can read (a scan, perhaps); I read PDFs that contain text."
        )
    text = "\n\n".join(pages)
    text = _within(text, settings)
    if total > settings.max_pdf_pages:
        text += f"\n\n[only the first {settings.max_pdf_pages} of {total} pages were read]"
    return DocumentPart(name, text)


def _within(text: str, settings: ReadSettings) -> str:
    """``text``, cut at ``max_document_chars`` with a note saying how much was left out."""
    limit = settings.max_document_chars
    if len(text) <= limit:
        return text
    return (
        text[:limit]
        + f"\n\n[the rest of the text was cut: {limit:,} of {len(text):,} characters were read]"
    )


def _size(count: int) -> str:
    """``20 MB``, ``1.5 MB``, ``300 KB``: binary units, as ``gateway.media.checks.megabytes``
    states the same limits before the download (one file, one size in every reply)."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(count / 1024))} KB"
