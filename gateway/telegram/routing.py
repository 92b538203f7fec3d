"""From a Telegram update to (thread key, message), or a reason to ignore it.

Rules: a forum topic is its own thread (the General topic is thread 1); DMs and plain groups
are one thread each. Commands are parsed (``/name@bot args``); a command addressed to another
bot is ignored. Text is taken from ``text`` or a media ``caption``; media without text gets a
reply. Unauthorized senders get no agent run, only a log line.
"""

from __future__ import annotations

from typing import Any

import attrs
from aiogram.types import Message, Update

from actors.thread.messages import Command, UserMessage
from actors.thread.records import ThreadKey

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


def route(
    update: Update,
    *,
    bot_username: str,
    allowed_users: frozenset[int] = frozenset(),
    allowed_chats: frozenset[int] = frozenset(),
) -> Routed | Ignored:
    """Decide where ``update`` goes."""
    message = update.message
    if message is None:
        kinds = [name for name, value in update if value is not None and name != "update_id"]
        return Ignored(update.update_id, f"unsupported update type {kinds or ['empty']}")
    key = thread_key(message)
    user_id = message.from_user.id if message.from_user else None
    if allowed_chats and key.chat_id not in allowed_chats:
        return Ignored(update.update_id, f"chat {key.chat_id} is not allowed")
    if allowed_users and user_id not in allowed_users:
        return Ignored(update.update_id, f"user {user_id} is not allowed in {key}")
    if message.from_user is not None and message.from_user.is_bot:
        return Ignored(update.update_id, "message from a bot")
    text = message.text if message.text is not None else message.caption
    if text is None or not text.strip():
        return Ignored(
            update.update_id,
            "message without text",
            key,
            "I can only read text messages (or captions) for now.",
            message.message_id,
        )
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[message truncated]"
    if text.startswith("/"):
        head, _, args = text[1:].partition(" ")
        name, _, addressee = head.partition("@")
        if addressee and addressee.lower() != bot_username.lower():
            return Ignored(update.update_id, f"command for another bot (@{addressee})")
        if name and name.replace("_", "").isalnum():
            command = Command(name.lower(), args.strip(), message.message_id, user_id)
            return Routed(update.update_id, key, command)
    return Routed(update.update_id, key, UserMessage(message.message_id, text, user_id))


def to_payload(message: UserMessage | Command) -> dict[str, Any]:
    """A routed message as plain data for the inbox."""
    kind = "command" if isinstance(message, Command) else "message"
    return {"kind": kind, **attrs.asdict(message)}


def from_payload(payload: dict[str, Any]) -> UserMessage | Command:
    data = dict(payload)
    kind = data.pop("kind")
    return Command(**data) if kind == "command" else UserMessage(**data)
