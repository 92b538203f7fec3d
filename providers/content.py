"""What the files of a turn become for a model, for an HTTP agent, and in a session's history.

``RunRequest.parts`` holds the content the gateway read from each input's files (text,
images, documents). :func:`user_content` makes one OpenAI chat ``content`` of a turn's
inputs: a plain string when there is no image (every OpenAI-compatible server takes it), a
list of ``text`` and ``image_url`` blocks (images as ``data:`` URLs) otherwise.
:func:`history_text` is what the session's history keeps of the turn instead: the texts,
with a placeholder for each file (``[image: caption]``, ``[voice: transcript]``,
``[document: name]``), never the bytes and never a whole document.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from actors.thread.ports import DocumentPart, ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef

TRANSCRIPT_CHARS = 2_000
"""Characters of a transcript a history placeholder keeps (the rest is cut, marked ``…``)."""

SPOKEN_LABELS = {
    MediaKind.VOICE: "voice",
    MediaKind.AUDIO: "audio",
    MediaKind.VIDEO_NOTE: "video note",
}
"""The placeholder label of each kind of file that is transcribed."""


def data_url(image: ImagePart) -> str:
    """The image as a ``data:`` URL (base64)."""
    return f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode('ascii')}"


def document_text(document: DocumentPart) -> str:
    """A document as the model reads it: its name, then its text."""
    return f"[document: {document.name}]\n{document.text}"


def inputs_with_parts(request: RunRequest) -> list[tuple[str, tuple[Part, ...]]]:
    """Each input's text with its parts (none for an input the gateway gave none)."""
    parts = list(request.parts) + [()] * (len(request.inputs) - len(request.parts))
    return list(zip(request.inputs, parts, strict=False))


def has_images(request: RunRequest) -> bool:
    """Whether any input of ``request`` carries an image."""
    return any(isinstance(p, ImagePart) for parts in request.parts for p in parts)


def has_text(request: RunRequest) -> bool:
    """Whether ``request`` says anything besides its images (a caption, a transcript, a
    document)."""
    return any(
        text.strip() or any(not isinstance(p, ImagePart) for p in parts)
        for text, parts in inputs_with_parts(request)
    )


def user_content(request: RunRequest, *, images: bool = True) -> str | list[dict[str, Any]]:
    """The OpenAI chat ``content`` of the turn's user message.

    ``images=False`` leaves the images out, with a line saying so to the model (a model that
    cannot see, or a provider that refused them).
    """
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for text, parts in inputs_with_parts(request):
        pieces = [text] if text.strip() or not parts else []
        for part in parts:
            if isinstance(part, TextPart):
                pieces.append(part.text)
            elif isinstance(part, DocumentPart):
                pieces.append(document_text(part))
        unseen = sum(isinstance(p, ImagePart) for p in parts) if not images else 0
        if unseen:
            pieces.append(f"[{_count(unseen, 'image')} sent here could not be shown to you]")
        texts.append("\n\n".join(pieces))
        if images:
            blocks += [{"type": "text", "text": piece} for piece in pieces]
            blocks += [
                {"type": "image_url", "image_url": {"url": data_url(p)}}
                for p in parts
                if isinstance(p, ImagePart)
            ]
    if images and has_images(request):
        return blocks
    return "\n\n".join(t for t in texts if t)


def history_text(request: RunRequest) -> str:
    """What the session's history keeps of the turn's user message: the texts and a
    placeholder for each file, within a few lines (no bytes, no document text)."""
    media = list(request.media) + [()] * (len(request.inputs) - len(request.media))
    lines = [
        _input_history(text, parts, refs)
        for (text, parts), refs in zip(inputs_with_parts(request), media, strict=False)
    ]
    return "\n\n".join(line for line in lines if line)


def _input_history(text: str, parts: Sequence[Part], refs: Sequence[MediaRef]) -> str:
    caption = text.strip()
    placeholders: list[str] = []
    images = max(
        sum(isinstance(p, ImagePart) for p in parts),
        sum(r.kind is MediaKind.IMAGE for r in refs),
    )
    if images:
        label = _count(images, "image") if images > 1 else "image"
        placeholders.append(f"[{label}: {caption}]" if caption else f"[{label}]")
        caption = ""
    transcript = " ".join(p.text.strip() for p in parts if isinstance(p, TextPart)).strip()
    spoken = next((SPOKEN_LABELS[r.kind] for r in refs if r.kind in SPOKEN_LABELS), "")
    if transcript or spoken:
        label = spoken or "transcript"
        placeholders.append(f"[{label}: {_cut(transcript)}]" if transcript else f"[{label}]")
    names = [p.name for p in parts if isinstance(p, DocumentPart)]
    if not names:
        names = [r.file_name or "file" for r in refs if r.kind is MediaKind.DOCUMENT]
    placeholders += [f"[document: {name}]" for name in names]
    return "\n".join([*placeholders, caption] if caption else placeholders)


def http_parts(parts: Sequence[Part]) -> list[dict[str, str]]:
    """An input's parts as the HTTP agent protocol sends them (``docs/agents.md``)."""
    sent: list[dict[str, str]] = []
    for part in parts:
        if isinstance(part, TextPart):
            sent.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            sent.append({"type": "image", "mime_type": part.mime_type, "url": data_url(part)})
        else:
            sent.append({"type": "document", "name": part.name, "text": part.text})
    return sent


def http_media(refs: Sequence[MediaRef]) -> list[dict[str, Any]]:
    """An input's files as the HTTP agent protocol describes them (no Telegram file id)."""
    return [
        {
            "kind": ref.kind.value,
            "mime_type": ref.mime_type,
            "file_name": ref.file_name,
            "size": ref.size,
            "duration": ref.duration,
        }
        for ref in refs
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _cut(text: str) -> str:
    return text if len(text) <= TRANSCRIPT_CHARS else text[: TRANSCRIPT_CHARS - 1] + "…"
