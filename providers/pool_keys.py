"""One pool's keys: their states, and the records that show and save them (no secret).

Rules of sharing (several replicas on one store; ``providers.pool`` has the rest):

* Every change of a key's state (disabled, cooling, enabled again by a reload) is stamped
  with the wall-clock time it was made (``changed_at``). Between replicas the latest change
  of each key wins; a cooldown that merely ends is no change.
* The counters (requests, failures) are each replica's own; the store keeps the last saved.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

from providers.secrets import ApiKey


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
    changed_at: float = 0.0
    """Wall-clock time of its last change of state (0: never changed); the latest wins
    between replicas."""


class PoolStateStore(Protocol):
    """Where the pool's key states survive restarts (the gateway's SQLite store). Either
    call may raise when the store is unavailable: the pool logs it and goes on."""

    async def load_pool(self, name: str) -> Sequence[SavedKeyState]:
        """Return the saved states (unknown labels are ignored)."""

    async def save_pool(self, name: str, states: Sequence[SavedKeyState]) -> None:
        """Replace the saved states."""


@attrs.define
class KeyEntry:
    _key: ApiKey
    _disabled: bool = False
    _until: float = 0.0
    _reason: str = ""
    _requests: int = 0
    _failures: int = 0
    _backoff: int = 0
    _changed_at: float = 0.0

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

    @property
    def changed_at(self) -> float:
        return self._changed_at

    def changed(self, wall: float) -> None:
        """Its state was just changed here, at wall-clock time ``wall``."""
        self._changed_at = wall

    def saved(self, now: float, wall: float) -> SavedKeyState:
        until = wall + (self._until - now) if self._until > now else None
        return SavedKeyState(
            self._key.label,
            self._disabled,
            until,
            self._reason,
            self._requests,
            self._failures,
            self._changed_at,
        )

    def restore(self, saved: SavedKeyState, now: float, wall: float) -> None:
        self._requests, self._failures = saved.requests, saved.failures
        self._take(saved, now, wall)

    def adopt(self, saved: SavedKeyState, now: float, wall: float) -> bool:
        """Take the state another replica saved if it is a later change; whether it was."""
        if saved.changed_at <= self._changed_at:
            return False
        self._take(saved, now, wall)
        return True

    def ahead_of(self, saved: SavedKeyState | None) -> bool:
        """Whether this key changed after what the store holds of it."""
        return self._changed_at > (saved.changed_at if saved is not None else 0.0)

    def _take(self, saved: SavedKeyState, now: float, wall: float) -> None:
        self._disabled, self._reason = saved.disabled, saved.reason
        self._changed_at = saved.changed_at
        self._until = 0.0
        if saved.until is not None and saved.until > wall:
            self._until = now + (saved.until - wall)
