"""The store's connections: one writer, whose statements are batched into worker-thread
hops, and readers, each used by one worker thread at a time. No statement runs on the event
loop's thread, so a lock held by another process (a backup, the ``sqlite3`` shell) stalls
the writes that wait for it, never the loop.

Rules:

* Writes are serialized on the one writer connection, in the order they were asked for.
  Whoever holds the writer runs everything queued by then in one hop to a worker thread,
  each write in a savepoint of one transaction: a write that fails is rolled back alone,
  and a commit that fails fails every write of the batch (none of it was written). Under
  load, writes thus share hops and commits; alone, a write is a hop of its own.
* A write is committed, or has failed, when its call returns. A caller cancelled while its
  write is under way waits for it to end (as ``anyio.to_thread.run_sync`` does); one
  cancelled before it started never writes.
* The database's errors (``sqlite3.Error``, ``psycopg.Error``) become
  :class:`~gateway.exceptions.StoreUnavailableError`; any other exception (a bug, or a
  fence's :class:`~gateway.exceptions.ShardMovedError`) reaches its caller as it is.
* The same on either database: the connections are SQLite's, or PostgreSQL's
  (``gateway.store.postgres.PgConnection``), both committing each statement outside
  ``BEGIN`` / ``COMMIT``.

The writer's lock is a plain FIFO of events (like ``actors.mailbox``), not an ``anyio.Lock``
or ``CapacityLimiter``: those bind to the event loop that first uses them, and a store is
built before the loop runs (and, in tests, used from several loops in turn).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import attrs

from gateway.exceptions import StoreUnavailableError
from gateway.store.fence import Connection

T = TypeVar("T")


class Database(Connection, Protocol):
    """A connection of either database, as the writer and the readers hold it."""

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


@attrs.frozen
class Dialect:
    """What differs between the databases for the connections."""

    name: str
    """``sqlite`` or ``postgresql``."""
    errors: tuple[type[Exception], ...]
    """The driver's errors (the store is unavailable)."""
    unavailable: Callable[[Exception], StoreUnavailableError]
    """The error a caller gets for one of them (naming the database, no secret)."""
    begin: str
    """How a batch's transaction begins (SQLite's takes the write lock at once)."""


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection for any worker thread (one at a time), committing each statement unless
    told otherwise; commits never checkpoint (``checkpoint()`` does, in a worker thread)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    db.execute("PRAGMA wal_autocheckpoint=0")
    return db


def sqlite_dialect(path: Path) -> Dialect:
    """SQLite's, for the file at ``path``."""

    def unavailable(error: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(f"{path}: {error}")

    return Dialect("sqlite", (sqlite3.Error,), unavailable, "BEGIN IMMEDIATE")


@attrs.define(eq=False)
class _Job:
    """One write: what to run, and how it ended."""

    func: Callable[[Any], Any]
    atomic: bool
    started: bool = False
    done: bool = False
    result: Any = None
    error: Exception | None = None


@attrs.define(eq=False)
class Writer:
    """The one connection that writes, and the queue of writes waiting for it."""

    _db: Database
    _dialect: Dialect
    _queue: list[_Job] = attrs.field(factory=list, init=False)
    _busy: bool = attrs.field(default=False, init=False)
    _waiters: deque[anyio.Event] = attrs.field(factory=deque, init=False)
    _hops: int = attrs.field(default=0, init=False)
    _writes: int = attrs.field(default=0, init=False)

    @property
    def hops(self) -> int:
        """Worker-thread hops so far (at most one per write; fewer when writes share them)."""
        return self._hops

    @property
    def writes(self) -> int:
        """Writes run so far."""
        return self._writes

    async def run(self, func: Callable[[Any], T], *, atomic: bool = False) -> T:
        """Run ``func`` on the writer connection and commit; ``atomic`` when it runs several
        statements (they are committed together or not at all)."""
        job = _Job(func, atomic)
        self._queue.append(job)
        try:
            await self._acquire()
        except BaseException:
            if not job.started:
                self._queue.remove(job)  # never written
            elif not job.done:
                with anyio.CancelScope(shield=True):  # under way: wait for it to end
                    await self._acquire()
                self._release()
            raise
        try:
            if not job.done:  # not carried by the batch of an earlier holder
                batch, self._queue = self._queue, []
                for queued in batch:
                    queued.started = True
                try:
                    await anyio.to_thread.run_sync(self._execute, batch)
                except BaseException:
                    if not job.done:  # cancelled before the hop: the others go back in line
                        others = [queued for queued in batch if queued is not job]
                        for queued in others:
                            queued.started = False
                        self._queue[:0] = others
                    raise
                self._hops += 1
                self._writes += len(batch)
        finally:
            self._release()
        if job.error is not None:
            if isinstance(job.error, self._dialect.errors):
                raise self._dialect.unavailable(job.error) from None
            raise job.error
        result: T = job.result
        return result

    def close(self) -> None:
        self._db.close()

    async def _acquire(self) -> None:
        if not self._busy:
            self._busy = True
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._release()  # handed over to us as we were cancelled: pass it on
            else:
                self._waiters.remove(event)
            raise

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # still busy: handed over
        else:
            self._busy = False

    # -- in the worker thread --------------------------------------------------------------

    def _execute(self, batch: list[_Job]) -> None:
        try:
            if len(batch) == 1:
                self._alone(batch[0])
            else:
                self._together(batch)
        finally:
            for job in batch:
                job.done = True

    def _alone(self, job: _Job) -> None:
        db = self._db
        try:
            if job.atomic:
                db.execute("BEGIN")
            job.result = job.func(db)
            if job.atomic:
                db.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - handed to the caller, in its own task
            job.error = error
            self._rollback()

    def _together(self, batch: list[_Job]) -> None:
        db = self._db
        try:
            db.execute(self._dialect.begin)
            for job in batch:
                db.execute("SAVEPOINT write")
                try:
                    job.result = job.func(db)
                except Exception as error:  # noqa: BLE001 - this write's, not the batch's
                    job.error = error
                    db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
            db.execute("COMMIT")
        except self._dialect.errors as error:
            self._rollback()
            for job in batch:
                if job.error is None:  # nothing of the batch was committed
                    job.result, job.error = None, error

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(*self._dialect.errors):
                self._db.execute("ROLLBACK")


@attrs.define(eq=False)
class Readers:
    """Connections for reads, each used by one worker thread at a time (WAL lets them read
    while the writer writes); opened as needed, kept for the next read."""

    _connect: Callable[[], Database]
    _dialect: Dialect
    _idle: list[Database] = attrs.field(factory=list, init=False)
    _closed: bool = attrs.field(default=False, init=False)
    _reads: int = attrs.field(default=0, init=False)

    @property
    def reads(self) -> int:
        """Reads run so far (a worker-thread hop each)."""
        return self._reads

    async def run(self, func: Callable[[Any], T]) -> T:
        """Run ``func`` on a reader connection in a worker thread."""
        self._reads += 1

        def read() -> T:
            try:
                db = self._idle.pop()  # list.pop and append are atomic: no lock needed
            except IndexError:
                db = self._connect()
            try:
                return func(db)
            finally:
                if self._closed:
                    db.close()
                else:
                    self._idle.append(db)

        try:
            return await anyio.to_thread.run_sync(read)
        except self._dialect.errors as error:
            raise self._dialect.unavailable(error) from None

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
