"""A thread's last word when the supervisor marks it failed (it restarted too often).

Rules:

* Every input the thread's record held (in flight, queued, parked) and every user message
  or command still queued for it that it had not accepted before is concluded
  ``ERROR_REPLIED``, in one write, and the users get one notice with the count. Except: if
  the queued messages hold the report that the in-flight run finished (the crashed
  incarnation left it), that run's inputs were answered, and are concluded ``ANSWERED``.
* The store may be what failed the thread: the write is retried with backoff for
  ``ThreadSettings.failure_write_for`` seconds. If it never succeeds, that is logged, and the
  queued messages are handed back as dead letters (the gateway answers each); the record's
  inputs stay for the next start.
* The 👀 of every input the record held marked ``reacted`` is cleared after the write.
* Other queued messages (reports, ticks, broadcasts) mean nothing any more: they are handed
  back, and dead-lettered with a log line.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import anyio
import attrs
from loguru import logger

from actors.thread import texts
from actors.thread.io import ThreadIO
from actors.thread.messages import Command, RunFinished, UserMessage
from actors.thread.records import RECENT_IDS, Concluded, Outcome, ThreadRecord
from actors.thread.settings import ThreadSettings

DETAIL = "the thread failed (restarted too often)"


async def conclude_failed(
    io: ThreadIO, settings: ThreadSettings, undelivered: Sequence[object]
) -> list[object]:
    """Conclude what the failed thread held; return the messages handed back (see the rules)."""
    mail = [m for m in undelivered if isinstance(m, UserMessage | Command)]
    others = [m for m in undelivered if not isinstance(m, UserMessage | Command)]
    deadline = anyio.current_time() + settings.failure_write_for
    reacted: dict[int, None] = {}
    for attempt in itertools.count():
        try:
            record = await io.load() or ThreadRecord(session_id=texts.new_session_id())
            # Across attempts: a write that raised may have landed, and the next load no
            # longer shows what it concluded.
            held = (*record.in_flight, *record.queued)
            reacted.update(dict.fromkeys(p.message_id for p in held if p.reacted))
            finished = any(
                isinstance(m, RunFinished) and m.run_id == record.run_seq for m in others
            )
            answered = [p.message_id for p in record.in_flight] if finished else []
            ids = [i for i in _unanswered(record, mail) if i not in answered]
            cleared = attrs.evolve(
                record,
                in_flight=(),
                queued=(),
                parked=False,
                recent=(*record.recent, *answered, *ids)[-RECENT_IDS:],
            )
            await io.save(
                cleared,
                [Concluded(i, Outcome.ANSWERED, "") for i in answered]
                + [Concluded(i, Outcome.ERROR_REPLIED, DETAIL) for i in ids],
            )
            break
        except Exception as error:  # noqa: BLE001 - retried, then handed back (the rules)
            if anyio.current_time() >= deadline:
                logger.error(
                    "a failed thread could not record the end of what it held: {e!r}", e=error
                )
                return list(undelivered)
            logger.warning("a failed thread's conclusion not written ({e!r}); retrying", e=error)
            await anyio.sleep(min(2.0, 0.1 * 2**attempt))
    for message_id in reacted:  # after the write (actors.thread.reactions)
        io.react(message_id, None)
    logger.error("failed thread: {n} message(s) concluded as not answered", n=len(ids))
    if ids:
        await io.notice(texts.thread_failed(len(ids)), reply_to=ids[-1])
    return others


def _unanswered(record: ThreadRecord, mail: Sequence[UserMessage | Command]) -> list[int]:
    """The record's inputs, then the queued messages never accepted before, each once."""
    held = [p.message_id for p in (*record.in_flight, *record.queued)]
    known = {*record.recent, *held}
    fresh = [m.message_id for m in mail if m.message_id not in known]
    return list(dict.fromkeys([*held, *fresh]))
