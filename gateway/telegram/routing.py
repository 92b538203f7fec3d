"""From a Telegram update to (thread key, message), or a reason to ignore it.

Rules: a forum topic is its own thread (the General topic is thread 1); DMs and plain groups
are one thread each. Commands are parsed (``/name@bot args``); a command addressed to another
bot is ignored. Text is taken from ``text`` or a media ``caption``. Who may talk to the bot is
decided before routing (``gateway.telegram.pairing.Admission``, called by the intake):
routing sees admitted senders only.

Files become references (``MediaRef``; the bytes are fetched by the run that needs them): a
photo (its largest size), a document (an ``image/*`` one is an image), a voice message, an
audio file, a video note; the caption is the text, and a caption is never a command. A photo
of an album carries its ``media_group_id`` (``Routed.album``): the album's photos become one
message (``gateway.media.albums``). Anything else without text (a sticker, a video, a
location, ...) is refused with a reply naming what is supported (``Routed.refusal``: it is
written to the inbox and concluded, like every message).

In groups and forum topics a message is marked addressed (``UserMessage.addressed``) if it
mentions the bot or replies to one of its messages (``gateway.telegram.addressing``); the
thread decides what an unaddressed one gets. The mention is removed from the text, and the
replied message's text is put before it as context. With per-user group sessions a group
message goes to its sender's own thread (``ThreadKey.user_id``). A command from one of
``admin_users`` is marked ``Command.admin``.
"""

from __future__ import annotations

from typing import Any

import attrs
from aiogram.types import Message, Update

from actors.thread.messages import Command, UserMessage
from actors.thread.records import MediaKind, MediaRef, ThreadKey
from gateway.media.checks import SUPPORTED
from gateway.telegram.addressing import (
    BotIdentity,
    replies_to_bot,
    reply_context,
    without_mentions,
)

GENERAL_TOPIC = 1
MAX_TEXT = 32_000


@attrs.frozen
class Routed:
    """An update that becomes a message for a thread."""

    update_id: int
    """Telegram's update id."""
    key: ThreadKey
    """The thread."""
    message: UserMessage | Command
    """What the thread actor gets."""
    album: str = ""
    """The ``media_group_id`` of the album it is part of (empty: none)."""
    refusal: str = ""
    """If set, the message is not for the thread: this is the reply, and it is concluded."""


@attrs.frozen
class Ignored:
    """An update that reaches no thread, and why (logged; ``reply`` is sent if set)."""

    update_id: int
    """Telegram's update id."""
    reason: str
    """For the log line."""
    key: ThreadKey | None = None
    """Where to reply, if anywhere."""
    reply: str = ""
    """What to tell the user, if anything."""
    message_id: int | None = None
    """The message to reply to."""


def thread_key(message: Message) -> ThreadKey:
    """The thread a message belongs to."""
    chat = message.chat
    if chat.is_forum:
        topic = message.message_thread_id if message.is_topic_message else None
        return ThreadKey(chat.id, topic or GENERAL_TOPIC)
    return ThreadKey(chat.id)


@attrs.frozen
class RoutingRules:
    """What routing needs to know besides the update."""

    bot: BotIdentity = attrs.field(factory=BotIdentity)
    """Who the bot is (``getMe``): its mentions, replies to it, commands for it."""
    admin_users: frozenset[int] = frozenset()
    """The gateway's admins (``Command.admin``)."""
    per_user: bool = False
    """Per-user group sessions: a group message goes to its sender's own thread."""


def route(update: Update, rules: RoutingRules) -> Routed | Ignored:
    """Decide where ``update`` goes."""
    message = update.message
    if message is None:
        kinds = [name for name, value in update if value is not None and name != "update_id"]
        return Ignored(update.update_id, f"unsupported update type {kinds or ['empty']}")
    key = thread_key(message)
    user_id = message.from_user.id if message.from_user else None
    if message.from_user is not None and message.from_user.is_bot:
        return Ignored(update.update_id, "message from a bot")
    group = message.chat.type != "private"
    if group and rules.per_user and user_id is not None:
        key = ThreadKey(key.chat_id, key.thread_id, user_id)
    text = message.text if message.text is not None else message.caption
    entities = message.entities if message.text is not None else message.caption_entities
    if message.text is not None and message.text.startswith("/"):
        return _command(update.update_id, key, message, _truncated(message.text), rules)
    mentioned = False
    if text is not None:
        addressing = without_mentions(text, entities, rules.bot)
        text, mentioned = _truncated(addressing.text), addressing.mentioned
        if mentioned and message.text is not None and text.startswith("/"):
            return _command(update.update_id, key, message, text, rules)  # "@bot /new"
    addressed = not group or mentioned or replies_to_bot(message, rules.bot)
    media = media_refs(message)
    context = reply_context(message, rules.bot)
    if media:
        album = message.media_group_id or ""
        caption = "\n".join(part for part in (context, text or "") if part)
        routed = UserMessage(message.message_id, caption, user_id, media=media, addressed=addressed)
        return Routed(update.update_id, key, routed, album=album)
    what = unsupported(message)
    if text is None or not text.strip() or what is not None:
        # Nothing readable; or a file nothing here reads, with a caption: answering the
        # caption alone would drop the file without a word (a video in an album).
        what = what or "this kind of message"
        return Routed(
            update.update_id,
            key,
            UserMessage(message.message_id, "", user_id, addressed=addressed),
            refusal=f"I cannot read {what}. I can read {SUPPORTED}.",
        )
    if context:
        text = f"{context}\n{text}"
    routed = UserMessage(message.message_id, text, user_id, addressed=addressed)
    return Routed(update.update_id, key, routed)


def _truncated(text: str) -> str:
    return text[:MAX_TEXT] + "\n[message truncated]" if len(text) > MAX_TEXT else text


def _command(
    update_id: int, key: ThreadKey, message: Message, text: str, rules: RoutingRules
) -> Routed | Ignored:
    """A text that starts with ``/``: a command, unless it is for another bot (or is no
    command's name: then it is text, addressed as a private chat's is, or by a reply)."""
    user_id = message.from_user.id if message.from_user else None
    head, _, args = text[1:].partition(" ")
    name, _, addressee = head.partition("@")
    if addressee and addressee.lower() != rules.bot.username.lower():
        return Ignored(update_id, f"command for another bot (@{addressee})")
    if name and name.replace("_", "").isalnum():
        admin = user_id is not None and user_id in rules.admin_users
        command = Command(name.lower(), args.strip(), message.message_id, user_id, admin=admin)
        return Routed(update_id, key, command)
    addressed = message.chat.type == "private" or replies_to_bot(message, rules.bot)
    return Routed(
        update_id, key, UserMessage(message.message_id, text, user_id, addressed=addressed)
    )


def media_refs(message: Message) -> tuple[MediaRef, ...]:
    """The files ``message`` carries, as references (empty: none that is read)."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return (MediaRef(MediaKind.IMAGE, largest.file_id, largest.file_size, "image/jpeg"),)
    if (document := message.document) is not None:
        mime = document.mime_type or ""
        # Images and recordings sent as files are read as what they are.
        kind = (
            MediaKind.IMAGE
            if mime.startswith("image/")
            else MediaKind.AUDIO
            if mime.startswith("audio/")
            else MediaKind.DOCUMENT
        )
        return (
            MediaRef(kind, document.file_id, document.file_size, mime, document.file_name or ""),
        )
    if (voice := message.voice) is not None:
        mime = voice.mime_type or "audio/ogg"
        return (
            MediaRef(MediaKind.VOICE, voice.file_id, voice.file_size, mime, "", voice.duration),
        )
    if (audio := message.audio) is not None:
        return (
            MediaRef(
                MediaKind.AUDIO,
                audio.file_id,
                audio.file_size,
                audio.mime_type or "",
                audio.file_name or "",
                audio.duration,
            ),
        )
    if (note := message.video_note) is not None:
        return (
            MediaRef(
                MediaKind.VIDEO_NOTE, note.file_id, note.file_size, "video/mp4", "", note.duration
            ),
        )
    return ()


_UNSUPPORTED = (
    ("sticker", "stickers"),
    ("video", "videos"),
    ("animation", "GIFs"),
    ("location", "locations"),
    ("venue", "locations"),
    ("contact", "contacts"),
    ("poll", "polls"),
    ("dice", "dice"),
    ("story", "stories"),
)


def unsupported(message: Message) -> str | None:
    """What ``message`` carries that nothing here reads, for the reply saying so; ``None``:
    nothing of the kind."""
    for field, name in _UNSUPPORTED:
        if getattr(message, field, None) is not None:
            return name
    return None


def to_payload(
    message: UserMessage | Command, *, album: str = "", refusal: str = ""
) -> dict[str, Any]:
    """A routed message as plain data for the inbox (with its album and refusal, if any)."""
    kind = "command" if isinstance(message, Command) else "message"
    data = attrs.asdict(message, recurse=False)
    if isinstance(message, UserMessage):
        if message.media:
            data["media"] = [_media(ref) for ref in message.media]
        else:
            del data["media"]  # a text message's payload stays as it was
        if message.addressed:
            del data["addressed"]  # as do those of private chats and addressed messages
    elif not message.admin:
        del data["admin"]
    if album:
        data["album"] = album
    if refusal:
        data["refusal"] = refusal
    return {"kind": kind, **data}


def _media(ref: MediaRef) -> dict[str, Any]:
    return {**attrs.asdict(ref), "kind": ref.kind.value}


def from_payload(payload: dict[str, Any]) -> UserMessage | Command:
    data = dict(payload)
    kind = data.pop("kind")
    data.pop("album", None)
    data.pop("refusal", None)
    if kind == "command":
        return Command(**data)
    media = tuple(
        MediaRef(**{**ref, "kind": MediaKind(ref["kind"])}) for ref in data.pop("media", ())
    )
    return UserMessage(**data, media=media)


def payload_album(payload: dict[str, Any]) -> str:
    """The album an inbox payload's message is part of (empty: none)."""
    return str(payload.get("album") or "")


def payload_refusal(payload: dict[str, Any]) -> str:
    """The refusal an inbox payload's message got at routing (empty: none)."""
    return str(payload.get("refusal") or "")
