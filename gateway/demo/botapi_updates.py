"""The updates the Bot API simulator makes besides plain messages, and what it records of the
bot's menus and callback answers (the update side of ``gateway.demo.botapi_sim``).

As Telegram does, an ``@username`` in a user's text is a ``mention`` entity, with offsets
and lengths in UTF-16 code units. :class:`UpdateSide` holds the simulator's methods for these
(it is one of ``BotAPISimulator``'s bases).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from gateway.demo.telegram_html import utf16_length

if TYPE_CHECKING:
    from gateway.demo.botapi_sends import SentMessage

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


class UpdateSide:
    """``BotAPISimulator``'s methods that make presses and stopped drafts, and record the
    bot's menus and callback answers (the simulator's fields named below are its own)."""

    if TYPE_CHECKING:
        sent: list[SentMessage]
        menus: dict[str, list[dict[str, str]]]
        fail_set_commands: int
        callback_answers: list[CallbackAnswer]
        fail_callback_answers: int
        _said: dict[int, dict[str, Any]]
        _forums: set[int]
        _queries: Iterator[int]
        _lock: threading.Lock

        def _push(self, body: dict[str, Any]) -> None: ...

        @staticmethod
        def _ok(result: Any) -> web.Response: ...

        @staticmethod
        def _error(code: int, description: str, **parameters: Any) -> web.Response: ...

        @staticmethod
        def _message_json(sent: SentMessage) -> dict[str, Any]: ...

    def _chat(self, chat_id: int, forum: bool) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        if chat_id < 0:
            chat.update(title="Demo forum", is_forum=forum)
            if forum:
                self._forums.add(chat_id)
        return chat

    def _replied(self, message_id: int) -> dict[str, Any]:
        """The message ``message_id`` as a reply to it carries it (the bot's or a user's)."""
        with self._lock:
            said = self._said.get(message_id)
        if said is not None:
            return {k: v for k, v in said.items() if k != "reply_to_message"}
        return self.bot_message(message_id)

    def bot_message(self, message_id: int) -> dict[str, Any]:
        """The bot's message ``message_id`` as Telegram shows it in updates."""
        sent = next(m for m in self.sent if m.message_id == message_id)
        body = self._message_json(sent)
        body["chat"] = self._chat(sent.chat_id, sent.chat_id in self._forums)
        return body

    def press(self, chat_id: int, message_id: int, data: str, user_id: int = 42) -> str:
        """A user presses the button with callback ``data`` under the bot's message
        ``message_id`` in ``chat_id``; return the callback query's id. Thread-safe."""
        message = self.bot_message(message_id)
        assert message["chat"]["id"] == chat_id, f"message {message_id} is not in {chat_id}"
        with self._lock:
            query_id = f"q{next(self._queries)}"
        presser = user(user_id)
        self._push(callback_query(query_id, presser, message, data))
        return query_id

    def stop_generation(self, chat_id: int, draft_id: int, topic: int | None = None) -> None:
        """The user stops the draft ``draft_id`` in ``chat_id`` (``stopped_message_generation``)."""
        chat = self._chat(chat_id, chat_id in self._forums)
        self._push(stopped_generation(chat, draft_id, topic))

    def answers_to(self, query_id: str) -> list[CallbackAnswer]:
        """The bot's answers to callback query ``query_id`` (one, if it answered)."""
        return [answer for answer in self.callback_answers if answer.query_id == query_id]

    async def _api_setmycommands(self, params: dict[str, Any]) -> web.Response:
        if self.fail_set_commands > 0:
            self.fail_set_commands -= 1
            return self._error(500, "Internal Server Error")
        scope = json_param(params.get("scope")) or {"type": "default"}
        self.menus[str(scope["type"])] = list(json_param(params.get("commands")) or [])
        return self._ok(True)

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> web.Response:
        if self.fail_callback_answers > 0:
            self.fail_callback_answers -= 1
            return self._error(500, "Internal Server Error")
        alert = str(params.get("show_alert", "")).lower() in ("true", "1")
        query_id = str(params["callback_query_id"])
        if self.answers_to(query_id):
            return self._error(400, "Bad Request: query is too old and response timeout expired")
        answer = CallbackAnswer(query_id, str(params.get("text") or ""), alert)
        self.callback_answers.append(answer)
        return self._ok(True)


def json_param(value: Any) -> Any:
    """A parameter aiogram sent as JSON text (in a form) or as JSON itself."""
    return json.loads(value) if isinstance(value, str) else value
