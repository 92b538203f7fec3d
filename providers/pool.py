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
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

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
from providers.secrets import ApiKey


class Strategy(enum.Enum):
    """How the next key is chosen among the usable ones."""

    FILL_FIRST = "fill_first"
    ROUND_ROBIN = "round_robin"
    LEAST_USED = "least_used"
    RANDOM = "random"


class KeyState(enum.Enum):
    """What a key can do now."""

    USABLE = "usable"
    COOLING = "cooling"
    DISABLED = "disabled"


@attrs.frozen
class KeyStatus:
    """One key at one moment (no secret in it)."""

    label: str
    """The key's label."""
    state: KeyState
    """Usable, cooling or disabled."""
    cooldown_left: float
    """Seconds until a cooling key is usable again (0 otherwise)."""
    reason: str
    """Why it is cooling or disabled."""
    requests: int
    """Requests made with it."""
    failures: int
    """Requests that failed because of it."""


@attrs.frozen
class PoolStatus:
    """The pool at one moment."""

    name: str
    """The pool (usually the provider's name)."""
    keys: tuple[KeyStatus, ...]
    """Every key, in configured order."""

    @property
    def usable(self) -> int:
        return sum(k.state is KeyState.USABLE for k in self.keys)


@attrs.frozen
class SavedKeyState:
    """What is persisted for one key (times in wall-clock seconds)."""

    label: str
    """The key's label."""
    disabled: bool
    """Disabled until config reload."""
    until: float | None
    """Wall-clock time its cooldown ends."""
    reason: str
    """Why."""
    requests: int
    """Requests made with it."""
    failures: int
    """Failures blamed on it."""


class PoolStateStore(Protocol):
    """Where the pool's key states survive restarts (the gateway's SQLite store). Either
    call may raise when the store is unavailable: the pool logs it and goes on."""

    async def load_pool(self, name: str) -> Sequence[SavedKeyState]:
        """Return the saved states (unknown labels are ignored)."""

    async def save_pool(self, name: str, states: Sequence[SavedKeyState]) -> None:
        """Replace the saved states."""


SAVE_RETRY = 10.0
"""Seconds before a failed save of the key states is tried again."""


@attrs.define
class _Key:
    _key: ApiKey
    _disabled: bool = False
    _until: float = 0.0
    _reason: str = ""
    _requests: int = 0
    _failures: int = 0
    _backoff: int = 0

    @property
    def key(self) -> ApiKey:
        return self._key

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def until(self) -> float:
        return self._until

    def usable(self, now: float) -> bool:
        return not self._disabled and self._until <= now

    def state(self, now: float) -> KeyState:
        if self._disabled:
            return KeyState.DISABLED
        return KeyState.COOLING if self._until > now else KeyState.USABLE

    def used(self) -> None:
        self._requests += 1

    def succeeded(self) -> None:
        self._backoff = 0
        if self._until == 0.0:
            self._reason = ""

    def disable(self, reason: str) -> None:
        self._disabled, self._reason = True, reason
        self._failures += 1

    def cool(self, until: float, reason: str) -> None:
        self._until, self._reason = until, reason
        self._failures += 1

    def next_backoff(self, base: float, cap: float) -> float:
        self._backoff += 1
        return min(cap, base * 2.0 ** (self._backoff - 1))

    def status(self, now: float) -> KeyStatus:
        state = self.state(now)
        return KeyStatus(
            label=self._key.label,
            state=state,
            cooldown_left=max(0.0, self._until - now) if state is KeyState.COOLING else 0.0,
            reason="" if state is KeyState.USABLE else self._reason,
            requests=self._requests,
            failures=self._failures,
        )

    def saved(self, now: float, wall: float) -> SavedKeyState:
        until = wall + (self._until - now) if self._until > now else None
        return SavedKeyState(
            self._key.label, self._disabled, until, self._reason, self._requests, self._failures
        )

    def restore(self, saved: SavedKeyState, now: float, wall: float) -> None:
        self._disabled = saved.disabled
        self._reason = saved.reason
        self._requests, self._failures = saved.requests, saved.failures
        if saved.until is not None and saved.until > wall:
            self._until = now + (saved.until - wall)


def _entries(keys: Sequence[ApiKey]) -> list[_Key]:
    return [_Key(key) for key in keys]


@attrs.define(eq=False)
class CredentialPool:
    """Hands out usable keys and learns from how requests with them ended."""

    _name: str
    _keys: list[_Key] = attrs.field(converter=_entries)
    _strategy: Strategy = Strategy.FILL_FIRST
    _quota_cooldown: float = 3600.0
    _rate_limit_backoff: float = 1.0
    _rate_limit_backoff_max: float = 300.0
    _store: PoolStateStore | None = None
    _rng: random.Random = attrs.field(factory=random.Random)
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
        self._persist()
        self._wake()

    def reload(self, keys: Sequence[ApiKey]) -> None:
        """Replace the keys (config reload): disabled keys get another chance."""
        old = {k.key.label: k for k in self._keys}
        self._keys = []
        for key in keys:
            entry = _Key(key)
            if key.label in old and old[key.label].key == key:
                previous = old[key.label]
                if previous.state(anyio.current_time()) is KeyState.COOLING:
                    entry.cool(previous.until, "cooling")
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

    async def _save(self) -> None:
        assert self._store is not None
        self._unsaved = False
        now, wall = anyio.current_time(), time.time()
        try:
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

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _find(self, key: ApiKey) -> _Key:
        for entry in self._keys:
            if entry.key.label == key.label:
                return entry
        raise KeyError(key.label)  # a key this pool never handed out: a bug, not user input

    def _persist(self) -> None:
        """Have ``run()`` save the key states (the callers then ``_wake()`` it)."""
        if self._store is not None:
            self._unsaved = True
