"""The chat sender actor: one per chat, sends and edits that chat's messages in order.

Rules:

* ``Send`` and ``Edit`` are asked: the answer is a ``Sent`` record (or ``None`` for an edit),
  or a ``SendFailedError`` / ``EditFailedError`` that carries what happened. ``Notice`` is
  told: its failure is logged, never raised (a tell that raised would crash the sender).
* Per-chat pacing (by default 1 send/s, 20 sends/min in groups, 1 edit/s) and a global pace
  (30/s by default); ``TelegramRetryAfter`` is waited out and retried.
* A send whose outcome is unknown (network error after the request left) is not retried, so
  nothing is sent twice; edits are idempotent and retried; "message is not modified" is
  harmless.
* Text goes out as HTML (``gateway.telegram.markup``); if Telegram rejects the markup, as
  written. Every failure is logged.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Any

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Message, ReplyParameters
from loguru import logger

from actors import Actor, ActorContext
from actors.thread.records import ThreadKey
from gateway.exceptions import EditFailedError, SendFailedError
from gateway.ops.metrics import Metrics
from gateway.telegram.markup import to_html
from gateway.telegram.routing import GENERAL_TOPIC

LIMIT = 4096


@attrs.frozen
class Send:
    """Send ``text`` (split at 4096 characters). Asked: answered with ``Sent``, or raises
    ``SendFailedError``."""

    key: ThreadKey
    """Where."""
    text: str
    """What."""
    reply_to: int | None = None
    """The message it answers."""


@attrs.frozen
class Notice:
    """Send ``text`` like ``Send``, but told: a failure is logged, nobody waits for it."""

    key: ThreadKey
    """Where."""
    text: str
    """What."""
    reply_to: int | None = None
    """The message it answers."""


@attrs.frozen
class Sent:
    """The answer to ``Send``: every message it became, in order."""

    message_ids: tuple[int, ...]
    """Telegram's ids of the pieces sent (one unless the text was split)."""

    @property
    def last(self) -> int:
        """The id of the last piece (the one a streamed answer goes on editing)."""
        return self.message_ids[-1]


@attrs.frozen
class Edit:
    """Replace the text of a message the bot sent. Asked: answered with ``None``, or raises
    ``EditFailedError``."""

    key: ThreadKey
    """Where."""
    message_id: int
    """Which message."""
    text: str
    """The new text (at most 4096 characters)."""


@attrs.frozen
class Typing:
    """Show "typing…" in the thread."""

    key: ThreadKey
    """Where."""


def split(text: str, limit: int = LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit``, at paragraph, line or word boundaries."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = split_point(text, limit)
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n")
    if text.strip():
        pieces.append(text)
    return pieces


def split_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the first piece is at most ``limit`` (a nice boundary if any)."""
    window = text[:limit]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > limit // 2:
            return at + len(separator)
    return limit


@attrs.define(eq=False)
class GlobalPace:
    """Spaces all of the bot's requests (about 30 per second)."""

    _interval: float = 1 / 30
    _next: float = 0.0

    async def wait(self) -> None:
        now = anyio.current_time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await anyio.sleep(slot - now)


def _markup_rejected(error: TelegramBadRequest) -> bool:
    text = str(error).lower()
    return "can't parse entities" in text or "can't find end" in text


def thread_kwargs(key: ThreadKey) -> dict[str, Any]:
    if key.thread_id is None or key.thread_id == GENERAL_TOPIC:
        return {}  # the General topic takes no message_thread_id
    return {"message_thread_id": key.thread_id}


@attrs.define(eq=False)
class ChatSender(Actor[object]):
    """Sends to one chat."""

    _chat_id: int
    _bot: Bot
    _pace: GlobalPace
    _metrics: Metrics
    _send_interval: float = 1.0
    _group_per_minute: int = 20
    _edit_interval: float = 1.0
    _sends: deque[float] = attrs.field(factory=deque, init=False)
    _last_edit: float = attrs.field(default=-math.inf, init=False)

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        if isinstance(message, Send):
            return await self._send(message.key, message.text, message.reply_to, ctx)
        if isinstance(message, Notice):
            # Logged where it failed; a notice has nobody waiting for it.
            with contextlib.suppress(SendFailedError):
                await self._send(message.key, message.text, message.reply_to, ctx)
            return None
        if isinstance(message, Edit):
            await self._edit(message, ctx)
            return None
        if isinstance(message, Typing):
            try:
                await self._bot.send_chat_action(
                    self._chat_id, "typing", **thread_kwargs(message.key)
                )
            except Exception as error:  # noqa: BLE001 - cosmetic; logged
                logger.debug("typing in {key} failed: {e!r}", key=message.key, e=error)
            return None
        logger.error("chat sender {chat}: unknown message {m!r}", chat=self._chat_id, m=message)
        return None

    async def _send(
        self, key: ThreadKey, text: str, reply_to: int | None, ctx: ActorContext[Any]
    ) -> Sent:
        sent: list[int] = []
        for index, piece in enumerate(split(text)):
            await self._pace_send(ctx)
            reply = reply_to if index == 0 else None
            parameters = (
                ReplyParameters(message_id=reply, allow_sending_without_reply=True)
                if reply is not None
                else None
            )
            while True:
                try:
                    message = await self._send_formatted(piece, parameters, key)
                except TelegramRetryAfter as error:
                    await self._wait_flood(error, ctx)
                    continue
                except (TelegramNetworkError, TelegramServerError) as error:
                    logger.error(
                        "send to {key} failed, outcome unknown, not retried: {e}", key=key, e=error
                    )
                    raise SendFailedError(
                        key, str(error), delivered=tuple(sent), outcome_unknown=True
                    ) from None
                except (TelegramBadRequest, TelegramForbiddenError) as error:
                    logger.error("send to {key} refused: {e}", key=key, e=error)
                    raise SendFailedError(
                        key, str(error), delivered=tuple(sent), outcome_unknown=False
                    ) from None
                break
            self._metrics.messages_out.inc()
            sent.append(message.message_id)
        if not sent:
            raise SendFailedError(key, "nothing to send", delivered=(), outcome_unknown=False)
        return Sent(tuple(sent))

    async def _edit(self, edit: Edit, ctx: ActorContext[Any]) -> None:
        wait = self._last_edit + self._edit_interval - anyio.current_time()
        if wait > 0:
            await anyio.sleep(wait)
        for attempt in range(3):
            await self._pace.wait()
            try:
                await self._edit_formatted(edit)
            except TelegramRetryAfter as error:
                await self._wait_flood(error, ctx)
            except TelegramBadRequest as error:
                if "not modified" in str(error):
                    return
                logger.error("edit in {key} refused: {e}", key=edit.key, e=error)
                raise EditFailedError(edit.key, edit.message_id, str(error)) from None
            except (TelegramNetworkError, TelegramServerError) as error:
                logger.warning(
                    "edit in {key} failed (try {n}): {e}", key=edit.key, n=attempt + 1, e=error
                )
                await anyio.sleep(0.5 * (attempt + 1))
            else:
                self._last_edit = anyio.current_time()
                return
        logger.error("edit in {key} gave up", key=edit.key)
        raise EditFailedError(edit.key, edit.message_id, "gave up after 3 tries")

    async def _send_formatted(
        self, text: str, parameters: ReplyParameters | None, key: ThreadKey
    ) -> Message:
        """Send as HTML; if Telegram rejects the markup, send the text as written."""
        try:
            return await self._bot.send_message(
                self._chat_id,
                to_html(text),
                parse_mode="HTML",
                reply_parameters=parameters,
                **thread_kwargs(key),
            )
        except TelegramBadRequest as error:
            if not _markup_rejected(error):
                raise
            logger.warning("markup rejected in {key} ({e}); sending plain text", key=key, e=error)
        return await self._bot.send_message(
            self._chat_id, text, parse_mode=None, reply_parameters=parameters, **thread_kwargs(key)
        )

    async def _edit_formatted(self, edit: Edit) -> None:
        try:
            await self._bot.edit_message_text(
                text=to_html(edit.text),
                chat_id=self._chat_id,
                message_id=edit.message_id,
                parse_mode="HTML",
            )
            return
        except TelegramBadRequest as error:
            if not _markup_rejected(error):
                raise
        await self._bot.edit_message_text(
            text=edit.text, chat_id=self._chat_id, message_id=edit.message_id, parse_mode=None
        )

    async def _pace_send(self, ctx: ActorContext[Any]) -> None:
        group = self._chat_id < 0
        now = anyio.current_time()
        while self._sends and self._sends[0] <= now - 60:
            self._sends.popleft()
        waits = [self._sends[-1] + self._send_interval - now] if self._sends else []
        if group and len(self._sends) >= self._group_per_minute:
            waits.append(self._sends[0] + 60 - now)
        wait = max(waits, default=0.0)
        if wait > 0:
            ctx.heartbeat()
            await anyio.sleep(wait)
        await self._pace.wait()
        self._sends.append(anyio.current_time())

    async def _wait_flood(self, error: TelegramRetryAfter, ctx: ActorContext[Any]) -> None:
        self._metrics.telegram_429.inc()
        logger.warning(
            "flood control in chat {chat}: waiting {s}s", chat=self._chat_id, s=error.retry_after
        )
        ctx.heartbeat()
        await anyio.sleep(error.retry_after)
        ctx.heartbeat()
