"""How a thread actor speaks through its ports, and what their failures do.

Rules:

* A write (``ThreadStore.save``) that raises crashes the incarnation: the supervisor retries
  the message once on a fresh one, and the retry is harmless, because the thread recognizes
  a message it already accepted (``ThreadRecord.recent``).
* A notice never crashes the thread: one that raises, or is not taken within
  ``notice_timeout``, is logged as not delivered and the thread goes on (its outcome was
  recorded before; a retry would not say it again). It is shielded from cancellation, so a
  shutdown does not cut off a reply the thread owes for what it just concluded.
* A reaction never crashes the thread either: one that raises is logged.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import attrs
from loguru import logger

from actors.thread.ports import Outbox, ThreadStore
from actors.thread.records import Concluded, Exchange, ThreadKey, ThreadRecord
from actors.thread.settings import ThreadSettings


@attrs.define(eq=False)
class ThreadIO:
    """The thread's store and outbox, with the failure rules above."""

    _key: ThreadKey
    _store: ThreadStore
    _outbox: Outbox
    _settings: ThreadSettings

    async def load(self) -> ThreadRecord | None:
        """The thread's saved record (raises if the store cannot be read)."""
        return await self._store.load(self._key)

    async def save(
        self,
        record: ThreadRecord,
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        """Write ``record`` with the outcomes it concludes (raises if the store fails)."""
        await self._store.save(self._key, record, concluded, exchange)

    async def notice(self, text: str, *, reply_to: int | None = None) -> None:
        """Tell the thread's users ``text``; never raises (see the rules)."""
        timeout = self._settings.notice_timeout
        with anyio.move_on_after(timeout, shield=True) as scope:
            try:
                await self._outbox.notice(self._key, text, reply_to=reply_to)
            except Exception as error:  # noqa: BLE001 - the rule: logged, the thread goes on
                logger.error(
                    "thread {key}: a notice (reply to {to}) was not delivered: {e!r}",
                    key=self._key,
                    to=reply_to,
                    e=error,
                )
        if scope.cancelled_caught:
            logger.error(
                "thread {key}: a notice (reply to {to}) was not taken within {s:.0f}s",
                key=self._key,
                to=reply_to,
                s=timeout,
            )

    def react(self, message_id: int, emoji: str | None) -> None:
        """Set (``emoji``) or clear (``None``) the bot's reaction to ``message_id``; never
        raises (see the rules)."""
        try:
            self._outbox.react(self._key, message_id, emoji)
        except Exception as error:  # noqa: BLE001 - the rule: logged, the thread goes on
            logger.error(
                "thread {key}: reaction {emoji!r} to {id} failed: {e!r}",
                key=self._key,
                emoji=emoji,
                id=message_id,
                e=error,
            )
