from __future__ import annotations

from actors.thread.ports import DocumentPart, ImagePart, Part, RunRequest, TextPart
from actors.thread.records import MediaKind, MediaRef, ThreadKey
from providers.content import TRANSCRIPT_CHARS, history_text, user_content


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
