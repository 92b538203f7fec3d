"""Whether a message is addressed to the bot, its text without the mention, and the context
of the message it replies to.

Rules (groups and forum topics; a private chat is always addressed):

* An ``@username`` of the bot (a ``mention`` entity, compared without case) or a
  ``text_mention`` of the bot's user (a mention that links to the user, not a username)
  addresses it; so does a reply to one of the bot's messages. The mention is
  removed from the text the agent sees (with a ``,`` or ``:`` right after it) and the
  whitespace around it tidied; a text that is nothing but the mention keeps it.
* In a forum topic every message "replies" to the topic's first message (the service message
  that created it) unless it replies to another one: that is no reply, to the bot or anyone.
* Reply context: ``[Replying to <the bot|first name>: "<text>"]`` before the user's text, with
  the part of the replied message the user quoted (Telegram's ``quote``) or else the replied
  message's text or caption, at most ``REPLY_CONTEXT_LIMIT`` characters. A replied message
  without text (a sticker, a photo without caption) gives no context.

Entity offsets and lengths count UTF-16 code units, as Telegram's do.
"""

from __future__ import annotations

import re

import attrs
from aiogram.types import Message, MessageEntity

REPLY_CONTEXT_LIMIT = 500
"""Characters of the replied message's text given to the agent, at most."""

_AFTER_MENTION = re.compile(r"^[,:]?[ \t]*")


@attrs.frozen
class BotIdentity:
    """Who the bot is, as ``getMe`` said."""

    id: int = 0
    """The bot's user id (0: not known yet)."""
    username: str = ""
    """The bot's username, without the ``@`` (empty: not known yet)."""

    def is_bot(self, user_id: int | None, username: str | None = None) -> bool:
        """Whether the user ``user_id`` (named ``username``) is this bot."""
        if self.id and user_id is not None:
            return user_id == self.id
        return bool(self.username and username and username.lower() == self.username.lower())


@attrs.frozen
class Addressing:
    """What routing learned of a message's text."""

    text: str
    """The text with the bot's mentions removed."""
    mentioned: bool
    """Whether it mentions the bot."""


def without_mentions(
    text: str, entities: list[MessageEntity] | None, bot: BotIdentity
) -> Addressing:
    """``text`` without the bot's mentions among ``entities``, and whether there was one."""
    spans = [
        (entity.offset, entity.offset + entity.length)
        for entity in entities or ()
        if _mentions_bot(text, entity, bot)
    ]
    if not spans:
        return Addressing(text, False)
    units = text.encode("utf-16-le", "surrogatepass")
    pieces: list[str] = []
    start = 0
    for begin, end in sorted(spans):
        pieces.append(_decode(units[2 * start : 2 * begin]))
        start = end
    rest = _decode(units[2 * start :])
    cleaned = pieces[0]
    for piece in [*pieces[1:], rest]:
        cleaned = _join(cleaned, piece)
    cleaned = cleaned.strip()
    return Addressing(cleaned or text.strip(), True)


def _join(left: str, right: str) -> str:
    """``left`` and ``right`` where a mention was between them, with one space at most."""
    right = _AFTER_MENTION.sub("", right)
    left = left.rstrip(" \t")
    if left.endswith("\n") and right.startswith("\n"):
        right = right[1:]  # a mention on a line of its own: the line goes
    if not left or not right or left.endswith("\n") or right.startswith("\n"):
        return left + right
    return f"{left} {right}"


def _decode(units: bytes) -> str:
    return units.decode("utf-16-le", "surrogatepass")


def _mentions_bot(text: str, entity: MessageEntity, bot: BotIdentity) -> bool:
    if entity.type == "text_mention":
        user = entity.user
        return user is not None and bot.id != 0 and user.id == bot.id
    if entity.type != "mention" or not bot.username:
        return False
    units = text.encode("utf-16-le", "surrogatepass")
    named = _decode(units[2 * entity.offset : 2 * (entity.offset + entity.length)])
    return named.lower() == f"@{bot.username.lower()}"


def replied(message: Message) -> Message | None:
    """The message ``message`` replies to, if it is a reply (not a topic's implicit one)."""
    target = message.reply_to_message
    if target is None or target.forum_topic_created is not None:
        return None
    if message.is_topic_message and target.message_id == message.message_thread_id:
        return None
    return target


def replies_to_bot(message: Message, bot: BotIdentity) -> bool:
    """Whether ``message`` replies to one of the bot's messages."""
    target = replied(message)
    if target is None or target.from_user is None:
        return False
    return bot.is_bot(target.from_user.id, target.from_user.username)


def reply_context(message: Message, bot: BotIdentity) -> str:
    """The line that gives the agent what ``message`` replies to (empty: nothing to give)."""
    target = replied(message)
    if target is None:
        return ""
    quoted = message.quote.text if message.quote is not None else None
    text = quoted or target.text or target.caption or ""
    text = text.strip()
    if not text:
        return ""
    if len(text) > REPLY_CONTEXT_LIMIT:
        text = text[:REPLY_CONTEXT_LIMIT].rstrip() + "…"
    author = target.from_user
    if author is not None and bot.is_bot(author.id, author.username):
        name = "the bot"
    elif author is not None:
        name = author.first_name or "someone"
    else:
        name = (
            target.sender_chat.title
            if target.sender_chat and target.sender_chat.title
            else "someone"
        )
    return f'[Replying to {name}: "{text}"]'
