"""The chat sender actor: one per chat, the only one that sends or edits that chat's messages.

Rules:

* Its handlers never wait for the chat's pacing. It queues what is to be shown (notices, and
  the answers that have text or an ending not shown yet), asks ``ChatPace`` when the next
  request may go, and wakes itself for then. One request at a time, to one chat; only the
  bot-wide ``GlobalPace`` (30 a second, all chats) may hold a request for a few slots.
* Its handlers never raise: the answers queued with an incarnation are known to it alone.
  "typing…" is skipped while a request is due and bounded to ``TYPING_TIMEOUT``.
* Order of service: notices first (acknowledgements of /stop and /new, queue notices,
  refusals), then the final texts of ended answers, then partial updates of open answers,
  oldest served first. A partial update goes only while the group's per-minute budget keeps
  one request back for every open answer's final text, at most once per ``edit_interval``
  per answer, and a quarter interval after the chat's turn (a final text arriving meanwhile
  goes first).
* Every request carries the latest text of its answer: chunks that arrive while an answer
  waits for its turn coalesce into one edit.
* A 429 blocks the chat for its ``retry_after``; nothing else waits for it. An edit that
  fails for the network or a Telegram 5xx is retried (three tries); a send whose outcome is
  unknown is never sent again, so nothing arrives twice: its answer fails, and its stream
  reports that the answer could not be delivered. Refused requests (400, 403) fail too.
* Text goes out as HTML (``gateway.telegram.markup``); if Telegram rejects the markup, the
  next turn sends the same visible text without formatting (``Piece.plain``): one request
  per turn, always paced. Every failure is logged; a
  notice has nobody waiting, so its failure is only logged. No error of a request stops the
  sender.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
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
from gateway.exceptions import SendFailedError
from gateway.ops.metrics import Metrics
from gateway.telegram.answer import Answer, AnswerReady
from gateway.telegram.markup import Piece, pieces
from gateway.telegram.pacing import ChatPace, GlobalPace
from gateway.telegram.routing import GENERAL_TOPIC

EDIT_TRIES = 3
TYPING_TIMEOUT = 2.0
"""The longest a "typing…" request may hold the sender (it is cosmetic)."""
PARTIAL_GRACE = 0.25
"""A partial update waits this much of the chat's interval beyond its turn, so that a final
text arriving meanwhile goes first (a request taken by a partial holds the chat for a whole
interval)."""


@attrs.frozen
class Notice:
    """Send ``text`` to a thread: told, queued ahead of every answer's update."""

    key: ThreadKey
    """Where."""
    text: str
    """What (split into several messages if long)."""
    reply_to: int | None = None
    """The message it answers."""


@attrs.frozen
class Typing:
    """Show "typing…" in the thread (cosmetic: not paced per chat, failures logged)."""

    key: ThreadKey
    """Where."""


@attrs.frozen
class Wake:
    """Told by the sender to itself when the next request may go."""


@attrs.frozen
class _NoticePiece:
    key: ThreadKey
    piece: Piece
    reply_to: int | None
    plain: bool = False


def _markup_rejected(error: TelegramBadRequest) -> bool:
    text = str(error).lower()
    return "can't parse entities" in text or "can't find end" in text


def thread_kwargs(key: ThreadKey) -> dict[str, Any]:
    if key.thread_id is None or key.thread_id == GENERAL_TOPIC:
        return {}  # the General topic takes no message_thread_id
    return {"message_thread_id": key.thread_id}


@attrs.define(eq=False)
class ChatSender(Actor[object]):
    """Sends to one chat (see the module's rules)."""

    _chat_id: int
    _bot: Bot
    _pace: GlobalPace
    _metrics: Metrics
    _send_interval: float = 1.0
    _group_per_minute: int = 20
    _edit_interval: float = 1.0
    _chat: ChatPace = attrs.field(init=False)
    _notices: deque[_NoticePiece] = attrs.field(factory=deque, init=False)
    _open: dict[int, Answer] = attrs.field(factory=dict, init=False)
    _queued: dict[int, Answer] = attrs.field(factory=dict, init=False)
    _wake: anyio.CancelScope | None = attrs.field(default=None, init=False)
    _wake_at: float = attrs.field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        per_minute = self._group_per_minute if self._chat_id < 0 else None
        self._chat = ChatPace(self._send_interval, per_minute)

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        # Never raises: a new incarnation would not know the answers queued with this one.
        try:
            await self._take(message)
            if self._next_at(anyio.current_time()) <= anyio.current_time():
                await self._serve_one()
        except Exception as error:  # noqa: BLE001 - a bug: logged, the sender goes on
            logger.opt(exception=error).error("chat sender {chat} failed", chat=self._chat_id)
        self._schedule(ctx)
        return None

    async def _take(self, message: object) -> None:
        if isinstance(message, Notice):
            try:
                parts = pieces(message.text)
            except Exception as error:  # noqa: BLE001 - a bug in rendering: logged
                logger.opt(exception=error).error("notice to {key} not rendered", key=message.key)
                return
            for index, piece in enumerate(parts):
                reply_to = message.reply_to if index == 0 else None
                self._notices.append(_NoticePiece(message.key, piece, reply_to))
        elif isinstance(message, AnswerReady):
            answer = message.answer
            if answer.settled:  # settled without a request (nothing to show): let go of it
                self._open.pop(answer.id, None)
                self._queued.pop(answer.id, None)
            else:
                self._open[answer.id] = answer
                self._queued.setdefault(answer.id, answer)
        elif isinstance(message, Wake):
            self._wake = None
        elif isinstance(message, Typing):
            await self._typing(message.key)
        else:
            logger.error("chat sender {chat}: unknown message {m!r}", chat=self._chat_id, m=message)

    def can_passivate(self) -> bool:
        blocked = self._chat.blocked_until > anyio.current_time()
        return not (self._notices or self._open or blocked)

    def describe(self) -> Mapping[str, object]:
        return {
            "notices_queued": len(self._notices),
            "answers_open": len(self._open),
            "answers_queued": len(self._queued),
        }

    # -- scheduling ----------------------------------------------------------------------

    def _next_at(self, now: float) -> float:
        """When the next request may go (``inf``: nothing to do until told)."""
        if self._notices:
            return self._chat.ready_at(now)
        return min((at for at, _ in self._due(now)), default=float("inf"))

    def _due(self, now: float) -> list[tuple[float, Answer]]:
        """When each queued answer's next request may go: final texts first, then partial
        updates, each in queue order (the longest waiting first)."""
        final_at = self._chat.ready_at(now)
        partial_at = self._partial_at(now)
        finals = [(max(final_at, a.retry_at), a) for a in self._queued.values() if a.final]
        partials = [
            (max(partial_at, a.retry_at, a.last_request + self._edit_interval), a)
            for a in self._queued.values()
            if not a.final
        ]
        return finals + partials

    def _schedule(self, ctx: ActorContext[Any]) -> None:
        now = anyio.current_time()
        at = self._next_at(now)
        if self._wake is not None and self._wake_at < now:
            self._wake = None  # its Wake was not delivered (a full mailbox): gone
        if at == float("inf") or (self._wake is not None and self._wake_at <= at):
            return
        if self._wake is not None:
            self._wake.cancel()
        scope = anyio.CancelScope()
        self._wake, self._wake_at = scope, at
        ctx.start_soon(self._wake_up, scope, at, ctx)

    @staticmethod
    async def _wake_up(scope: anyio.CancelScope, at: float, ctx: ActorContext[Any]) -> None:
        with scope:
            await anyio.sleep(max(0.0, at - anyio.current_time()))
            try:
                ctx.tell_self(Wake())
            except Exception as error:  # noqa: BLE001 - a full mailbox is served anyway
                logger.debug("chat sender: wake not delivered: {e!r}", e=error)

    def _partial_at(self, now: float) -> float:
        opens = self._chat.opens_at(now, reserve=len(self._open))
        return max(now, opens + PARTIAL_GRACE * self._send_interval)

    def _pick(self, now: float) -> Answer | None:
        return next((answer for at, answer in self._due(now) if at <= now), None)

    async def _serve_one(self) -> None:
        """Make the one request that is due, if any."""
        now = anyio.current_time()
        if self._notices:
            if self._chat.ready_at(now) <= now:
                await self._send_notice(self._notices.popleft())
            return
        while (answer := self._pick(now)) is not None:
            try:
                request = answer.next_request()
            except Exception as error:  # noqa: BLE001 - a bug in rendering: fails this answer
                logger.opt(exception=error).error("answer in {key} not rendered", key=answer.key)
                self._fail(answer, f"not rendered: {type(error).__name__}", outcome_unknown=False)
                continue
            if request is None:
                self._dequeue(answer)
                continue  # nothing new after all: no request spent
            await self._serve(answer, *request)
            if answer.settled or self._up_to_date(answer):
                self._dequeue(answer)
            else:  # still more to show: to the back of the queue
                self._queued.pop(answer.id, None)
                self._queued[answer.id] = answer
            return

    def _up_to_date(self, answer: Answer) -> bool:
        try:
            return answer.next_request() is None
        except Exception:  # noqa: BLE001 - failed on the next turn, with a log line
            return False

    def _dequeue(self, answer: Answer) -> None:
        self._queued.pop(answer.id, None)
        answer.dequeue()
        if answer.settle_if_done():
            self._open.pop(answer.id, None)

    # -- requests --------------------------------------------------------------------------

    async def _serve(self, answer: Answer, index: int, piece: Piece) -> None:
        key = answer.key
        sending = index >= len(answer.message_ids)
        covered = len(answer.text)
        await self._pace.wait()
        now = anyio.current_time()
        self._chat.spend(now)
        try:
            if sending:
                reply_to = answer.reply_to if index == 0 else None
                message = await self._send(key, piece, reply_to, plain=answer.plain)
                answer.sent(index, message.message_id, piece.html, now, covered)
                self._metrics.messages_out.inc()
            else:
                await self._edit(answer.message_ids[index], piece, plain=answer.plain)
                answer.sent(index, answer.message_ids[index], piece.html, now, covered)
        except TelegramRetryAfter as error:
            self._flooded(error)
        except (TelegramBadRequest, TelegramForbiddenError) as error:
            if not sending and "not modified" in str(error):
                answer.sent(index, answer.message_ids[index], piece.html, now, covered)
                return
            if isinstance(error, TelegramBadRequest) and _markup_rejected(error):
                logger.warning(
                    "markup rejected in {key} ({e}); going on as plain text", key=key, e=error
                )
                answer.use_plain()  # the next turn sends it as plain text
                return
            logger.error("{what} in {key} refused: {e}", what=_what(sending), key=key, e=error)
            self._fail(answer, str(error), outcome_unknown=False)
        except (TelegramNetworkError, TelegramServerError) as error:
            if sending:
                logger.error("send to {key} failed, outcome unknown: {e}", key=key, e=error)
                self._fail(answer, str(error), outcome_unknown=True)
                return
            tries = answer.retry_later(now + 0.5 * (answer.failures + 1))
            logger.warning("edit in {key} failed (try {n}): {e}", key=key, n=tries, e=error)
            if tries >= EDIT_TRIES:
                self._fail(answer, f"edit gave up after {tries} tries", outcome_unknown=False)
        except Exception as error:  # noqa: BLE001 - a bug: logged, never fatal
            what = _what(sending)
            logger.opt(exception=error).error("{what} in {key} failed", what=what, key=key)
            self._fail(answer, f"{type(error).__name__}: {error}", outcome_unknown=sending)

    def _fail(self, answer: Answer, reason: str, *, outcome_unknown: bool) -> None:
        answer.fail(
            SendFailedError(
                answer.key, reason, delivered=answer.message_ids, outcome_unknown=outcome_unknown
            )
        )
        self._queued.pop(answer.id, None)
        self._open.pop(answer.id, None)

    async def _send_notice(self, notice: _NoticePiece) -> None:
        await self._pace.wait()
        self._chat.spend(anyio.current_time())
        try:
            await self._send(notice.key, notice.piece, notice.reply_to, plain=notice.plain)
        except TelegramRetryAfter as error:
            self._flooded(error)
            self._notices.appendleft(notice)
            return
        except TelegramBadRequest as error:
            if notice.plain or not _markup_rejected(error):
                logger.error("notice to {key} not delivered: {e}", key=notice.key, e=error)
                return
            logger.warning(
                "markup rejected in {key} ({e}); sending plain text", key=notice.key, e=error
            )
            self._notices.appendleft(attrs.evolve(notice, plain=True))
            return
        except Exception as error:  # noqa: BLE001 - a notice has nobody waiting: logged
            logger.error("notice to {key} not delivered: {e}", key=notice.key, e=error)
            return
        self._metrics.messages_out.inc()

    def _flooded(self, error: TelegramRetryAfter) -> None:
        self._metrics.telegram_429.inc()
        self._chat.block(anyio.current_time() + error.retry_after)
        logger.warning(
            "flood control in chat {chat}: waiting {s}s", chat=self._chat_id, s=error.retry_after
        )

    async def _typing(self, key: ThreadKey) -> None:
        now = anyio.current_time()
        if self._chat.blocked_until > now or self._next_at(now) <= now:
            return  # flood control holds, or a request is due: cosmetic, so skipped
        with anyio.move_on_after(TYPING_TIMEOUT):
            try:
                await self._pace.wait()
                await self._bot.send_chat_action(self._chat_id, "typing", **thread_kwargs(key))
            except Exception as error:  # noqa: BLE001 - cosmetic; logged
                logger.debug("typing in {key} failed: {e!r}", key=key, e=error)

    async def _send(
        self, key: ThreadKey, piece: Piece, reply_to: int | None, *, plain: bool
    ) -> Message:
        """One request: the piece as HTML, or as plain text once its markup was rejected."""
        parameters = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        return await self._bot.send_message(
            self._chat_id,
            piece.plain if plain else piece.html,
            parse_mode=None if plain else "HTML",
            reply_parameters=parameters,
            **thread_kwargs(key),
        )

    async def _edit(self, message_id: int, piece: Piece, *, plain: bool) -> None:
        await self._bot.edit_message_text(
            text=piece.plain if plain else piece.html,
            chat_id=self._chat_id,
            message_id=message_id,
            parse_mode=None if plain else "HTML",
        )


def _what(sending: bool) -> str:
    return "send" if sending else "edit"
