from __future__ import annotations

import io

import pytest
from PIL import Image

from actors.thread import DocumentPart, ImagePart, MediaUnusableError
from providers.media.documents import SUPPORTED, ReadSettings, read_document
from tests.providers.media.files import image, pdf

pytestmark = pytest.mark.anyio
SETTINGS = ReadSettings()


async def refusal(data: bytes, name: str, mime: str = "", settings: ReadSettings = SETTINGS) -> str:
    with pytest.raises(MediaUnusableError) as caught:
        await read_document(data, name, mime, settings)
    return caught.value.reason


@pytest.mark.parametrize(
    ("name", "mime", "data"),
    [
        ("notes.txt", "text/plain", b"buy milk\r\nand bread\r\n"),
        ("table.csv", "text/csv", b"a,b\n1,2\n"),
        ("data.json", "application/json", b'{"k": [1, 2]}'),
        ("main.py", "text/x-python", "print('héllo')\n".encode()),
        ("README.md", "", "# Titel\n\nÜber uns\n".encode()),
        ("Dockerfile", "", b"FROM python:3.11\n"),
    ],
)
async def test_text_like_files_are_inlined_with_their_name(
    name: str, mime: str, data: bytes
) -> None:
    part = await read_document(data, name, mime, SETTINGS)
    assert part == DocumentPart(name, data.decode().replace("\r\n", "\n"))


async def test_other_encodings_of_a_text_file_are_decoded() -> None:
    utf16 = "naïve café".encode("utf-16")
    assert await read_document(utf16, "a.txt", "", SETTINGS) == DocumentPart("a.txt", "naïve café")
    cp1252 = "price: 5 €, naïve".encode("cp1252")
    part = await read_document(cp1252, "a.txt", "", SETTINGS)
    assert part == DocumentPart("a.txt", "price: 5 €, naïve")


async def test_a_file_that_claims_nothing_is_read_for_what_it_is() -> None:
    text = await read_document(b"plain words", "", "application/octet-stream", SETTINGS)
    assert text == DocumentPart("document.txt", "plain words")
    png = image("PNG")
    assert await read_document(png, "scan", "", SETTINGS) == ImagePart("image/png", png)
    doc = await read_document(pdf("Quarterly report"), "", "", SETTINGS)
    assert isinstance(doc, DocumentPart)
    assert "Quarterly report" in doc.text


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (image("BMP"), "pic.bmp", "application/octet-stream"),
        (image("BMP"), "", ""),
        (image("TIFF"), "scan.tiff", ""),
        (image("TIFF", mode="I;16B"), "scan.tif", "application/octet-stream"),  # "MM\0*"
        (image("TIFF", compression="tiff_lzw"), "", "application/octet-stream"),
    ],
    ids=["bmp", "bmp-unnamed", "tiff", "tiff-big-endian", "tiff-unnamed"],
)
async def test_bmp_and_tiff_documents_are_recognised_and_converted_to_png(
    data: bytes, name: str, mime: str
) -> None:
    part = await read_document(data, name, mime, SETTINGS)
    assert isinstance(part, ImagePart)
    assert part.mime_type == "image/png"
    with Image.open(io.BytesIO(part.data)) as converted:
        assert (converted.format, converted.size) == ("PNG", (40, 30))


async def test_text_that_starts_like_a_bmp_is_still_text() -> None:
    data = b"BMW and Audi sales, 2024\n"  # "BM", but no BMP header after it
    assert await read_document(data, "cars.txt", "", SETTINGS) == DocumentPart(
        "cars.txt", data.decode()
    )
    assert await read_document(data, "", "", SETTINGS) == DocumentPart(
        "document.txt", data.decode()
    )


async def test_text_that_mentions_the_pdf_header_is_text() -> None:
    data = b"# Formats\n\nA PDF file starts with %PDF-1.7 and ends with %%EOF.\n"
    assert await read_document(data, "notes.md", "", SETTINGS) == DocumentPart(
        "notes.md", data.decode()
    )
    assert await read_document(data, "", "", SETTINGS) == DocumentPart(
        "document.txt", data.decode()
    )


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\r\n  \t"], ids=["bom", "whitespace"])
async def test_a_pdf_after_a_bom_or_whitespace_is_still_a_pdf(prefix: bytes) -> None:
    part = await read_document(prefix + pdf("Quarterly report"), "", "", SETTINGS)
    assert part == DocumentPart("document.pdf", "[page 1]\nQuarterly report")


async def test_a_pdf_is_read_page_by_page() -> None:
    part = await read_document(pdf("First page", "", "Third page"), "r.pdf", "", SETTINGS)
    assert part == DocumentPart(
        "r.pdf", "[page 1]\nFirst page\n\n[page 2]\n\n\n[page 3]\nThird page"
    )


async def test_a_long_pdf_is_read_up_to_the_page_limit_and_says_so() -> None:
    data = pdf(*(f"Page number {n}" for n in range(1, 8)))
    part = await read_document(data, "long.pdf", "", ReadSettings(max_pdf_pages=3))
    assert isinstance(part, DocumentPart)
    assert "Page number 3" in part.text
    assert "Page number 4" not in part.text
    assert part.text.endswith("[only the first 3 of 7 pages were read]")


async def test_a_pdf_text_is_cut_at_the_character_limit_and_says_so() -> None:
    data = pdf("x" * 3000, "y" * 3000, compress=True)  # more text than bytes
    settings = ReadSettings(max_document_chars=2000)
    assert len(data) < 3000
    part = await read_document(data, "a.pdf", "", settings)
    assert isinstance(part, DocumentPart)
    assert part.text.startswith("[page 1]\nxxx")
    note = part.text[2000:]
    assert note.startswith("\n\n[the rest of the text was cut: 2,000 of ")
    assert "y" * 3000 not in part.text


async def test_a_long_text_file_is_cut_at_the_character_limit_and_says_so() -> None:
    """A text file within the byte limit can still be far more than a model reads: its text
    goes into the turn, which the history's context budget does not bound (review)."""
    data = ("word " * 60_000).encode()  # 300,000 characters
    part = await read_document(data, "big.txt", "text/plain", ReadSettings())
    assert isinstance(part, DocumentPart)
    assert len(part.text) < 100_000 + 100
    assert part.text.endswith(
        "[the rest of the text was cut: 100,000 of 300,000 characters were read]"
    )


async def test_pdfs_without_text_damaged_or_locked_are_refused_plainly() -> None:
    assert await refusal(pdf("", ""), "scan.pdf") == (
        "scan.pdf has no text I can read (a scan, perhaps); I read PDFs that contain text."
    )
    broken = pdf("Some text")[:200]
    assert await refusal(broken, "cut.pdf") == (
        f"cut.pdf could not be read as a PDF (it may be damaged). {SUPPORTED}"
    )
    assert await refusal(pdf("secret", password="pw"), "locked.pdf") == (
        "locked.pdf is protected by a password; send it without the password."
    )


async def test_an_empty_document_is_refused() -> None:
    assert await refusal(b"", "notes.txt") == "notes.txt is empty (0 bytes)."
    assert await refusal(b"", "") == "The document is empty (0 bytes)."


async def test_a_document_over_the_limit_is_refused_with_both_sizes() -> None:
    reason = await refusal(b"a" * 2500, "big.txt", settings=ReadSettings(max_document_bytes=2000))
    assert reason == "big.txt is 2 KB; I read documents up to 2 KB."
    reason = await refusal(b"a" * (3 << 19), "big.txt", settings=ReadSettings(1 << 20))
    assert reason == "big.txt is 1.5 MB; I read documents up to 1 MB."


async def test_sizes_are_binary_like_the_replies_before_the_download() -> None:
    """``gateway.media.checks.megabytes`` states the same limits in MiB: one file, one size
    in every reply (review)."""
    reason = await refusal(b"a" * 1_500_000, "big.txt", settings=ReadSettings(1_000_000))
    assert reason == "big.txt is 1.4 MB; I read documents up to 977 KB."
    reason = await refusal(b"a" * 11_000_000, "big.txt", settings=ReadSettings())
    assert reason == "big.txt is 10.5 MB; I read documents up to 10 MB."


@pytest.mark.parametrize(
    ("data", "name", "mime", "expected"),
    [
        (
            b"hello",
            "report.pdf",
            "application/pdf",
            "report.pdf claims to be a PDF, but it is text.",
        ),
        (
            b"\x00\x01\x02\x03",
            "report.pdf",
            "",
            "report.pdf claims to be a PDF, but it is not one.",
        ),
        (
            image("PNG"),
            "notes.txt",
            "text/plain",
            "notes.txt claims to be a text file, but it is a PNG image.",
        ),
        (pdf("x"), "notes.md", "", "notes.md claims to be a text file, but it is a PDF."),
        (
            b"\x00\xffbinary",
            "a.csv",
            "text/csv",
            "a.csv claims to be a text file, but it is not one.",
        ),
        (b"words", "", "application/pdf", "The document claims to be a PDF, but it is text."),
        (pdf("x"), "pic.jpg", "", "pic.jpg claims to be an image, but it is a PDF."),
    ],
)
async def test_a_document_that_claims_one_type_and_is_another_is_refused(
    data: bytes, name: str, mime: str, expected: str
) -> None:
    assert await refusal(data, name, mime) == f"{expected} {SUPPORTED}"


@pytest.mark.parametrize(
    ("data", "name", "mime", "expected"),
    [
        (b"PK\x03\x04rest", "cv.docx", "", "Word documents (.docx) are not supported."),
        (b"PK\x03\x04rest", "sheet.xlsx", "", "Excel spreadsheets (.xlsx) are not supported."),
        (b"\x00\x00\x00\x18ftypmp42", "clip.mp4", "video/mp4", "I can't read clip.mp4 (.mp4)."),
        (
            b"\x7fELF\x02\x01",
            "",
            "application/x-executable",
            "I can't read this document (application/x-executable).",
        ),
        (b"\x7fELF\x02\x01\x00", "", "", "I can't read this document (this kind of file)."),
    ],
)
async def test_anything_else_is_refused_naming_what_is_supported(
    data: bytes, name: str, mime: str, expected: str
) -> None:
    reason = await refusal(data, name, mime)
    assert reason == f"{expected} {SUPPORTED}"
    assert "text files (txt, md, csv, json, source code), PDFs" in reason
