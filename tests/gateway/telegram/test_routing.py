from __future__ import annotations

from typing import Any

from aiogram.types import Update

from actors.thread.messages import UserMessage
from actors.thread.records import MediaKind, MediaRef
from gateway.telegram.addressing import BotIdentity
from gateway.telegram.routing import Routed, RoutingRules, from_payload, route, to_payload


def update(**fields: Any) -> Update:
    message = {
        "message_id": 10,
        "date": 0,
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "u"},
        **fields,
    }
    return Update.model_validate({"update_id": 1, "message": message})


def routed(**fields: Any) -> Routed:
    result = route(update(**fields), RoutingRules(bot=BotIdentity(99, "bot")))
    assert isinstance(result, Routed)
    return result


def test_a_photo_is_its_largest_size_with_the_caption_as_text() -> None:
    sizes = [
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 9000},
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
    ]
    result = routed(photo=sizes, caption="/not a command", media_group_id="g1")
    assert result.album == "g1"
    assert result.message == UserMessage(
        10, "/not a command", 42, media=(MediaRef(MediaKind.IMAGE, "big", 9000, "image/jpeg"),)
    )


def test_documents_voice_audio_and_video_notes_become_references() -> None:
    image = routed(document={"file_id": "d", "file_unique_id": "u", "mime_type": "image/png"})
    assert isinstance(image.message, UserMessage)
    assert image.message.media[0].kind is MediaKind.IMAGE
    pdf = routed(
        document={
            "file_id": "p",
            "file_unique_id": "u",
            "mime_type": "application/pdf",
            "file_name": "a.pdf",
            "file_size": 5,
        }
    )
    assert isinstance(pdf.message, UserMessage)
    assert pdf.message.media == (MediaRef(MediaKind.DOCUMENT, "p", 5, "application/pdf", "a.pdf"),)
    voice = routed(voice={"file_id": "v", "file_unique_id": "u", "duration": 7})
    assert isinstance(voice.message, UserMessage)
    assert voice.message.media == (MediaRef(MediaKind.VOICE, "v", None, "audio/ogg", "", 7),)
    note = routed(video_note={"file_id": "n", "file_unique_id": "u", "length": 1, "duration": 3})
    assert isinstance(note.message, UserMessage)
    assert note.message.media[0].kind is MediaKind.VIDEO_NOTE
    audio = routed(audio={"file_id": "a", "file_unique_id": "u", "duration": 9})
    assert isinstance(audio.message, UserMessage)
    assert audio.message.media[0].duration == 9


def test_a_message_with_nothing_readable_is_refused_naming_what_is_supported() -> None:
    result = routed(location={"latitude": 1.0, "longitude": 2.0})
    assert result.refusal.startswith("I cannot read locations. I can read text, photos")


def test_a_video_with_a_caption_is_refused_not_answered_as_its_caption_alone() -> None:
    """Found by review: the caption went to the agent and the video was dropped unsaid
    (an album mixing a video and photos lost the video that way)."""
    video = {
        "file_id": "vid",
        "file_unique_id": "u",
        "width": 1,
        "height": 1,
        "duration": 5,
    }
    result = routed(video=video, caption="compare video and photos", media_group_id="g2")
    assert result.refusal.startswith("I cannot read videos. I can read text, photos")
    assert not result.album, "refused on its own, not held with the album"


def test_a_recording_sent_as_a_file_is_transcribed_as_audio() -> None:
    sent = routed(
        document={
            "file_id": "m",
            "file_unique_id": "u",
            "mime_type": "audio/mpeg",
            "file_name": "memo.mp3",
        }
    )
    assert isinstance(sent.message, UserMessage)
    assert sent.message.media == (MediaRef(MediaKind.AUDIO, "m", None, "audio/mpeg", "memo.mp3"),)


def test_payloads_round_trip_media_and_text_payloads_stay_as_they_were() -> None:
    message = UserMessage(
        3, "cap", 1, media=(MediaRef(MediaKind.VOICE, "v", 10, "audio/ogg", "", 4),)
    )
    payload = to_payload(message, album="g", refusal="")
    assert payload["album"] == "g"
    assert from_payload(payload) == message
    assert to_payload(UserMessage(4, "hi", 1)) == {
        "kind": "message",
        "message_id": 4,
        "text": "hi",
        "user_id": 1,
    }
