from __future__ import annotations

from typing import Any

from aiogram.types import Update
from hypothesis import given
from hypothesis import strategies as st

from actors.thread.messages import Command, UserMessage
from actors.thread.records import MediaKind, MediaRef, ThreadKey
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


# -- addressing, per-user keys, reply context (issue 19) --------------------------------------

BOT = BotIdentity(99, "Threadgate_Bot")


def in_group(text: str | None, *, rules: RoutingRules | None = None, **fields: Any) -> Routed:
    """A message in a plain group, routed."""
    body = {
        "message_id": 20,
        "date": 0,
        "chat": {"id": -100, "type": "supergroup", "title": "g"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
        **({} if text is None else {"text": text}),
        **fields,
    }
    result = route(
        Update.model_validate({"update_id": 2, "message": body}), rules or RoutingRules(bot=BOT)
    )
    assert isinstance(result, Routed)
    return result


def mention(text: str, name: str) -> dict[str, Any]:
    at = text.encode("utf-16-le").find(name.encode("utf-16-le")) // 2
    return {"type": "mention", "offset": at, "length": len(name.encode("utf-16-le")) // 2}


def text_of(result: Routed) -> tuple[str, bool]:
    assert isinstance(result.message, UserMessage)
    return result.message.text, result.message.addressed


def test_a_group_message_without_a_mention_is_not_addressed_and_unchanged() -> None:
    assert text_of(in_group("hello all")) == ("hello all", False)
    other = "ask @other_bot instead"
    assert text_of(in_group(other, entities=[mention(other, "@other_bot")])) == (other, False)


def test_a_mention_of_the_bot_addresses_it_and_is_removed_from_the_text() -> None:
    for text, seen in (
        ("@threadgate_bot what is 2+2?", "what is 2+2?"),
        ("@THREADGATE_BOT, what is 2+2?", "what is 2+2?"),
        ("hey @threadgate_bot: what is 2+2?", "hey what is 2+2?"),
        ("what is 2+2 @threadgate_bot", "what is 2+2"),
        ("line one\n@threadgate_bot\nline two", "line one\nline two"),
        ("😀😀 @threadgate_bot 😀 ok", "😀😀 😀 ok"),  # offsets count UTF-16 units
    ):
        name = text[text.lower().index("@threadgate_bot") :][: len("@threadgate_bot")]
        assert text_of(in_group(text, entities=[mention(text, name)])) == (seen, True), text


def test_a_text_that_is_only_the_mention_keeps_it() -> None:
    text = "@threadgate_bot"
    assert text_of(in_group(text, entities=[mention(text, text)])) == (text, True)


def test_a_text_mention_of_the_bots_user_addresses_it() -> None:
    text = "Threadgate, summarize this"
    entity = {
        "type": "text_mention",
        "offset": 0,
        "length": 10,
        "user": {"id": 99, "is_bot": True, "first_name": "Threadgate"},
    }
    assert text_of(in_group(text, entities=[entity])) == ("summarize this", True)
    someone = {**entity, "user": {"id": 5, "is_bot": False, "first_name": "T"}}
    assert text_of(in_group(text, entities=[someone])) == (text, False)


def test_a_caption_mention_addresses_a_photo() -> None:
    caption = "@threadgate_bot what is this?"
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    result = in_group(
        None, photo=photo, caption=caption, caption_entities=[mention(caption, "@threadgate_bot")]
    )
    message = result.message
    assert isinstance(message, UserMessage)
    assert (message.text, message.addressed, len(message.media)) == ("what is this?", True, 1)


BOT_MESSAGE = {
    "message_id": 7,
    "date": 0,
    "chat": {"id": -100, "type": "supergroup", "title": "g"},
    "from": {"id": 99, "is_bot": True, "first_name": "Threadgate", "username": "Threadgate_Bot"},
    "text": "The answer is 4.",
}


def test_a_reply_to_the_bot_addresses_it_and_carries_its_text_as_context() -> None:
    result = in_group("why?", reply_to_message=BOT_MESSAGE)
    assert text_of(result) == ('[Replying to the bot: "The answer is 4."]\nwhy?', True)


def test_a_reply_to_a_user_gives_the_quote_and_their_first_name_but_does_not_address() -> None:
    theirs = {**BOT_MESSAGE, "from": {"id": 5, "is_bot": False, "first_name": "Bob"}}
    theirs["text"] = "We ship on Friday, and then we rest."
    result = in_group("really?", reply_to_message=theirs, quote={"text": "Friday", "position": 11})
    assert text_of(result) == ('[Replying to Bob: "Friday"]\nreally?', False)
    plain = in_group("really?", reply_to_message=theirs)
    assert text_of(plain)[0].startswith('[Replying to Bob: "We ship on Friday, and then we rest."]')


def test_the_replied_text_is_trimmed_to_500_characters() -> None:
    long = {**BOT_MESSAGE, "text": "x" * 2000}
    text, _ = text_of(in_group("and?", reply_to_message=long))
    assert text == f'[Replying to the bot: "{"x" * 500}…"]\nand?'


def test_a_topics_implicit_reply_to_its_first_message_is_no_reply() -> None:
    root = {
        "message_id": 3,
        "date": 0,
        "chat": {"id": -100, "type": "supergroup", "title": "g", "is_forum": True},
        "from": {"id": 99, "is_bot": True, "first_name": "Threadgate"},
        "forum_topic_created": {"name": "t", "icon_color": 1},
    }
    result = in_group(
        "hello",
        chat={"id": -100, "type": "supergroup", "title": "g", "is_forum": True},
        message_thread_id=3,
        is_topic_message=True,
        reply_to_message=root,
    )
    assert text_of(result) == ("hello", False)
    assert result.key == ThreadKey(-100, 3)


def test_a_command_is_never_given_reply_context_and_is_marked_admin_for_admins() -> None:
    rules = RoutingRules(bot=BOT, admin_users=frozenset({42}))
    command = in_group("/activation always", rules=rules, reply_to_message=BOT_MESSAGE).message
    assert command == Command("activation", "always", 20, 42, admin=True)
    plain = in_group("/status", reply_to_message=BOT_MESSAGE).message
    assert plain == Command("status", "", 20, 42, admin=False)


def test_a_private_chat_is_always_addressed() -> None:
    result = routed(text="hello")
    assert isinstance(result.message, UserMessage)
    assert result.message.addressed


def test_per_user_sessions_key_group_messages_by_their_sender_only() -> None:
    rules = RoutingRules(bot=BOT, per_user=True)
    assert in_group("hi", rules=rules).key == ThreadKey(-100, None, 42)
    private = route(update(text="hi"), rules)
    assert isinstance(private, Routed)
    assert private.key == ThreadKey(5)
    shared = in_group("hi")
    assert shared.key == ThreadKey(-100)


def test_addressed_and_admin_flags_survive_the_inbox_payload() -> None:
    unaddressed = UserMessage(1, "hi", 42, addressed=False)
    assert to_payload(unaddressed)["addressed"] is False
    assert from_payload(to_payload(unaddressed)) == unaddressed
    admin = Command("activation", "mention", 2, 777, admin=True)
    assert from_payload(to_payload(admin)) == admin
    assert "admin" not in to_payload(Command("new", "", 3, 1))


words = st.text(st.sampled_from("ab 😀\n\té"), max_size=12)


@given(words, words)
def test_removing_the_mention_keeps_every_other_word_in_order(left: str, right: str) -> None:
    name = "@threadgate_bot"
    text = f"{left}{name} {right}"
    got, addressed = text_of(in_group(text, entities=[mention(text, name)]))
    assert addressed
    if (left + right).strip():
        assert got.split() == f"{left} {right}".split()
        assert name not in got
    else:
        assert got == name  # nothing but the mention: kept


def test_a_command_after_the_bots_mention_is_a_command() -> None:
    """``@bot /new`` in a group is the command, as ``/new@bot`` is."""
    text = "@Threadgate_Bot /new now"
    routed = in_group(text, entities=[mention(text, "@Threadgate_Bot")])
    assert isinstance(routed.message, Command)
    assert (routed.message.name, routed.message.args) == ("new", "now")
