"""Real files for the media tests, made here: images with Pillow, PDFs with pypdf."""

from __future__ import annotations

import io

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject


def image(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "", **options: object) -> bytes:
    """A real image file of ``fmt`` (``PNG``, ``JPEG``, ``BMP``, ``GIF``, ``WEBP``, ...);
    ``mode``: its pixels' (``I;16B`` makes a big-endian TIFF)."""
    out = io.BytesIO()
    mode = mode or ("P" if fmt == "GIF" else "RGB")
    colour = 7 if mode == "P" else (200, 30, 30) if mode == "RGB" else 300
    Image.new(mode, size, colour).save(out, format=fmt, **options)
    return out.getvalue()


def animated_gif() -> bytes:
    """A real two-frame GIF."""
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


def pdf(*pages: str, password: str = "", compress: bool = False) -> bytes:
    """A real PDF whose pages hold ``pages`` as text (an empty string: a page without text);
    ``compress``: its content streams deflated (a small file with much text)."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(width=300, height=200)
        if not text:
            continue
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = ContentStream(None, writer)
        stream.set_data(f"BT /F1 12 Tf 20 100 Td ({escaped}) Tj ET".encode("latin-1"))
        page.replace_contents(stream)
        if compress:
            page.compress_content_streams()
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
