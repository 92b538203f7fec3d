"""The chat sender actor: one per chat, the only one that sends or edits that chat's messages.

Rules:

* Its handlers never wait for the chat's pacing. It queues what is to be shown (notices, and
  the answers that have text or an ending not shown yet), asks ``ChatPace`` when the next
  request may go, and wakes itself for then. One request at a time, to one chat; only the
  bot-wide ``GlobalPace`` (30 a second, all chats) may hold a request for a few slots.
* Its handlers never raise: the answers queued with an incarnation are known to it alone.
  "typing…" is skipped while a request is due or the bot-wide pace has no slot free now,
  and bounded to ``TYPING_TIMEOUT``.
* Order of service (``gateway.telegram.turns`` has the rules): notices first
  (acknowledgements of /stop and /new, queue notices, refusals), then the final texts of
  ended answers, then reactions (``gateway.telegram.reactions``), then partial updates of
  open answers (drafts included), oldest served first. Reactions and partial updates keep
  the group's budget for final texts, wait a grace after the chat's turn, and in a busy
  chat (a round of its open answers longer than ``STREAM_CADENCE``) only long answers
  stream.
* Drafts (``streaming`` ``draft`` or ``auto``): in a private chat, an answer written by a
  run streams as the chat's draft (``sendMessageDraft``, the draft id its run id), its
  final text as messages (``gateway.telegram.answer`` has the rules). Elsewhere, and for an
  answer without a run id, edits. A chat that refuses its first draft (400, or 404 from a
  Bot API that lacks the method) streams by edits from then on, with a log line; its open
  answers go on as edited ones. Where drafts worked before, a refused draft (as after the
  user stopped it) only ends that answer's drafts: its final text still goes out.
* Every request carries the latest text of its answer: chunks that arrive while an answer
  waits for its turn coalesce into one edit.
* A 429 blocks the chat for its ``retry_after``; nothing else waits for it. An edit that
  fails for the network or a Telegram 5xx is retried (three tries); a send whose outcome is
  unknown is never sent again, so nothing arrives twice: its answer fails, and its stream
  reports that the answer could not be delivered. Refused requests (400, 403) fail too. A
  draft, like an edit, is retried; an edit that only removes the Stop button and is "not
  modified" counts as done.
* Text goes out as HTML (``gateway.telegram.markup``); if Telegram rejects the markup, the
  next turn sends the same visible text without formatting (``Piece.plain``): one request
  per turn, always paced. Every failure is logged; a
  notice has nobody waiting, so its failure is only logged. No error of a request stops the
  sender.
* ``sendable(chat_id)`` is asked right before every request of a thread (after the global
  pace). ``None`` (this replica's lease on the chat's shard lapsed on its own clock): the
  request waits, with a log line, for the lease manager's next round, which renews the
  lease (``True``: it goes) or finds the shard lost. ``False`` (another replica holds the
  chat): the request and the threads' others queued are withdrawn, never sent, with a log
  line; the replica evicts this sender. An intake's reply (``Notice.fenced`` false) is not
  a thread's and is not asked about.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from loguru import logger

from actors import Actor, ActorContext
from actors.thread.records import ThreadKey
from gateway.exceptions import SendFailedError
from gateway.ops.metrics import Metrics
from gateway.telegram import calls, lease_hold, notices, reactions, turns
from gateway.telegram.answer import DRAFT_REFRESH, Answer, AnswerReady, Kind, Step
from gateway.telegram.calls import Result
from gateway.telegram.notices import NoticeSent
from gateway.telegram.pacing import ChatPace, GlobalPace
from gateway.telegram.reactions import React, Reactions
from gateway.telegram.sender_messages import Notice, NoticePiece, Typing, Wake

EDIT_TRIES = 3
TYPING_TIMEOUT = 2.0
"""The longest a "typing…" request may hold the sender (it is cosmetic)."""
DRAFTING = ("draft", "auto")
"""The ``telegram.streaming`` values that stream private chats' answers as drafts."""


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
    _streaming: str = "edit"
    """``telegram.streaming``: edit, draft or auto."""
    _reactions_on: bool = False
    """``telegram.reactions``: whether ``React`` is sent at all."""
    _draft_refresh: float = DRAFT_REFRESH
    """Seconds after which an unchanged draft is shown again."""
    _sendable: Callable[[int], bool | None] = lambda chat_id: True
    """Whether this replica may send to the chat now: ``True``; not yet (``None``: its
    shard's lease lapsed here, the next round says); never (``False``: another replica
    holds it)."""
    _chat: ChatPace = attrs.field(init=False)
    _notices: deque[NoticePiece] = attrs.field(factory=deque, init=False)
    _open: dict[int, Answer] = attrs.field(factory=dict, init=False)
    _queued: dict[int, Answer] = attrs.field(factory=dict, init=False)
    _reactions: Reactions = attrs.field(factory=Reactions, init=False)
    _drafts_ok: bool = attrs.field(default=True, init=False)
    _drafts_worked: bool = attrs.field(default=False, init=False)
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
            self._notices += notices.render(message)
        elif isinstance(message, AnswerReady):
            answer = message.answer
            if answer.settled:  # settled without a request (nothing to show): let go of it
                self._open.pop(answer.id, None)
                self._queued.pop(answer.id, None)
            else:
                if answer.id not in self._open and self._drafts_for(answer):
                    answer.use_drafts()
                answer.opened(anyio.current_time())
                self._open[answer.id] = answer
                self._queued.setdefault(answer.id, answer)
        elif isinstance(message, React):
            reactions.take(self._reactions, message, enabled=self._reactions_on)
        elif isinstance(message, Wake):
            self._wake = None
        elif isinstance(message, Typing):
            await self._typing(message.key)
        else:
            logger.error("chat sender {chat}: unknown message {m!r}", chat=self._chat_id, m=message)

    def _drafts_for(self, answer: Answer) -> bool:
        drafting = self._streaming in DRAFTING and self._drafts_ok
        return drafting and self._chat_id > 0 and answer.run_id is not None

    def can_passivate(self) -> bool:
        blocked = self._chat.blocked_until > anyio.current_time()
        return not (self._notices or self._open or self._reactions.pending or blocked)

    def describe(self) -> Mapping[str, object]:
        return {
            "notices_queued": len(self._notices),
            "answers_open": len(self._open),
            "answers_queued": len(self._queued),
            "reactions_queued": self._reactions.pending,
        }

    # -- scheduling ----------------------------------------------------------------------

    def _next_at(self, now: float) -> float:
        """When the next request may go (``inf``: nothing to do until told)."""
        if self._notices:
            return self._chat.ready_at(now)
        return min((at for at, _ in self._due(now)), default=float("inf"))

    def _due(self, now: float) -> list[tuple[float, Answer | Reactions]]:
        """When each queued item's next request may go, in the order of service."""
        return turns.due(
            now,
            self._chat,
            self._queued.values(),
            self._open.values(),
            self._reactions,
            send_interval=self._send_interval,
            edit_interval=self._edit_interval,
            draft_refresh=self._draft_refresh,
        )

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

    def _pick(self, now: float, tried: set[int]) -> Answer | Reactions | None:
        due = (item for at, item in self._due(now) if at <= now)
        return next((i for i in due if isinstance(i, Reactions) or i.id not in tried), None)

    async def _serve_one(self) -> None:
        """Make the one request that is due, if any."""
        now = anyio.current_time()
        if self._notices:
            if self._chat.ready_at(now) <= now:
                await self._send_notice(self._notices.popleft())
            return
        tried: set[int] = set()
        while (answer := self._pick(now, tried)) is not None:
            if isinstance(answer, Reactions):
                await self._send_reaction()
                return
            tried.add(answer.id)
            if answer.draft_stale(now, self._draft_refresh):
                answer.forget_draft()  # Telegram would drop it soon: shown again
            answer.arm(now)
            try:
                step = answer.step()
            except Exception as error:  # noqa: BLE001 - a bug in rendering: fails this answer
                logger.opt(exception=error).error("answer in {key} not rendered", key=answer.key)
                self._fail(answer, f"not rendered: {type(error).__name__}", outcome_unknown=False)
                continue
            if step is None:
                self._dequeue(answer)
                continue  # nothing new after all: no request spent
            await self._serve(answer, step)
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

    async def _serve(self, answer: Answer, step: Step) -> None:
        key, kind, index = answer.key, step.kind, step.index
        covered = len(answer.text)
        await self._pace.wait()
        if not await self._gate():
            return
        now = anyio.current_time()
        self._chat.spend(now)
        answered = await calls.perform(self._bot, self._chat_id, answer, step)
        result, error, what = answered.result, answered.error, kind.value
        if result is Result.DONE:
            if kind is Kind.MARKUP:
                answer.marked(index, step.button, now)
            elif kind is Kind.DRAFT:
                answer.drafted(step.piece.html, now)
                self._drafts_worked = True
            else:
                mid = answered.message_id if kind is Kind.SEND else answer.message_ids[index]
                assert mid is not None
                answer.sent(index, mid, step.piece.html, now, covered, button=step.button)
                if kind is Kind.SEND:
                    self._metrics.messages_out.inc()
        elif result is Result.FLOODED:
            assert isinstance(error, TelegramRetryAfter)
            self._flooded(error)
        elif result is Result.TRANSIENT:
            tries = answer.retry_later(now + 0.5 * (answer.failures + 1))
            logger.warning(
                "{what} in {key} failed (try {n}): {e}", what=what, key=key, n=tries, e=error
            )
            if tries >= EDIT_TRIES:
                self._fail(answer, f"{what} gave up after {tries} tries", outcome_unknown=False)
        elif result is Result.UNKNOWN:
            logger.error("send to {key} failed, outcome unknown: {e}", key=key, e=error)
            self._fail(answer, str(error), outcome_unknown=True)
        elif result is Result.PLAIN:
            logger.warning(
                "markup rejected in {key} ({e}); going on as plain text", key=key, e=error
            )
            answer.use_plain()  # the next turn sends it as plain text
        elif result is Result.NO_DRAFTS and self._drafts_worked:
            logger.warning("draft in {key} refused ({e}); no more drafts for it", key=key, e=error)
            answer.hush()
        elif result is Result.NO_DRAFTS:
            self._no_drafts(error)
        elif result is Result.REFUSED:
            logger.error("{what} in {key} refused: {e}", what=what, key=key, e=error)
            self._fail(answer, str(error), outcome_unknown=False)
        else:
            logger.opt(exception=error).error("{what} in {key} failed", what=what, key=key)
            reason = f"{type(error).__name__}: {error}"
            self._fail(answer, reason, outcome_unknown=kind is Kind.SEND)

    def _no_drafts(self, error: Exception | None) -> None:
        """The chat refused a draft: it streams by edits from now on."""
        self._drafts_ok = False
        logger.warning(
            "drafts refused in chat {chat} ({e}); streaming by edits there",
            chat=self._chat_id,
            e=error,
        )
        for answer in self._open.values():
            if answer.drafting:
                answer.stop_drafting()
                self._queued.setdefault(answer.id, answer)

    async def _send_reaction(self) -> None:
        await self._pace.wait()
        if not await self._gate():
            return
        self._chat.spend(anyio.current_time())
        flooded = await reactions.send_next(self._bot, self._chat_id, self._reactions)
        if flooded is not None:
            self._flooded(flooded)

    def _fail(self, answer: Answer, reason: str, *, outcome_unknown: bool) -> None:
        answer.fail(
            SendFailedError(
                answer.key, reason, delivered=answer.message_ids, outcome_unknown=outcome_unknown
            )
        )
        self._queued.pop(answer.id, None)
        self._open.pop(answer.id, None)

    async def _send_notice(self, notice: NoticePiece) -> None:
        await self._pace.wait()
        if notice.fenced and not await self._gate():
            return
        self._chat.spend(anyio.current_time())
        sent = await notices.send(self._bot, self._chat_id, notice)
        if isinstance(sent, TelegramRetryAfter):
            self._flooded(sent)
            self._notices.appendleft(notice)
        elif sent is NoticeSent.PLAIN:
            self._notices.appendleft(attrs.evolve(notice, plain=True))
        elif sent is NoticeSent.SENT:
            self._metrics.messages_out.inc()

    async def _gate(self) -> bool:
        """Whether a request may go (see the rules): waits while the chat's shard lease
        lapsed, with a log line; ``False`` (withdrawn, logged) once the shard is not held."""
        if await lease_hold.settle(self._sendable, self._chat_id):
            return True
        answers = list(self._open.values())
        for answer in answers:
            self._fail(
                answer, "withdrawn: the chat moved to another replica", outcome_unknown=False
            )
        fenced = [notice for notice in self._notices if notice.fenced]
        self._notices = deque(notice for notice in self._notices if not notice.fenced)
        reactions = self._reactions.withdraw()
        logger.warning(
            "chat {chat} is held by another replica: {n} answer(s), {m} notice(s) and {r}"
            " reaction(s) of its threads here withdrawn, not sent",
            chat=self._chat_id,
            n=len(answers),
            m=len(fenced),
            r=reactions,
        )
        return False

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
        if self._sendable(self._chat_id) is not True or not self._pace.take_nowait():
            return  # cosmetic: skipped unless the chat is sendable and a slot free now
        with anyio.move_on_after(TYPING_TIMEOUT):
            try:
                await self._bot.send_chat_action(
                    self._chat_id, "typing", **calls.thread_kwargs(key)
                )
            except Exception as error:  # noqa: BLE001 - cosmetic; logged
                logger.debug("typing in {key} failed: {e!r}", key=key, e=error)
