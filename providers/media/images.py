"""Images: the real type read from the bytes, decoded in full to refuse corrupt ones (Pillow).

What vision models take (JPEG, PNG, WebP, GIF) is passed as it came; another format Pillow
reads (BMP, TIFF, ICO, ...) and an animated GIF's first frame are converted to PNG. The
MIME type the sender's client claimed is ignored: only the bytes count.
"""

from __future__ import annotations

import io

import anyio
from PIL import Image

from actors.thread import ImagePart, MediaUnusableError
from providers.media.sniff import sniff, what_it_is

SUPPORTED_IMAGES = "JPEG, PNG, WebP and GIF images (BMP and TIFF are converted)"
"""What the reasons name as readable."""
MAX_PIXELS = 50_000_000
"""Width times height an image may have at most (a small file can decode to gigabytes)."""
_PASSED = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_PNG_MODES = frozenset({"1", "L", "LA", "I", "P", "RGB", "RGBA"})


async def read_image(data: bytes, label: str) -> ImagePart:
    """``data`` as an image part, or :class:`MediaUnusableError` saying why not.

    ``label`` names the file in the reason (``the photo``, ``cat.png``). Decoding runs in a
    worker thread; a cancelled run does not wait for it.
    """
    if not data:
        raise MediaUnusableError(f"{_capital(label)} is empty (0 bytes).")
    return await anyio.to_thread.run_sync(_read, data, label, abandon_on_cancel=True)


def _read(data: bytes, label: str) -> ImagePart:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            frames = getattr(probe, "n_frames", 1)
            probe.verify()  # structure and checksums, without decoding
    except Exception:  # noqa: BLE001 - Pillow raises many types on what is not an image
        if sniff(data).endswith(" image"):
            raise MediaUnusableError(_damaged(label, sniff(data))) from None
        raise MediaUnusableError(
            f"{_capital(label)} is not an image I can read{what_it_is(data)}. "
            f"I can read {SUPPORTED_IMAGES}."
        ) from None
    if width * height > MAX_PIXELS:
        raise MediaUnusableError(
            f"{_capital(label)} is too large ({width}x{height} pixels); "
            f"I read images up to {MAX_PIXELS // 1_000_000} megapixels."
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel: a truncated or damaged file fails here
            if kind in _PASSED:
                return ImagePart(_PASSED[kind], data)
            if kind == "GIF" and frames == 1:
                return ImagePart("image/gif", data)
            return ImagePart("image/png", _as_png(image))
    except Exception:  # noqa: BLE001 - the decoders' errors on damaged data are of many types
        raise MediaUnusableError(_damaged(label, f"{kind} data")) from None


def _damaged(label: str, what: str) -> str:
    return (
        f"{_capital(label)} is damaged or incomplete ({what} that cannot be decoded); "
        "send it again."
    )


def _as_png(image: Image.Image) -> bytes:
    """``image`` (its first frame) as PNG bytes."""
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _capital(label: str) -> str:
    """``The photo`` for ``the photo``; a file name stays as it is."""
    return "T" + label[1:] if label.startswith("the ") else label
