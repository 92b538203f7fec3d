"""A scriptable actor for runtime tests: each message says how its handling behaves."""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from actors import Actor, ActorContext, Timer


class Kind(enum.Enum):
    OK = "ok"
    CRASH = "crash"  # crashes on every attempt: retried once, then dead-lettered
    CRASH_ONCE = "crash-once"  # crashes on the first attempt only
    HANG = "hang"  # hangs on every attempt: stalled twice, then dead-lettered
    SLOW = "slow"  # takes a while, heartbeating: never taken for a hang
    BACKGROUND = "background"  # starts a background task that reports back later
    TIMER = "timer"  # sets a timer that sends ``Done`` to the actor itself later


@attrs.frozen
class Work:
    """One test message."""

    id: int
    """Unique per test run."""
    kind: Kind = Kind.OK
    """How handling behaves."""
    duration: float = 0.0
    """For SLOW, BACKGROUND and TIMER: how long, in seconds."""


@attrs.frozen
class Done:
    """A background task reporting back."""

    id: int
    """The work it belonged to."""


@attrs.define
class Journal:
    """What the scripted actors did; shared by every incarnation in one test."""

    attempts: dict[int, int] = attrs.Factory(dict)
    handled: list[tuple[Hashable, int]] = attrs.Factory(list)
    incarnations: dict[Hashable, int] = attrs.Factory(dict)
    stopped: list[Hashable] = attrs.Factory(list)
    hang_started: dict[int, float] = attrs.Factory(dict)
    timers: dict[int, Timer] = attrs.Factory(dict)
    done_at: dict[int, float] = attrs.Factory(dict)
    concluded_when_failed: list[int] = attrs.Factory(list)
    """Work a failed actor's last word took care of (``on_failed``)."""
    last_word_takes_even: bool = False
    """Make ``on_failed`` take care of the work with an even id (default: of none)."""
    last_word_fails: bool = False
    """Make ``on_failed`` raise (then everything it was given is dead-lettered)."""
    last_word_takes: float = 0.0
    """Seconds ``on_failed`` takes."""
    last_word_ended_at: float | None = None
    """When ``on_failed`` returned."""
    started_at: list[float] = attrs.Factory(list)
    """When each incarnation was built."""


class Scripted(Actor[Work | Done]):
    def __init__(self, key: Hashable, journal: Journal) -> None:
        self._key = key
        self._journal = journal
        journal.incarnations[key] = journal.incarnations.get(key, 0) + 1
        journal.started_at.append(anyio.current_time())

    async def receive(self, message: Work | Done, ctx: ActorContext[Any]) -> object:
        journal = self._journal
        if isinstance(message, Done):
            journal.handled.append((self._key, message.id))
            journal.done_at[message.id] = anyio.current_time()
            return None
        attempt = journal.attempts[message.id] = journal.attempts.get(message.id, 0) + 1
        if message.kind is Kind.CRASH or (message.kind is Kind.CRASH_ONCE and attempt == 1):
            raise RuntimeError(f"scripted crash {message.id}")
        if message.kind is Kind.HANG:
            journal.hang_started[message.id] = anyio.current_time()
            await anyio.sleep_forever()
        if message.kind is Kind.SLOW:
            end = anyio.current_time() + message.duration
            while anyio.current_time() < end:
                await anyio.sleep(0.01)
                ctx.heartbeat()
        if message.kind is Kind.BACKGROUND:
            ctx.start_soon(self._later, message, ctx)
            return message.id
        if message.kind is Kind.TIMER:
            journal.timers[message.id] = ctx.tell_later(message.duration, Done(message.id))
            return message.id
        journal.handled.append((self._key, message.id))
        return message.id

    async def _later(self, message: Work, ctx: ActorContext[Any]) -> None:
        try:
            await anyio.sleep(message.duration)
        finally:
            # Report back even when cancelled by a restart: the mailbox outlives us.
            ctx.tell_self(Done(message.id))

    async def on_failed(self, undelivered: Sequence[Work | Done]) -> Sequence[Work | Done]:
        """Takes care of the work with an even id, if told to; hands the rest back."""
        journal = self._journal
        if journal.last_word_fails:
            raise RuntimeError("scripted: the last word failed")
        await anyio.sleep(journal.last_word_takes)
        journal.last_word_ended_at = anyio.current_time()
        even = journal.last_word_takes_even
        taken = [m for m in undelivered if isinstance(m, Work) and even and m.id % 2 == 0]
        self._journal.concluded_when_failed += [m.id for m in taken]
        return [m for m in undelivered if m not in taken]

    async def on_stop(self) -> None:
        self._journal.stopped.append(self._key)
