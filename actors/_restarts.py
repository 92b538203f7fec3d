"""What a crash does to one child: its message is retried once, then it backs off or fails.

Rules (also in ``docs/architecture.md``):

* The message being handled is put back at the head of the mailbox and retried once by the
  next incarnation; if it was already its retry, it is a ``CRASHED`` dead letter.
* The n-th restart within ``within`` seconds waits ``RestartPolicy.delay(n)``; more than
  ``max_restarts`` of them mark the child failed for ``failed_cooldown``.
* A failed child has a last word: its mailbox is closed, a fresh actor's ``on_failed`` is
  given the messages still queued for it (tells; asks are answered ``ActorCrashedError``),
  and whatever it does not take care of becomes a ``FAILED`` dead letter (``SHUTDOWN`` if
  shutdown cancels the last word).
* A child stays failed until its cooldown is over *and* its last word is done: a successor
  never runs beside the last word of its predecessor.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Any

import anyio
import attrs
from loguru import logger

from actors._cell import Cell
from actors.actor import Actor
from actors.deadletter import DeadLetterOffice, DeadLetterReason
from actors.envelope import Envelope
from actors.policy import RestartPolicy


def after_crash(
    cell: Cell,
    cause: BaseException,
    policy: RestartPolicy,
    rng: random.Random,
    dead_letters: DeadLetterOffice,
) -> float | None:
    """Retry or dead-letter the message in hand; return the backoff, or ``None`` if failed."""
    now = anyio.current_time()
    envelope = cell.take_handling()
    logger.warning(
        "actor {key!r} crashed{while_}: {cause!r}",
        key=cell.key,
        while_=f" handling {type(envelope.message).__name__}" if envelope else "",
        cause=cause,
    )
    if envelope is not None:
        if envelope.attempts == 0:
            cell.mailbox.push_front(attrs.evolve(envelope, attempts=1))
        else:
            detail = f"crashed the actor twice: {type(cause).__name__}"
            dead_letters.post(cell.key, envelope, DeadLetterReason.CRASHED, detail)
    in_window = cell.record_restart(now, policy.within)
    if in_window <= policy.max_restarts:
        return policy.delay(in_window, rng)
    cell.fail(now + policy.failed_cooldown)
    logger.error(
        "actor {key!r} restarted {n} times within {w}s: marked failed for {c}s",
        key=cell.key,
        n=in_window,
        w=policy.within,
        c=policy.failed_cooldown,
    )
    return None


async def last_word(
    cell: Cell, factory: Callable[[Any], Actor[Any]], dead_letters: DeadLetterOffice
) -> None:
    """The child was marked failed: let a fresh actor conclude what it held (see the rules)."""
    key: Hashable = cell.key
    tells: list[Envelope] = []
    for envelope in cell.mailbox.close():
        if envelope.reply is not None:
            dead_letters.post(key, envelope, DeadLetterReason.FAILED, "actor failed")
        else:
            tells.append(envelope)
    left, reason = tells, DeadLetterReason.FAILED
    try:
        kept = await factory(key).on_failed([envelope.message for envelope in tells])
        left = [envelope for envelope in tells if any(m is envelope.message for m in kept)]
    except anyio.get_cancelled_exc_class():
        reason = DeadLetterReason.SHUTDOWN
        raise
    except Exception as error:  # noqa: BLE001 - its messages are dead-lettered instead
        logger.opt(exception=error).error("actor {key!r}: on_failed failed", key=key)
    finally:
        for envelope in [] if cell.evicted() else left:  # evicted: the new owner answers them
            dead_letters.post(key, envelope, reason, "actor failed")
