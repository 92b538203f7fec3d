from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from actors.thread.ports import DocumentPart, ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey
from providers.content import TRANSCRIPT_CHARS, data_url, history_text, user_content


def turn(text: str, parts: tuple[Part, ...] = (), refs: tuple[MediaRef, ...] = ()) -> RunRequest:
    return RunRequest(ThreadKey(1), "s", 0, (text,), media=(refs,), parts=(parts,))


def test_history_placeholders_name_each_kind_of_file() -> None:
    audio = MediaRef(MediaKind.AUDIO, "a", 10, "audio/mpeg", "song.mp3", 200)
    note = MediaRef(MediaKind.VIDEO_NOTE, "v", 10, "video/mp4", duration=9)
    doc = MediaRef(MediaKind.DOCUMENT, "d", 10, "application/pdf", "report.pdf")
    assert history_text(turn("", (TextPart("la la"),), (audio,))) == "[audio: la la]"
    assert history_text(turn("", (TextPart("hi all"),), (note,))) == "[video note: hi all]"
    assert history_text(turn("check", (), (doc,))) == "[document: report.pdf]\ncheck"
    assert history_text(turn("", (ImagePart("image/gif", b"GIF89a"),))) == "[image]"


def test_a_long_transcript_is_cut_in_the_history_but_whole_for_the_model() -> None:
    voice = MediaRef(MediaKind.VOICE, "v", 10, "audio/ogg", duration=600)
    said = "word " * 2_000
    request = turn("", (TextPart(said),), (voice,))
    kept = history_text(request)
    assert len(kept) == len("[voice: ]") + TRANSCRIPT_CHARS
    assert kept.endswith("…]")
    assert user_content(request) == said


def test_documents_are_named_in_the_content_and_never_in_full_in_the_history() -> None:
    parts = (DocumentPart("a.csv", "x,y\n1,2"), DocumentPart("b.json", '{"k": 1}'))
    request = turn("compare", parts)
    assert user_content(request) == (
        'compare\n\n[document: a.csv]\nx,y\n1,2\n\n[document: b.json]\n{"k": 1}'
    )
    assert history_text(request) == "[document: a.csv]\n[document: b.json]\ncompare"


parts = st.one_of(
    st.builds(TextPart, st.text(max_size=3_000)),
    st.builds(ImagePart, st.sampled_from(["image/png", "image/jpeg"]), st.binary(min_size=30)),
    st.builds(DocumentPart, st.text(min_size=1, max_size=20), st.text(min_size=40)),
)


@given(st.text(max_size=200), st.lists(parts, max_size=5))
def test_the_history_never_holds_bytes_or_document_text_and_stays_short(
    caption: str, sent: list[Part]
) -> None:
    kept = history_text(turn(caption, tuple(sent)))
    said = caption + "".join(p.text for p in sent if isinstance(p, TextPart))
    for part in sent:
        if isinstance(part, ImagePart):
            assert base64.b64encode(part.data).decode() not in kept
        if isinstance(part, DocumentPart) and part.text not in said:
            assert part.text not in kept
    overhead = sum(len(p.name) + 16 for p in sent if isinstance(p, DocumentPart)) + 64
    assert len(kept) <= len(caption) + TRANSCRIPT_CHARS + overhead
    content = user_content(turn(caption, tuple(sent)))
    images = [p for p in sent if isinstance(p, ImagePart)]
    assert isinstance(content, list) == bool(images)
    if isinstance(content, list):
        urls = [b["image_url"]["url"] for b in content if b["type"] == "image_url"]
        assert urls == [data_url(p) for p in images]
