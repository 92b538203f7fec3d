"""The updates the Bot API simulator makes besides plain messages, and what it records of the
bot's menus and callback answers (the update side of ``gateway.demo.botapi_sim``).

As Telegram does, an ``@username`` in a user's text is a ``mention`` entity, with offsets
and lengths in UTF-16 code units.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from gateway.demo.telegram_html import utf16_length

_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}\b")


@attrs.frozen
class CallbackAnswer:
    """An ``answerCallbackQuery`` the bot made."""

    query_id: str
    """The callback query answered."""
    text: str
    """The notice (or alert) shown."""
    alert: bool
    """``show_alert``."""


def user(user_id: int, first_name: str = "") -> dict[str, Any]:
    """A human user."""
    return {"id": user_id, "is_bot": False, "first_name": first_name or f"user{user_id}"}


def entities(
    text: str, text_mention: str = "", mentioned: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The entities Telegram finds in ``text``: every ``@username``, and ``text_mention``
    (its first occurrence) as a mention of the user ``mentioned``."""
    found = [
        {
            "type": "mention",
            "offset": utf16_length(text[: match.start()]),
            "length": utf16_length(match.group()),
        }
        for match in _MENTION.finditer(text)
    ]
    if text_mention and mentioned is not None and (at := text.find(text_mention)) >= 0:
        found.append(
            {
                "type": "text_mention",
                "offset": utf16_length(text[:at]),
                "length": utf16_length(text_mention),
                "user": mentioned,
            }
        )
    return sorted(found, key=lambda entity: int(entity["offset"]))


def callback_query(
    query_id: str, presser: dict[str, Any], message: dict[str, Any], data: str
) -> dict[str, Any]:
    """A ``callback_query`` update's body: ``presser`` pressed a button of ``message``."""
    return {
        "callback_query": {
            "id": query_id,
            "from": presser,
            "chat_instance": f"instance{message['chat']['id']}",
            "message": message,
            "data": data,
        }
    }


def stopped_generation(chat: dict[str, Any], draft_id: int, topic: int | None) -> dict[str, Any]:
    """A ``stopped_message_generation`` update's body: the user stopped draft ``draft_id``."""
    stopped: dict[str, Any] = {"chat": chat, "draft_id": draft_id}
    if topic is not None:
        stopped["message_thread_id"] = topic
    return {"stopped_message_generation": stopped}
