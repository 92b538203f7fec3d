"""From a Telegram update to a thread's mailbox: route, write to the inbox, then deliver.

Polling and the webhook share this path, so an update is handled the same way whichever
way it came: ignored with a log line (and a reply where one helps), or written to the
durable inbox (deduplicated by ``update_id``) before anything confirms it to Telegram.

Text is sanitized here, before anything else sees it: a lone surrogate (half of an emoji, which
JSON can carry as ``"\\ud83d"`` but UTF-8 cannot encode) becomes U+FFFD and NUL characters
are removed, in texts, captions and command arguments alike. Otherwise the first UTF-8
encoder on the way (the model request, SQLite, Telegram) fails on it, every time the message
is tried.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from aiogram.types import Update
from loguru import logger

from actors.thread.messages import Command, UserMessage
from gateway.config import TelegramConfig
from gateway.exceptions import StoreUnavailableError
from gateway.ops.metrics import Metrics
from gateway.store.sqlite import InboxEntry, Store
from gateway.telegram.pairing import Admission
from gateway.telegram.routing import Ignored, Routed, route, to_payload


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
    username: str = ""
    """The bot's username (for ``/command@bot``); set once ``getMe`` answered."""
    admission: Admission = attrs.field(init=False)
    """Who may talk to the agent (``telegram.dm_policy``, the allowlists, approved users)."""

    def __attrs_post_init__(self) -> None:
        self.admission = Admission(self._store, self._config)

    async def take(self, update: Update) -> Routed | None:
        """Return the routed message if ``update`` is new and for a thread, else ``None``.

        Bad input never raises: it is logged (and answered where that helps). A store that
        cannot be written raises ``StoreUnavailableError``: the update is then not confirmed.
        """
        try:
            refused = await self.admission.check(update)  # a StoreUnavailableError goes up
            routed = refused or route(update, bot_username=self.username)
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
        payload = to_payload(routed.message, album=routed.album, refusal=routed.refusal)
        entry = InboxEntry(routed.update_id, routed.key, routed.message.message_id, payload)
        if not await self._store.accept(entry):
            logger.info("update {id} was already in the inbox (redelivered)", id=routed.update_id)
            return None
        self._metrics.messages_in.inc()
        return routed
