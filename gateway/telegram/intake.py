"""From a Telegram update to a thread's mailbox: route, write to the inbox, then deliver.

Polling and the webhook share this path, so an update is handled the same way whichever
way it came: ignored with a log line (and a reply where one helps), or written to the
durable inbox (deduplicated by ``update_id``) before anything confirms it to Telegram.

Text is sanitized here, before anything else sees it: a lone surrogate (half of an emoji, which
JSON can carry as ``"\\ud83d"`` but UTF-8 cannot encode) becomes U+FFFD and NUL characters
are removed, in texts, captions and command arguments alike. Otherwise the first UTF-8
encoder on the way (the model request, SQLite, Telegram) fails on it, every time the message
is tried.

A press of an inline button (``callback_query``) and a stopped draft
(``stopped_message_generation``) are not messages: they are handed to ``controls`` (the
callback handler, ``gateway.telegram.callbacks``) and never written to the inbox.

In a group whose activation is ``mention`` (the conversation's, or else
``threads.group_activation``), a message nobody addressed to the bot that routing would refuse
(a sticker, say) is written to the inbox and concluded ``not-addressed`` here: a refusal is
sent before any thread sees the message, and nobody asked the bot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from aiogram.types import Update
from loguru import logger

from actors.thread.messages import Command, UserMessage
from actors.thread.records import Outcome
from actors.thread.settings import Activation
from gateway.config import TelegramConfig, ThreadsConfig
from gateway.exceptions import StoreUnavailableError
from gateway.ops.metrics import Metrics
from gateway.store.sqlite import InboxEntry, Store
from gateway.telegram.addressing import BotIdentity
from gateway.telegram.pairing import Admission
from gateway.telegram.routing import Ignored, Routed, RoutingRules, route, to_payload

ALLOWED_UPDATES = ("message", "callback_query", "stopped_message_generation")
"""The update types the gateway asks Telegram for (``getUpdates`` and ``setWebhook``): said
every time, because Telegram otherwise keeps whatever an earlier program asked for."""


def sanitize(text: str) -> str:
    """``text`` as UTF-8 can carry it: lone surrogates become U+FFFD, NUL is removed.

    A surrogate pair split over two code points (``"\\ud83d\\ude00"``) is joined into the
    character it encodes; only halves without their other half are replaced.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "") if "\x00" in text else text


def sanitized(message: UserMessage | Command) -> UserMessage | Command:
    """``message`` with its user-written text sanitized (see :func:`sanitize`)."""
    if isinstance(message, UserMessage):
        text = sanitize(message.text)
        return message if text == message.text else attrs.evolve(message, text=text)
    args = sanitize(message.args)
    return message if args == message.args else attrs.evolve(message, args=args)


@attrs.define(eq=False)
class Intake:
    """Routes updates and writes them to the inbox; the caller delivers what it returns."""

    _store: Store
    _config: TelegramConfig
    _reply: Callable[[Ignored], None]
    _metrics: Metrics
    _threads: ThreadsConfig = attrs.field(default=ThreadsConfig(), kw_only=True)
    controls: Callable[[Update], Awaitable[None]] | None = attrs.field(default=None, kw_only=True)
    """Where button presses and stopped drafts go (the callback handler); ``None``: logged."""
    admission: Admission = attrs.field(init=False)
    """Who may talk to the agent (``telegram.dm_policy``, the allowlists, approved users):
    decided before routing, which then checks no allowlist of its own."""
    _rules: RoutingRules = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.admission = Admission(self._store, self._config)
        self._rules = RoutingRules(
            admin_users=frozenset(self._config.admin_users),
            per_user=self._threads.group_sessions == "per_user",
        )

    @property
    def bot(self) -> BotIdentity:
        """Who the bot is (its mentions, replies to it, ``/command@bot``)."""
        return self._rules.bot

    @bot.setter
    def bot(self, identity: BotIdentity) -> None:
        """Set once ``getMe`` answered."""
        self._rules = attrs.evolve(self._rules, bot=identity)

    async def allows(self, user_id: int | None, chat_id: int) -> bool:
        """Whether ``user_id`` may use the bot in ``chat_id``, for button presses and stopped
        drafts: the same admission as messages (allowlists, admins, approved users)."""
        return await self.admission.admits(user_id, chat_id)

    async def take(self, update: Update) -> Routed | None:
        """Return the routed message if ``update`` is new and for a thread, else ``None``.

        Bad input never raises: it is logged (and answered where that helps). A store that
        cannot be written raises ``StoreUnavailableError``: the update is then not confirmed.
        """
        if update.callback_query is not None or update.stopped_message_generation is not None:
            if self.controls is None:
                logger.info("update {id} ignored: no callback handler", id=update.update_id)
            else:
                await self.controls(update)
            return None
        try:
            refused = await self.admission.check(update)  # a StoreUnavailableError goes up
            routed = refused or route(update, self._rules)
        except StoreUnavailableError:
            raise
        except Exception:  # noqa: BLE001 - bad input must not stop the gateway
            logger.exception("update {id} could not be routed; skipped", id=update.update_id)
            return None
        if isinstance(routed, Ignored):
            logger.info("update {id} ignored: {why}", id=routed.update_id, why=routed.reason)
            if routed.reply:
                self._reply(routed)
            return None
        routed = attrs.evolve(routed, message=sanitized(routed.message))
        unaddressed = bool(routed.refusal) and await self._unaddressed(routed)
        payload = to_payload(routed.message, album=routed.album, refusal=routed.refusal)
        entry = InboxEntry(routed.update_id, routed.key, routed.message.message_id, payload)
        if not await self._store.accept(entry):
            logger.info("update {id} was already in the inbox (redelivered)", id=routed.update_id)
            return None
        self._metrics.messages_in.inc()
        if unaddressed:
            message_id = routed.message.message_id
            await self._store.record_outcome(  # the intake's, not a thread's: unfenced
                routed.key,
                message_id,
                Outcome.NOT_ADDRESSED,
                "not addressed (refused kind)",
                fenced=False,
            )
            logger.debug(
                "message {id} in {key} not addressed to the bot; not refused",
                id=message_id,
                key=routed.key,
            )
            return None
        return routed

    async def _unaddressed(self, routed: Routed) -> bool:
        """Whether nobody addressed ``routed`` to the bot, in a group that answers only when
        addressed (read before the update is accepted: a store that cannot be read leaves it
        unconfirmed)."""
        message = routed.message
        if not isinstance(message, UserMessage) or message.addressed:
            return False
        mode = await self._store.load_activation(routed.key.conversation)
        return (mode or Activation(self._threads.group_activation)) is Activation.MENTION
