from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from actors.thread import ImagePart, MediaUnusableError
from providers.media.images import MAX_PIXELS, read_image
from tests.providers.media.files import animated_gif, image

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
async def test_what_vision_models_take_passes_as_it_came_with_its_real_type(
    fmt: str, mime: str
) -> None:
    data = image(fmt)
    part = await read_image(data, "the photo")
    assert part == ImagePart(mime, data)


async def test_the_type_is_read_from_the_bytes_not_from_the_name() -> None:
    data = image("JPEG")
    part = await read_image(data, "holiday.png")
    assert part.mime_type == "image/jpeg"


@pytest.mark.parametrize(
    "data", [image("BMP"), image("TIFF"), animated_gif()], ids=["bmp", "tiff", "animated-gif"]
)
async def test_other_formats_and_animations_become_a_png_of_the_first_frame(data: bytes) -> None:
    part = await read_image(data, "the photo")
    assert part.mime_type == "image/png"
    with Image.open(io.BytesIO(part.data)) as converted:
        assert converted.format == "PNG"
        assert converted.size == Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_a_truncated_image_is_refused_as_damaged(fmt: str) -> None:
    data = image(fmt, size=(200, 200))
    with pytest.raises(MediaUnusableError) as caught:
        await read_image(data[: len(data) // 2], "the photo")
    assert caught.value.reason.startswith("The photo is damaged or incomplete")
    assert "send it again" in caught.value.reason


async def test_a_damaged_image_body_is_refused() -> None:
    data = bytearray(image("PNG", size=(64, 64)))
    data[60:80] = b"\x00" * 20  # inside the pixel data: checksums no longer match
    with pytest.raises(MediaUnusableError, match="damaged or incomplete"):
        await read_image(bytes(data), "the photo")


async def test_text_with_an_image_name_is_refused_saying_what_it_is() -> None:
    with pytest.raises(MediaUnusableError) as caught:
        await read_image(b"just some notes, not a picture\n", "cat.png")
    assert caught.value.reason == (
        "cat.png is not an image I can read (it is text). "
        "I can read JPEG, PNG, WebP and GIF images (BMP and TIFF are converted)."
    )


async def test_an_empty_file_is_refused() -> None:
    with pytest.raises(MediaUnusableError, match=r"^The photo is empty \(0 bytes\)\.$"):
        await read_image(b"", "the photo")


async def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded() -> None:
    data = bytearray(image("PNG", size=(8, 8)))
    side = int(MAX_PIXELS**0.5) + 10  # a small file that claims a huge picture
    data[16:24] = struct.pack(">II", side, side)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # and its checksum
    with pytest.raises(MediaUnusableError, match=rf"too large \({side}x{side} pixels\)"):
        await read_image(bytes(data), "the photo")
