"""A local Telegram Bot API simulator: the demo's Telegram, and the tests' fake Bot API.

It speaks the real Bot API over HTTP on loopback, so the real aiogram ``Bot`` talks to it
through ``TelegramAPIServer.from_base``. Users are simulated with :meth:`BotAPISimulator.say`;
whatever the bot sends or edits is recorded (and reported to listeners). It can fail like
Telegram does: 429 with ``retry_after`` (every N sends, the next N requests, or whenever the
bot goes over Telegram's limits), HTTP 500 for sends or edits, and slow answers. It keeps
each message's inline keyboard as Telegram does (an edit without one removes it), records
reactions and drafts, and can refuse them, as a chat or a Bot API without them does
(``gateway.demo.botapi_extras``).

This module holds the server (its fields, the HTTP routes, ``getMe``, ``getUpdates`` and
webhooks) and the users' messages. The bot's sends and edits are taken by
``gateway.demo.botapi_sends`` (:class:`SendSide`, which also holds :class:`SentMessage` and
the bot's identity), presses and menus by ``gateway.demo.botapi_updates``
(:class:`UpdateSide`), files by ``gateway.demo.botapi_files``; all are importable from here.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import attrs
from aiohttp import web

from gateway.demo import botapi_updates
from gateway.demo.botapi_extras import SimDrafts, SimReactions
from gateway.demo.botapi_files import SimFiles
from gateway.demo.botapi_sends import (
    BOT_ID,
    BOT_USER,
    BOT_USERNAME,
    CHAT_GAP,
    GROUP_PER_MINUTE,
    SendSide,
    SentMessage,
)
from gateway.demo.botapi_updates import CallbackAnswer, UpdateSide, json_param
from gateway.demo.model_sim import LoopbackServer, serve_in_thread

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "BOT_USERNAME",
    "CHAT_GAP",
    "GROUP_PER_MINUTE",
    "BotAPISimulator",
    "SentMessage",
]


@attrs.define(eq=False)
class BotAPISimulator(UpdateSide, SendSide):
    """The server. ``say()`` makes a user write; ``sent`` is what the bot wrote."""

    flood_every: int = 0
    """Answer every Nth send with HTTP 429 (0: never)."""
    flood_retry_after: int = 1
    """The ``retry_after`` of those answers."""
    reject_markup: bool = False
    """Answer every ``parse_mode=HTML`` request with "can't parse entities"."""
    token: str | None = None
    """The only bot token accepted (HTTP 401 for any other); ``None`` accepts any."""
    send_delay: float = 0.0
    """Seconds every ``sendMessage`` takes before it is answered (a slow Bot API)."""
    edit_delay: float = 0.0
    """Seconds every ``editMessageText`` takes before it is answered."""
    enforce_limits: bool = False
    """Answer 429 (with the ``retry_after`` Telegram would give) to a request over Telegram's
    limits: one a second per chat, 20 a minute per group (sends and edits alike)."""
    flood_next: int = 0
    """Answer the next N sends or edits with 429 ``flood_retry_after``."""
    fail_sends: int = 0
    """Answer the next N sends with HTTP 500 (their outcome unknown to the bot)."""
    fail_edits: int = 0
    """Answer the next N edits with HTTP 500."""
    violations: int = 0
    """Requests that went over the limits (with ``enforce_limits``)."""
    getme_failures: int = 0
    """The next N ``getMe`` requests answer HTTP 500 (a Bot API having a bad minute at start)."""
    getme_calls: int = 0
    """``getMe`` requests answered so far, failed ones included."""
    reactions: SimReactions = attrs.Factory(SimReactions)
    """The bot's reactions (``setMessageReaction``), and the chats that refuse them."""
    drafts: SimDrafts = attrs.Factory(SimDrafts)
    """The bot's drafts (``sendMessageDraft``), and whether they are refused."""
    sent: list[SentMessage] = attrs.Factory(list)
    actions: list[tuple[int, str]] = attrs.Factory(list)
    listeners: list[Callable[[str, SentMessage], None]] = attrs.Factory(list)
    said_at: dict[int, float] = attrs.Factory(dict)
    """When each user message was made (``time.monotonic``), by message id."""
    floods: int = 0
    webhook: tuple[str, str] | None = None
    """The webhook set by the bot: (url, secret token); ``getUpdates`` is refused meanwhile."""
    webhook_last_error: str = ""
    """What ``getWebhookInfo`` reports as the webhook's last delivery error."""
    base_url: str = ""
    files: SimFiles = attrs.Factory(SimFiles)
    """The files users sent (``getFile``, downloads; see ``gateway.demo.botapi_files``)."""
    menus: dict[str, list[dict[str, str]]] = attrs.Factory(dict)
    """The command menus the bot set (``setMyCommands``), by scope type
    (``all_private_chats``, ``all_group_chats``, ``default``)."""
    fail_set_commands: int = 0
    """Answer the next N ``setMyCommands`` with HTTP 500."""
    callback_answers: list[CallbackAnswer] = attrs.Factory(list)
    """The bot's ``answerCallbackQuery`` calls that were answered, in order."""
    fail_callback_answers: int = 0
    """Answer the next N ``answerCallbackQuery`` with HTTP 500."""
    api_calls: list[tuple[str, int | None]] = attrs.Factory(list)
    """Every Bot API request that reached the simulator: (method, its ``chat_id`` if any)."""
    allowed_updates: list[str] | None = None
    """The update types the bot last asked for (``getUpdates`` or ``setWebhook``)."""
    _said: dict[int, dict[str, Any]] = attrs.Factory(dict)
    """The users' messages, by id (what a reply to one of them carries)."""
    _forums: set[int] = attrs.Factory(set)
    """The group chats made as forums."""
    _queries: Iterator[int] = attrs.Factory(lambda: itertools.count(1))
    _updates: list[dict[str, Any]] = attrs.Factory(list)
    _update_ids: Iterator[int] = attrs.Factory(lambda: itertools.count(1))
    _message_ids: Iterator[int] = attrs.Factory(lambda: itertools.count(1000))
    _sends: int = 0
    _requests: dict[int, list[float]] = attrs.Factory(dict)
    _confirmed: int = 0
    _arrived: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: LoopbackServer = attrs.Factory(LoopbackServer)
    _lock: threading.Lock = attrs.Factory(threading.Lock)

    # -- users -----------------------------------------------------------------------------

    def say(
        self,
        text: str,
        *,
        chat_id: int = -1001,
        topic: int | None = None,
        user_id: int = 42,
        forum: bool = True,
        caption: bool = False,
        **more: Any,
    ) -> int:
        """A user writes ``text``; return its message id. Thread-safe. ``more``: what
        :meth:`make_update` takes besides (a reply, a quote, a text mention, a name)."""
        update = self.make_update(
            text,
            chat_id=chat_id,
            topic=topic,
            user_id=user_id,
            forum=forum,
            caption=caption,
            **more,
        )
        self._push(update)
        return int(update["message"]["message_id"])

    def make_update(
        self,
        text: str,
        *,
        chat_id: int = -1001,
        topic: int | None = None,
        user_id: int = 42,
        forum: bool = True,
        caption: bool = False,
        reply_to: int | None = None,
        quote: str = "",
        text_mention: str = "",
        first_name: str = "",
    ) -> dict[str, Any]:
        """The update a user writing ``text`` makes, with the next ids, without queueing it
        (webhook tests POST it themselves, in whatever order).

        Every ``@username`` in ``text`` is a ``mention`` entity, as Telegram makes them;
        ``text_mention`` (a part of ``text``) is a mention of the bot's user. ``reply_to``:
        the message (the bot's or a user's) it replies to, ``quote`` the part of it quoted.
        """
        message_id = next(self._message_ids)
        self.said_at[message_id] = time.monotonic()
        chat = self._chat(chat_id, forum)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": botapi_updates.user(user_id, first_name),
        }
        message["caption" if caption else "text"] = text
        if found := botapi_updates.entities(text, text_mention, BOT_USER):
            message["caption_entities" if caption else "entities"] = found
        if forum and topic is not None and topic != 1:
            message.update(message_thread_id=topic, is_topic_message=True)
        if reply_to is not None:
            message["reply_to_message"] = self._replied(reply_to)
            if quote:
                message["quote"] = {"text": quote, "position": 0}
        with self._lock:
            self._said[message_id] = dict(message)
            return {"update_id": next(self._update_ids), "message": message}

    def say_media(
        self, media: dict[str, Any], caption: str = "", album: str = "", **where: Any
    ) -> int:
        """A user sends a file (``media``: fields from ``files``), with ``caption``, as part of
        album ``album`` if set; return its message id."""
        update = self.make_update(caption, caption=True, **where)
        message = update["message"]
        message.update(media, **({"media_group_id": album} if album else {}))
        if not caption:
            del message["caption"]
        self._push(update)
        return int(message["message_id"])

    def push_raw(self, update: dict[str, Any]) -> None:
        """Queue any update body (for odd-input tests). Thread-safe."""
        self._push(update)

    def _push(self, body: dict[str, Any]) -> None:
        # Queued at once (so callers can rely on it), announced to the server's loop after.
        with self._lock:
            if "update_id" not in body:
                body = {"update_id": next(self._update_ids), **body}
            self._updates.append(body)
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._announce)
        else:
            self._announce()

    def _announce(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    @property
    def unconfirmed(self) -> int:
        """Updates the bot has not confirmed yet (fetched or not)."""
        return len(self._updates)

    @property
    def confirmed(self) -> int:
        """The highest update id the bot confirmed (via ``getUpdates`` offset)."""
        return self._confirmed

    # -- server ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self.add_routes(app)
        self.base_url = f"http://{host}:{await self._server.start(app, host, port)}"
        return self.base_url

    def add_routes(self, app: web.Application) -> None:
        """More routes, for a simulator built on this one (the tests' tapped one)."""

    async def stop(self) -> None:
        await self._server.stop()

    @contextmanager
    def serving_in_thread(self) -> Iterator[BotAPISimulator]:
        """Serve from a thread with its own asyncio loop."""
        with serve_in_thread(self.start, self.stop, "botapi-simulator"):
            yield self

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self.token is not None and request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        params: dict[str, Any] = dict(await request.post())
        if not params and request.can_read_body:
            try:
                params = await request.json()
            except ValueError:
                params = {}
        chat_id = params.get("chat_id")
        numeric = chat_id is not None and str(chat_id).lstrip("-").isdigit()
        self.api_calls.append((method, int(str(chat_id)) if numeric else None))
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return self._ok(True)  # setMyCommands, deleteWebhook, ...: accepted
        result: web.Response = await handler(params)
        return result

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if self.token is not None and request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        return await self.files.download(request)

    async def _api_getfile(self, params: dict[str, Any]) -> web.Response:
        return self.files.get_file(params)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(code: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _api_getme(self, params: dict[str, Any]) -> web.Response:
        self.getme_calls += 1
        if self.getme_failures > 0:
            self.getme_failures -= 1
            return self._error(500, "Internal Server Error")
        return self._ok(BOT_USER)

    async def _api_setwebhook(self, params: dict[str, Any]) -> web.Response:
        self.allowed_updates = json_param(params.get("allowed_updates"))
        url = str(params.get("url") or "")
        self.webhook = (url, str(params.get("secret_token") or "")) if url else None
        return self._ok(True)

    async def _api_getwebhookinfo(self, params: dict[str, Any]) -> web.Response:
        info: dict[str, Any] = {
            "url": self.webhook[0] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook_last_error:
            info.update(
                last_error_date=int(time.time()), last_error_message=self.webhook_last_error
            )
        return self._ok(info)

    async def _api_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = None
        return self._ok(True)

    async def _api_getupdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return self._error(409, "Conflict: can't use getUpdates while webhook is active")
        if "allowed_updates" in params:
            self.allowed_updates = json_param(params["allowed_updates"])
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 5.0)
        if offset:
            self._confirmed = max(self._confirmed, offset - 1)
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout and self._arrived is not None:
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        with self._lock:
            return self._ok(self._updates[:100])
