"""No statement on the event loop's thread: a lock another process holds delays the writes
waiting for it, never the loop (issue 17, item 11); writes queued together share a hop."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import attrs
import pytest

from actors.thread.records import Concluded, Outcome, ThreadKey, ThreadRecord
from gateway.exceptions import StoreUnavailableError
from gateway.store.sqlite import Store
from providers.exceptions import RateLimitedError
from providers.pool import CredentialPool
from providers.secrets import ApiKey

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])]
KEY = ThreadKey(-100, 2)
# Another process, as an operator's `sqlite3` shell or a backup script would be: it takes the
# write lock and holds it until told to let go (a line on its stdin).
LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE threads SET record = record")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


@contextlib.asynccontextmanager
async def locked(path: Path) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold the file's write lock from another process; yield what releases it."""
    command = [sys.executable, "-c", LOCKER, str(path)]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        assert process.stdin is not None
        stdin = process.stdin
        with anyio.fail_after(10):
            assert (await process.stdout.receive()).startswith(b"locked")

        async def release() -> None:
            await stdin.send(b"\n")
            with anyio.fail_after(10):
                assert await process.wait() == 0

        yield release


@attrs.define
class Ticks:
    """A timer ticking on the event loop every 10 ms: how long the loop ever stood still."""

    at: list[float] = attrs.Factory(list)

    async def run(self) -> None:
        while True:
            self.at.append(time.monotonic())
            await anyio.sleep(0.01)

    def longest_gap(self) -> float:
        return max(b - a for a, b in zip(self.at, self.at[1:], strict=False))


def record(run_seq: int) -> ThreadRecord:
    return ThreadRecord("s", run_seq=run_seq)


async def test_a_lock_held_by_another_process_never_stalls_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    await store.save(KEY, record(1))
    ticks, saved = Ticks(), anyio.Event()

    async def save() -> None:
        await store.save(KEY, record(2), [Concluded(5, Outcome.ANSWERED)])
        saved.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticks.run)
        async with locked(path) as release:
            tasks.start_soon(save)
            assert await store.load(KEY) == record(1), "reads go on while another writes"
            await anyio.sleep(1.5)
            assert not saved.is_set(), "the write waits for the lock"
            await release()
        with anyio.fail_after(5):
            await saved.wait()
        tasks.cancel_scope.cancel()
    assert ticks.longest_gap() < 0.5, "the loop kept ticking"
    assert await store.load(KEY) == record(2)
    assert await store.outcomes(KEY) == [(5, "answered")]
    store.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_write_not_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path, busy_timeout=0.3)
    await store.save(KEY, record(1))
    ticks = Ticks()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticks.run)
        async with locked(path) as release:
            with pytest.raises(StoreUnavailableError, match="locked"):  # not sqlite3.Error
                await store.save(KEY, record(2), [Concluded(5, Outcome.ANSWERED)])
            await anyio.sleep(0.2)
            await release()
        tasks.cancel_scope.cancel()
    assert ticks.longest_gap() < 0.25
    assert await store.load(KEY) == record(1), "nothing of the failed write"
    await store.save(KEY, record(3))
    assert await store.load(KEY) == record(3)
    store.close()


async def test_writes_queued_behind_a_lock_share_one_hop_and_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    await store.save(KEY, record(1))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON outcomes WHEN NEW.message_id = 13"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    failed: list[int] = []

    async def save(ident: int) -> None:
        try:
            await store.save(ThreadKey(ident), record(ident), [Concluded(ident, Outcome.ANSWERED)])
        except StoreUnavailableError:
            failed.append(ident)

    before = store.statistics()
    async with locked(path) as release, anyio.create_task_group() as tasks:
        for ident in range(1, 21):
            tasks.start_soon(save, ident)
        await anyio.sleep(0.5)
        await release()
    after = store.statistics()
    assert failed == [13]
    assert after.writes - before.writes == 20
    assert after.hops - before.hops == 2, "the first alone (it met the lock), then the rest"
    for ident in range(1, 21):
        expected = None if ident == 13 else record(ident)
        assert await store.load(ThreadKey(ident)) == expected, "each write in its own savepoint"
    store.close()


async def test_a_cancelled_write_is_never_half_done(tmp_path: Path) -> None:
    """Cancelled while waiting in line: never written. Cancelled while under way: the caller
    waits until it is written (as a worker thread cannot be stopped midway)."""
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    await store.save(KEY, record(1))
    first, second = ThreadKey(1), ThreadKey(2)

    async def under_way() -> None:
        with anyio.move_on_after(0.3):
            await store.save(first, record(1))
        assert await store.load(first) == record(1), "written when the cancel took effect"

    async with locked(path) as release, anyio.create_task_group() as tasks:
        tasks.start_soon(under_way)
        await anyio.sleep(0.1)
        start = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await store.save(second, record(2))
        assert scope.cancelled_caught
        assert time.monotonic() - start < 0.5, "a write waiting in line is dropped at once"
        await anyio.sleep(0.5)
        await release()
    assert await store.load(second) is None
    await store.save(KEY, record(3))  # the writer is free again
    assert await store.load(KEY) == record(3)
    store.close()


async def test_a_429_while_the_store_is_locked_neither_waits_nor_fails(tmp_path: Path) -> None:
    """The pool saved its key states on every 429, synchronously, on the request's path."""
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    await store.save(KEY, record(1))
    keys = [ApiKey("key-1", "sk-test-key-0001"), ApiKey("key-2", "sk-test-key-0002")]
    pool = CredentialPool("llm", keys, store=store)
    await pool.restore()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pool.run, lambda: None)
        async with locked(path) as release:
            start = time.monotonic()
            pool.report_failure(keys[0], RateLimitedError("HTTP 429", retry_after=600))
            assert pool.acquire().label == "key-2"
            assert time.monotonic() - start < 0.1
            await anyio.sleep(0.5)
            await release()
        with anyio.fail_after(10):
            while not any(s.until for s in await store.load_pool("llm")):
                await anyio.sleep(0.05)
        tasks.cancel_scope.cancel()
    [cooling] = [s for s in await store.load_pool("llm") if s.until]
    assert (cooling.label, cooling.reason) == ("key-1", "HTTP 429")
    store.close()
