"""The credential pool: several API keys per provider, each with its own state.

Rules:

* 401/403: the key is disabled until config reload; the reason is kept.
* 402 / quota: exhausted for ``quota_cooldown`` (default 1 h), or the provider's own reset.
* 429: cooling for ``Retry-After``, else exponential backoff per key.
* 5xx and timeouts: not the key's fault; the caller retries on another key.
* No usable key: :class:`PoolExhaustedError` with the earliest time one comes back; when one
  does, ``run()`` calls ``on_available`` (the gateway wakes parked threads).
* A disabled or cooling key is never handed out, and a key is never printed.
* Key states are persisted by ``run()``, the pool's own task, after every change (a 429
  changes one): never on the path of a request, and a failure to save is logged and
  retried, never raised into a run.
* Shared by replicas (one store): a save first adopts what the store holds (the latest
  change of each key wins, ``providers.pool_keys``), then ``on_saved`` is awaited (the
  gateway notifies the others). A replica told so calls ``refresh_soon()``: ``run()`` adopts
  the store's later changes (so a 402 seen by one replica rests the key for all) and saves
  again if it holds a later change itself (two saves that crossed).
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from loguru import logger

from providers.exceptions import (
    KeyRejectedError,
    PoolExhaustedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
)
from providers.pool_keys import (
    KeyEntry,
    KeyState,
    KeyStatus,
    PoolStateStore,
    PoolStatus,
    SavedKeyState,
)
from providers.secrets import ApiKey

__all__ = [
    "SAVE_RETRY",
    "CredentialPool",
    "KeyState",
    "KeyStatus",
    "PoolStateStore",
    "PoolStatus",
    "SavedKeyState",
    "Strategy",
]


class Strategy(enum.Enum):
    """How the next key is chosen among the usable ones."""

    FILL_FIRST = "fill_first"
    ROUND_ROBIN = "round_robin"
    LEAST_USED = "least_used"
    RANDOM = "random"


SAVE_RETRY = 10.0
"""Seconds before a failed save of the key states is tried again."""


def _entries(keys: Sequence[ApiKey]) -> list[KeyEntry]:
    return [KeyEntry(key) for key in keys]


@attrs.define(eq=False)
class CredentialPool:
    """Hands out usable keys and learns from how requests with them ended."""

    _name: str
    _keys: list[KeyEntry] = attrs.field(converter=_entries)
    _strategy: Strategy = Strategy.FILL_FIRST
    _quota_cooldown: float = 3600.0
    _rate_limit_backoff: float = 1.0
    _rate_limit_backoff_max: float = 300.0
    _store: PoolStateStore | None = None
    _rng: random.Random = attrs.field(factory=random.Random)
    _on_saved: Callable[[str], Awaitable[None]] | None = None
    """Awaited (by ``run()``) with the pool's name after each save: the gateway tells the
    other replicas (``gateway.cluster.bus``, channel ``pool``), which ``refresh()``."""
    _refresh_due: bool = attrs.field(default=False, init=False)
    _cursor: int = attrs.field(default=0, init=False)
    _starved: bool = attrs.field(default=False, init=False)
    _changed: anyio.Event | None = attrs.field(default=None, init=False)
    _unsaved: bool = attrs.field(default=False, init=False)
    _save_at: float = attrs.field(default=-math.inf, init=False)

    @property
    def name(self) -> str:
        return self._name

    async def restore(self) -> None:
        """Load persisted key states (call once at start, before handing out keys); if the
        store cannot be read, start afresh with a log line."""
        if self._store is None:
            return
        try:
            states = await self._store.load_pool(self._name)
        except Exception as error:  # noqa: BLE001 - the store's own error; any is survivable
            logger.warning(
                "pool {pool}: saved key states not loaded, starting afresh: {e}",
                pool=self._name,
                e=error,
            )
            return
        now, wall = anyio.current_time(), time.time()
        saved = {s.label: s for s in states}
        for key in self._keys:
            if key.key.label in saved:
                key.restore(saved[key.key.label], now, wall)

    def acquire(self) -> ApiKey:
        """Return a usable key, chosen by the strategy.

        Raises:
            PoolExhaustedError: none is usable; ``retry_after`` is when the first cools down,
                ``None`` if every key is disabled.
        """
        now = anyio.current_time()
        usable = [i for i, k in enumerate(self._keys) if k.usable(now)]
        if not usable:
            self._starved = True
            cooling = [k.until - now for k in self._keys if k.state(now) is KeyState.COOLING]
            retry_after = min(cooling) if cooling else None
            raise PoolExhaustedError(
                f"credential pool {self._name}: no available entries "
                f"({len(self._keys)} keys, all exhausted, cooling or disabled)",
                retry_after,
            )
        index = self._choose(usable)
        chosen = self._keys[index]
        chosen.used()
        return chosen.key

    def _choose(self, usable: list[int]) -> int:
        if self._strategy is Strategy.ROUND_ROBIN:
            after = [i for i in usable if i >= self._cursor] or usable
            self._cursor = after[0] + 1
            return after[0]
        if self._strategy is Strategy.LEAST_USED:
            return min(usable, key=lambda i: (self._keys[i].requests, i))
        if self._strategy is Strategy.RANDOM:
            return self._rng.choice(usable)
        return usable[0]

    def report_success(self, key: ApiKey) -> None:
        """A request with ``key`` succeeded."""
        self._find(key).succeeded()

    def report_failure(self, key: ApiKey, error: ProviderError) -> None:
        """A request with ``key`` failed with ``error``; blame the key when it is its fault."""
        entry = self._find(key)
        now = anyio.current_time()
        if isinstance(error, KeyRejectedError):
            entry.disable(str(error))
            logger.error("pool {pool}: key {key} disabled: {e}", pool=self._name, key=key, e=error)
        elif isinstance(error, QuotaExhaustedError):
            cooldown = error.retry_after if error.retry_after is not None else self._quota_cooldown
            entry.cool(now + cooldown, str(error))
            logger.warning(
                "pool {pool}: key {key} exhausted for {s:.0f}s: {e}",
                pool=self._name,
                key=key,
                s=cooldown,
                e=error,
            )
        elif isinstance(error, RateLimitedError):
            delay = error.retry_after
            if delay is None:
                delay = entry.next_backoff(self._rate_limit_backoff, self._rate_limit_backoff_max)
            entry.cool(now + delay, str(error))
            logger.info(
                "pool {pool}: key {key} rate limited for {s:.1f}s",
                pool=self._name,
                key=key,
                s=delay,
            )
        else:
            return  # 5xx, timeouts, bad requests: not the key's fault
        entry.changed(time.time())
        self._persist()
        self._wake()

    def reload(self, keys: Sequence[ApiKey]) -> None:
        """Replace the keys (config reload): disabled keys get another chance."""
        old = {k.key.label: k for k in self._keys}
        self._keys = []
        for key in keys:
            entry = KeyEntry(key)
            if key.label in old and old[key.label].key == key:
                previous = old[key.label]
                state = previous.state(anyio.current_time())
                if state is KeyState.COOLING:
                    entry.cool(previous.until, "cooling")
                # Enabled again: a change the other replicas adopt; else the same as before.
                entry.changed(time.time() if state is KeyState.DISABLED else previous.changed_at)
            self._keys.append(entry)
        self._persist()
        self._wake()

    def status(self) -> PoolStatus:
        now = anyio.current_time()
        return PoolStatus(self._name, tuple(k.status(now) for k in self._keys))

    async def run(self, on_available: Callable[[], None]) -> None:
        """Forever: save the key states when they changed, and call ``on_available`` when a
        key is usable again after the pool starved."""
        try:
            while True:
                now = anyio.current_time()
                if self._refresh_due:
                    self._refresh_due = False
                    await self.refresh()
                    continue
                if self._unsaved and now >= self._save_at:
                    await self._save()
                    continue  # they may have changed again meanwhile
                starved_now = not any(k.usable(now) for k in self._keys)
                if self._starved and not starved_now:
                    self._starved = False
                    logger.info("pool {pool}: a key is usable again", pool=self._name)
                    on_available()
                wake_at = min(
                    (k.until for k in self._keys if k.state(now) is KeyState.COOLING),
                    default=math.inf,
                )
                if self._unsaved:
                    wake_at = min(wake_at, self._save_at)
                self._changed = changed = anyio.Event()
                # An absolute deadline: a relative one can round to just before `until` and spin.
                with anyio.CancelScope(deadline=wake_at):
                    await changed.wait()
        finally:
            if self._unsaved:  # the last change before shutdown
                with anyio.CancelScope(shield=True), anyio.move_on_after(SAVE_RETRY):
                    await self._save()

    def share(self, on_saved: Callable[[str], Awaitable[None]]) -> None:
        """Other replicas use this pool's store: await ``on_saved(name)`` after each save."""
        self._on_saved = on_saved

    def refresh_soon(self) -> None:
        """Have ``run()`` :meth:`refresh` (never waits: for the bus's handler)."""
        self._refresh_due = True
        self._wake()

    async def refresh(self) -> None:
        """Adopt the key states another replica saved since (the latest change of each key
        wins); save again if this pool holds a later change than the store (two saves that
        crossed). A store that cannot be read is logged; the next notice tries again."""
        if self._store is None:
            return
        try:
            states = await self._store.load_pool(self._name)
        except Exception as error:  # noqa: BLE001 - the store's own error; any is survivable
            logger.warning("pool {pool}: key states not refreshed: {e}", pool=self._name, e=error)
            return
        if self._merge(states):
            self._persist()
        self._wake()

    def _merge(self, states: Sequence[SavedKeyState]) -> bool:
        """Adopt the later changes in ``states``; whether this pool has later ones."""
        now, wall = anyio.current_time(), time.time()
        saved = {s.label: s for s in states}
        adopted = [
            k for k in self._keys if k.key.label in saved and k.adopt(saved[k.key.label], now, wall)
        ]
        for key in adopted:
            status = key.status(now)
            logger.info(
                "pool {pool}: key {key} is {state} (saved by another replica{why})",
                pool=self._name,
                key=key.key,
                state=status.state.value,
                why=f": {status.reason}" if status.reason else "",
            )
        return any(k.ahead_of(saved.get(k.key.label)) for k in self._keys)

    async def _save(self) -> None:
        assert self._store is not None
        self._unsaved = False
        try:
            self._merge(await self._store.load_pool(self._name))  # another replica's, kept
            now, wall = anyio.current_time(), time.time()
            await self._store.save_pool(self._name, [k.saved(now, wall) for k in self._keys])
        except BaseException as error:
            self._unsaved = True
            if not isinstance(error, Exception):
                raise  # cancelled: saved again on the way out (``run``'s last save)
            self._save_at = anyio.current_time() + SAVE_RETRY
            logger.warning(
                "pool {pool}: key states not saved (tried again in {s:.0f}s): {e}",
                pool=self._name,
                s=SAVE_RETRY,
                e=error,
            )
            return
        if self._on_saved is not None:
            try:
                await self._on_saved(self._name)
            except Exception as error:  # noqa: BLE001 - the others learn at their next save
                logger.warning("pool {pool}: others not told: {e}", pool=self._name, e=error)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _find(self, key: ApiKey) -> KeyEntry:
        for entry in self._keys:
            if entry.key.label == key.label:
                return entry
        raise KeyError(key.label)  # a key this pool never handed out: a bug, not user input

    def _persist(self) -> None:
        """Have ``run()`` save the key states (the callers then ``_wake()`` it)."""
        if self._store is not None:
            self._unsaved = True
