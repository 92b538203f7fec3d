"""Telegram's limits, as the senders keep them: when may the next request go?

Telegram allows about 30 messages a second per bot, about one a second per chat, and 20 a
minute per group, edits included. Going over earns a 429 with ``retry_after``, which stops
the chat for that long. The senders keep under the limits instead of finding them:

* ``GlobalPace`` spaces every request of the bot (shared by all chat senders; it is the one
  place a sender sleeps, for at most a few of its 1/30 s slots). A cosmetic request
  ("typing…") takes a slot only if one is free now (``take_nowait``), never waits for one.
  With several replicas each takes its share of the rate (``GlobalPace.share``).
* ``ChatPace`` says when the next request to one chat may go. It never sleeps: the chat's
  sender asks it, and schedules itself for then.
"""

from __future__ import annotations

import math
from collections import deque

import anyio
import attrs

WINDOW = 61.0
"""The span of the per-group limit, in seconds (Telegram's minute, and a second for the way
a request takes: a request counted at the minute's end here may arrive a little earlier)."""


@attrs.define(eq=False)
class GlobalPace:
    """Spaces all of the bot's requests (about 30 per second), or this replica's share.

    Several replicas send for one bot: each takes ``1/n`` of the rate (:meth:`share`, told
    the number of live replicas), so together they keep under Telegram's limit. A change
    applies from the next request; slots already given stand.
    """

    _interval: float = 1 / 30
    _next: float = 0.0
    _replicas: int = attrs.field(default=1, init=False)

    @property
    def rate(self) -> float:
        """Requests per second this process may make now."""
        return 1 / (self._interval * self._replicas)

    def share(self, n: int) -> None:
        """Take ``1/n`` of the bot's rate: ``n`` replicas are live (fewer than 1 counts as 1,
        this one)."""
        self._replicas = max(1, n)

    async def wait(self) -> None:
        """Wait for the next free slot and take it. A wait cancelled before its slot gives
        the slot back if nobody took one after it (else the slots later callers were given
        stand, and it is lost: the rate stays under the limit either way)."""
        now = anyio.current_time()
        slot = max(now, self._next)
        self._next = end = slot + self._interval * self._replicas
        if slot > now:
            try:
                await anyio.sleep(slot - now)
            except BaseException:
                if self._next == end:
                    self._next = slot
                raise

    def take_nowait(self) -> bool:
        """Take a slot if one is free now, for a request that is not worth waiting for
        ("typing…"); ``False``, and nothing taken, while requests are spaced into the future.
        Such requests never hold up the others: thousands of runs waiting for their model
        would otherwise book the bot's slots minutes ahead."""
        now = anyio.current_time()
        if self._next > now:
            return False
        self._next = now + self._interval * self._replicas
        return True


@attrs.define(eq=False)
class ChatPace:
    """The requests to one chat: at most one every ``interval``, and in a group at most
    ``per_minute`` in any minute (sends and edits alike), and none while a 429 holds.

    ``ready_at(now, reserve=n)`` keeps ``n`` requests of the minute's budget back: a sender
    asks so for a partial edit, keeping one request for each open answer's final text, so a
    busy group's budget goes to the texts that complete answers.

    A private chat keeps only its last request's time; a group, the times of its requests
    within the minute (``WINDOW``), in a deque made by the first and let go of once they
    all expired (an idle chat's sender keeps none: thousands of them live).
    """

    _interval: float
    _per_minute: int | None
    """``None`` for a private chat (no per-minute limit)."""
    _last: float = attrs.field(default=-math.inf, init=False)
    """When the last request went out."""
    _recent: deque[float] | None = attrs.field(default=None, init=False)
    """A group's requests within the minute, oldest first (``None`` when there are none)."""
    _blocked_until: float = attrs.field(default=-math.inf, init=False)

    def ready_at(self, now: float, *, reserve: int = 0) -> float:
        """The earliest time the next request may go (``inf``: not while ``reserve`` holds)."""
        return max(now, self.opens_at(now, reserve=reserve))

    def opens_at(self, now: float, *, reserve: int = 0) -> float:
        """When the next request may go or could have gone (``inf``: not while ``reserve``
        holds); before ``now`` when the chat has been free since."""
        self._expire(now)
        at = self._blocked_until
        if self._last > now - WINDOW:
            at = max(at, self._last + self._interval)
        if self._per_minute is not None:
            recent = self._recent or ()
            over = len(recent) + reserve - self._per_minute
            if over >= 0:
                if over >= len(recent):
                    return math.inf
                at = max(at, recent[over] + WINDOW)
        return at

    def spend(self, now: float) -> None:
        """A request went out at ``now``."""
        self._last = now
        if self._per_minute is not None:
            if self._recent is None:
                self._recent = deque()
            self._recent.append(now)

    def block(self, until: float) -> None:
        """Telegram said to wait (429) until ``until``."""
        self._blocked_until = max(self._blocked_until, until)

    @property
    def blocked_until(self) -> float:
        return self._blocked_until

    def _expire(self, now: float) -> None:
        recent = self._recent
        if recent is None:
            return
        while recent and recent[0] <= now - WINDOW:
            recent.popleft()
        if not recent:
            self._recent = None
