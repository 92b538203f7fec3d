"""Albums: the photos (or files) a user sends together become one message, one turn.

Telegram sends an album as one update per item, with the same ``media_group_id``, one after
the other within about a second. Rules:

* Every item's update is written to the durable inbox as it arrives (``Intake``), like any
  other; the album is held here, in memory only, until ``window`` seconds passed after its
  last item, then delivered as one ``UserMessage`` (:func:`merge`): the first item's id, every
  file in order, the captions joined.
* Before it is delivered, the store is told (``Store.join_album``, one transaction): the first
  item's inbox entry becomes the whole album, and the others are marked part of it. They
  are concluded with it (the store's trigger gives them the album's outcome) and are not
  replayed on their own.
* A crash before that leaves every item unanswered in the inbox: the start-up replay joins
  them again (``Delivery.replay``). A crash after it replays the joined album.
* Order is kept per thread: a message of a thread whose album is still held delivers the
  album first. At most ``max_albums`` albums are held: past that, the oldest goes at once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from loguru import logger

from actors.thread.messages import UserMessage
from actors.thread.records import ThreadKey
from gateway.exceptions import StoreUnavailableError
from gateway.store.sqlite import Store
from gateway.telegram.routing import Routed, to_payload


def merge(messages: Sequence[UserMessage]) -> UserMessage:
    """An album's items as one message: the first's id and sender, every file in the order
    sent, the captions (usually only the first item has one) joined by blank lines."""
    ordered = sorted(messages, key=lambda m: m.message_id)
    first = ordered[0]
    captions = [m.text for m in ordered if m.text.strip()]
    media = tuple(ref for m in ordered for ref in m.media)
    addressed = any(m.addressed for m in ordered)  # the mention is in one caption
    return UserMessage(
        first.message_id, "\n\n".join(captions), first.user_id, media=media, addressed=addressed
    )


async def join(store: Store, key: ThreadKey, members: Sequence[UserMessage]) -> UserMessage:
    """Merge an album and record it as one inbox entry; the merged message. A store that
    cannot be written is a log line: the album goes on (its other items stay unanswered in
    the inbox, and the next start replays them)."""
    album = merge(members)
    others = [m.message_id for m in members if m.message_id != album.message_id]
    try:
        await store.join_album(key, album.message_id, to_payload(album), others)
    except StoreUnavailableError as error:
        logger.error(
            "album {id} in {key} not recorded as one message ({e}); answered all the same",
            id=album.message_id,
            key=key,
            e=error,
        )
    logger.info(
        "album {id} in {key}: {n} item(s), {f} file(s)",
        id=album.message_id,
        key=key,
        n=len(members),
        f=len(album.media),
    )
    return album


@attrs.define
class _Held:
    first: Routed
    items: list[UserMessage]
    last: float


@attrs.define(eq=False)
class Albums:
    """Between the updates (poller, resequencer) and ``Delivery``: holds albums until whole."""

    _deliver: Callable[[Routed], Awaitable[None]]
    _store: Store
    _window: float = 1.0
    _max_albums: int = attrs.field(default=1000, kw_only=True)
    _held: dict[tuple[ThreadKey, str], _Held] = attrs.field(factory=dict, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    name = "albums"

    @property
    def held(self) -> int:
        """Albums waiting for more items."""
        return len(self._held)

    async def take(self, routed: Routed) -> None:
        """Deliver ``routed``, or hold it if it is an album's item (never raises)."""
        async with self._lock:
            message = routed.message
            if routed.album and isinstance(message, UserMessage) and not routed.refusal:
                slot = (routed.key, routed.album)
                held = self._held.get(slot)
                if held is None:
                    if len(self._held) >= self._max_albums:
                        oldest = min(self._held, key=lambda s: self._held[s].last)
                        await self._flush(self._held.pop(oldest))
                    self._held[slot] = _Held(routed, [message], anyio.current_time())
                else:
                    held.items.append(message)
                    held.last = anyio.current_time()
                self._changed.set()
                return
            for slot in [s for s in self._held if s[0] == routed.key]:
                await self._flush(self._held.pop(slot))
            await self._deliver(routed)

    async def run(self) -> None:
        """Deliver each album once ``window`` passed after its last item (a service)."""
        while True:
            async with self._lock:
                now = anyio.current_time()
                for slot in [s for s, h in self._held.items() if now - h.last >= self._window]:
                    await self._flush(self._held.pop(slot))
                self._changed = anyio.Event()
                deadline = min(
                    (h.last + self._window for h in self._held.values()), default=math.inf
                )
            with anyio.move_on_after(deadline - anyio.current_time()):
                await self._changed.wait()

    async def _flush(self, held: _Held) -> None:
        album = await join(self._store, held.first.key, held.items)
        await self._deliver(attrs.evolve(held.first, message=album, album=""))
