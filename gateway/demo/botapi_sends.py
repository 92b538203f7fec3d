"""The send side of the Bot API simulator (``gateway.demo.botapi_sim``): what the bot sends,
edits, reacts and drafts, recorded as Telegram keeps it, and refused as Telegram refuses it.

:class:`SendSide` holds the simulator's methods for ``sendMessage``, ``editMessageText``,
``editMessageReplyMarkup``, ``setMessageReaction``, ``sendMessageDraft`` and
``sendChatAction`` (it is one of ``BotAPISimulator``'s bases). They can fail on demand: 429
with ``retry_after`` (every N sends, the next N requests, or whenever the bot goes over
Telegram's limits: :data:`CHAT_GAP`, :data:`GROUP_PER_MINUTE`), HTTP 500, slow answers, and
markup Telegram would reject. Each message keeps its inline keyboard as Telegram does (an
edit without one removes it); reactions and drafts are kept by ``gateway.demo.botapi_extras``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from gateway.demo.botapi_extras import keyboard_of
from gateway.demo.telegram_html import TelegramHTMLCheck, utf16_length

if TYPE_CHECKING:
    from gateway.demo.botapi_extras import SimDrafts, SimReactions

CHAT_GAP = 0.8
"""With ``enforce_limits``: the shortest gap between two requests to a chat that passes (one a
second, less the jitter of the requests' way here)."""
GROUP_PER_MINUTE = 20
"""With ``enforce_limits``: requests a minute one group takes."""

BOT_ID = 7000001
BOT_USERNAME = "threadgate_demo_bot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Threadgate", "username": BOT_USERNAME}
"""The bot as ``getMe``, its messages and mentions of it show it."""


@attrs.define
class SentMessage:
    """A message the bot sent, with its edits."""

    chat_id: int
    thread_id: int | None
    message_id: int
    text: str
    reply_to: int | None
    edits: int = 0
    at: float = attrs.Factory(time.monotonic)
    """When it was sent (``time.monotonic``)."""
    reply_markup: dict[str, Any] | None = None
    """Its inline keyboard now (Bot API JSON: ``{"inline_keyboard": [[button, ...], ...]}``)."""
    markup_edits: int = 0
    """``editMessageReplyMarkup`` requests that changed it."""
    keyboards: list[dict[str, Any] | None] = attrs.Factory(list)
    """Every keyboard it has shown, in order (``None``: none), from when it was sent."""

    def buttons(self) -> list[dict[str, Any]]:
        """The buttons of its inline keyboard now (none: ``[]``)."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


class SendSide:
    """``BotAPISimulator``'s methods that take the bot's sends, edits, reactions, drafts and
    chat actions, and pace them (the simulator's fields named below are its own)."""

    if TYPE_CHECKING:
        flood_every: int
        flood_retry_after: int
        reject_markup: bool
        send_delay: float
        edit_delay: float
        enforce_limits: bool
        flood_next: int
        fail_sends: int
        fail_edits: int
        violations: int
        reactions: SimReactions
        drafts: SimDrafts
        sent: list[SentMessage]
        actions: list[tuple[int, str]]
        listeners: list[Callable[[str, SentMessage], None]]
        floods: int
        _message_ids: Iterator[int]
        _sends: int
        _requests: dict[int, list[float]]

        @staticmethod
        def _ok(result: Any) -> web.Response: ...

        @staticmethod
        def _error(code: int, description: str, **parameters: Any) -> web.Response: ...

    def texts(self, chat_id: int, topic: int | None = None) -> list[str]:
        """The bot's messages in a thread, as they read now."""
        return [m.text for m in self.sent if (m.chat_id, m.thread_id) == (chat_id, topic)]

    def _over_limits(self, chat_id: int) -> web.Response | None:
        """429 for a request over the limits (or flooded on purpose), else ``None``."""
        retry = 0
        if self.flood_next > 0:
            self.flood_next -= 1
            retry = self.flood_retry_after
        elif self.enforce_limits:
            now = time.monotonic()
            recent = [t for t in self._requests.get(chat_id, []) if t > now - 60]
            self._requests[chat_id] = recent
            if recent and now - recent[-1] < CHAT_GAP:
                retry = 1
            elif chat_id < 0 and len(recent) >= GROUP_PER_MINUTE:
                retry = int(recent[-GROUP_PER_MINUTE] + 60 - now) + 1
            if retry:
                self.violations += 1
            else:
                recent.append(now)
        if not retry:
            return None
        self.floods += 1
        return self._error(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    async def _api_sendmessage(self, params: dict[str, Any]) -> web.Response:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        self._sends += 1
        if self.flood_every and self._sends % self.flood_every == 0:
            self.floods += 1
            retry = self.flood_retry_after
            return self._error(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        if (flooded := self._over_limits(int(params["chat_id"]))) is not None:
            return flooded
        if self.fail_sends > 0:
            self.fail_sends -= 1
            return self._error(500, "Internal Server Error")
        text = self._render(params)
        if text is None:
            return self._error(400, "Bad Request: can't parse entities: unsupported markup")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        thread = params.get("message_thread_id")
        reply = params.get("reply_parameters")
        reply_to = json.loads(reply).get("message_id") if isinstance(reply, str) else None
        chat_id = int(params["chat_id"])
        sent = SentMessage(
            chat_id, int(thread) if thread else None, next(self._message_ids), text, reply_to
        )
        sent.reply_markup = keyboard_of(params)
        sent.keyboards.append(sent.reply_markup)
        self.sent.append(sent)
        self._notify("sent", sent)
        return self._ok(self._message_json(sent))

    async def _edit_refused(self, params: dict[str, Any]) -> web.Response | None:
        """What an edit (of text or keyboard) gets before it is looked at: its delay, then a
        429 over the limits or an injected 500; ``None``: it goes on."""
        if self.edit_delay:
            await asyncio.sleep(self.edit_delay)
        if (flooded := self._over_limits(int(params["chat_id"]))) is not None:
            return flooded
        if self.fail_edits > 0:
            self.fail_edits -= 1
            return self._error(500, "Internal Server Error")
        return None

    async def _api_editmessagetext(self, params: dict[str, Any]) -> web.Response:
        if (refused := await self._edit_refused(params)) is not None:
            return refused
        message_id = int(params["message_id"])
        text = self._render(params)
        if text is None:
            return self._error(400, "Bad Request: can't parse entities: unsupported markup")
        keyboard = keyboard_of(params)  # none: the edit removes the keyboard
        for sent in self.sent:
            if sent.message_id == message_id:
                if sent.text == text and sent.reply_markup == keyboard:
                    return self._error(400, "Bad Request: message is not modified")
                if len(text) > 4096:
                    return self._error(400, "Bad Request: MESSAGE_TOO_LONG")
                sent.text, sent.edits = text, sent.edits + 1
                if sent.reply_markup != keyboard:
                    sent.reply_markup = keyboard
                    sent.keyboards.append(keyboard)
                self._notify("edited", sent)
                return self._ok(self._message_json(sent))
        return self._error(400, "Bad Request: message to edit not found")

    async def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> web.Response:
        if (refused := await self._edit_refused(params)) is not None:
            return refused
        message_id, keyboard = int(params["message_id"]), keyboard_of(params)
        for sent in self.sent:
            if sent.message_id == message_id:
                if sent.reply_markup == keyboard:
                    return self._error(400, "Bad Request: message is not modified")
                sent.reply_markup, sent.markup_edits = keyboard, sent.markup_edits + 1
                sent.keyboards.append(keyboard)  # listeners hear of texts only: not told
                return self._ok(self._message_json(sent))
        return self._error(400, "Bad Request: message to edit not found")

    async def _api_setmessagereaction(self, params: dict[str, Any]) -> web.Response:
        if (flooded := self._over_limits(int(params["chat_id"]))) is not None:
            return flooded
        return self.reactions.record(params)

    async def _api_sendmessagedraft(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        if (flooded := self._over_limits(chat_id)) is not None:
            return flooded
        if (refused := self.drafts.refusal(chat_id)) is not None:
            return refused
        text = self._render(params)
        if text is None:
            return self._error(400, "Bad Request: can't parse entities: unsupported markup")
        return self.drafts.record(params, text)

    async def _api_sendchataction(self, params: dict[str, Any]) -> web.Response:
        self.actions.append((int(params["chat_id"]), str(params.get("action"))))
        return self._ok(True)

    def _render(self, params: dict[str, Any]) -> str | None:
        """The text as a user sees it; ``None`` if its markup would be rejected. A text longer
        than Telegram's 4096 UTF-16 code units (once parsed) is answered "message is too
        long" at once (an ``HTTPBadRequest`` that aiohttp sends)."""
        text = str(params.get("text", ""))
        if str(params.get("parse_mode") or "").upper() == "HTML":
            if self.reject_markup:
                return None
            checker = TelegramHTMLCheck()
            checker.feed(text)
            checker.close()
            if not checker.ok:
                return None
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        if utf16_length(text) > 4096:
            description = "Bad Request: message is too long"
            body = {"ok": False, "error_code": 400, "description": description}
            raise web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")
        return text

    def _notify(self, event: str, sent: SentMessage) -> None:
        for listener in self.listeners:
            listener(event, sent)

    @staticmethod
    def _message_json(sent: SentMessage) -> dict[str, Any]:
        chat = {"id": sent.chat_id, "type": "private" if sent.chat_id > 0 else "supergroup"}
        body: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": chat,
            "text": sent.text,
            "from": BOT_USER,
        }
        if sent.thread_id is not None:
            body.update(message_thread_id=sent.thread_id, is_topic_message=True)
        if sent.reply_markup is not None:
            body["reply_markup"] = sent.reply_markup
        return body
