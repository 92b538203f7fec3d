"""``gateway.cluster.bus``: LISTEN/NOTIFY between replicas, on a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import psycopg
import pytest

from gateway.cluster.bus import CHANNELS, Bus, Notification
from gateway.cluster.pools import by_channel, share_pools
from providers.exceptions import QuotaExhaustedError
from providers.pool import CredentialPool, KeyState
from tests.gateway.logs import captured_logs
from tests.providers.test_pool import KEYS, DictStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's AsyncConnection and aiohttp run on asyncio (``tests/gateway/cluster`` may
    run the leases on trio too)."""
    return "asyncio"


class Heard:
    """What one bus's handler was given, and how often it resynced."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.resyncs = 0
        self.fail_resync = False

    def __call__(self, note: Notification) -> None:
        self.notes.append(note)

    async def resync(self) -> None:
        self.resyncs += 1
        if self.fail_resync:
            raise RuntimeError("scripted: resync failed")

    def payloads(self, channel: str) -> list[str]:
        return [n.payload for n in self.notes if n.channel == channel]


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


@asynccontextmanager
async def running(url: str, heard: Heard, **options: object) -> AsyncIterator[Bus]:
    bus = Bus(url, heard, heard.resync, **options)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(bus.run)
        yield bus
        tasks.cancel_scope.cancel()


async def test_a_notification_reaches_every_replica_listening(postgres_url: str) -> None:
    a, b = Heard(), Heard()
    async with running(postgres_url, a) as bus_a, running(postgres_url, b) as bus_b:
        with anyio.fail_after(10):
            await bus_a.wait_listening()
            await bus_b.wait_listening()
        for channel in CHANNELS:
            assert await bus_a.notify(channel, f"{channel}-17")
        await until(lambda: len(b.notes) == len(CHANNELS) and len(a.notes) == len(CHANNELS))
    assert [(n.channel, n.payload, n.mine) for n in b.notes] == [
        (channel, f"{channel}-17", False) for channel in CHANNELS
    ]
    assert all(n.mine for n in a.notes)  # PostgreSQL tells the sender too: marked as its own
    assert a.resyncs == b.resyncs == 0  # nothing was missed
    with pytest.raises(ValueError, match="unknown bus channel"):
        await bus_a.notify("elsewhere", "x")


async def test_a_dropped_connection_is_listened_again_then_resynced(postgres_url: str) -> None:
    listener, sender = Heard(), Heard()
    with captured_logs() as lines:
        async with (
            running(postgres_url, listener, name="a", ping=3.0, backoff=0.05) as bus,
            running(postgres_url, sender, name="b") as other,
        ):
            with anyio.fail_after(10):
                await bus.wait_listening()
                await other.wait_listening()
            assert await other.notify("inbox", "1")
            await until(lambda: listener.payloads("inbox") == ["1"])
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                # Drop every connection of ``bus`` (its listener and its sender).
                await db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'threadgate bus a %'"
                )
            await until(lambda: listener.resyncs == 1)
            assert bus.reconnects == 1
            assert bus.listening
            assert await other.notify("inbox", "2")
            assert await bus.notify("pool", "openai")  # its sender reconnects by itself
            await until(lambda: listener.payloads("inbox") == ["1", "2"])
            await until(lambda: sender.payloads("pool") == ["openai"])
    assert any("bus: connection lost" in line for line in lines), lines
    assert any("bus: listening again" in line for line in lines), lines
    assert listener.resyncs == 1
    assert sender.resyncs == 0  # the other replica's connection was not concerned
    assert other.reconnects == 0


async def test_a_silent_connection_is_found_out_by_the_ping_and_replaced(
    postgres_url: str,
) -> None:
    """The listener's server process stops answering (SIGSTOP: a partition, as the bus sees
    it): its ping times out, and the bus listens on a new connection, then resyncs."""
    heard = Heard()
    async with running(postgres_url, heard, name="a", ping=1.0, backoff=0.05) as bus:
        with anyio.fail_after(10):
            await bus.wait_listening()
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            cursor = await db.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = 'threadgate bus a listen'"
            )
            [(pid,)] = await cursor.fetchall()
            os.kill(pid, signal.SIGSTOP)
            try:
                await until(lambda: heard.resyncs == 1, timeout=15)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert bus.listening
            await db.execute("SELECT pg_notify('threadgate_control', 'after')")
            await until(lambda: heard.payloads("control") == ["after"])

            # The same of its sending connection: a notification waits at most a ping on it,
            # then goes on a new one.
            assert await bus.notify("inbox", "before")
            cursor = await db.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'threadgate bus a send'"
            )
            [(pid,)] = await cursor.fetchall()
            os.kill(pid, signal.SIGSTOP)
            try:
                with anyio.fail_after(5):
                    assert await bus.notify("inbox", "after")
            finally:
                os.kill(pid, signal.SIGCONT)
            # The stopped server process runs the first try too once it goes on (the query
            # had reached it): a notification may arrive twice; it is a hint.
            await until(lambda: heard.payloads("inbox")[:2] == ["before", "after"])
            await anyio.sleep(0.5)
            assert set(heard.payloads("inbox")[1:]) == {"after"}, heard.payloads("inbox")


async def test_an_unreachable_database_is_retried_with_backoff_and_never_logs_secrets() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://gateway:s3cret-pw@127.0.0.1:{port}/threadgate"
    heard = Heard()
    with captured_logs() as lines:
        async with running(url, heard, ping=1.0, backoff=0.1, backoff_max=0.4) as bus:
            await anyio.sleep(1.6)  # tries at 0, 0.1, 0.3, 0.7, 1.1, 1.5
            assert not bus.listening
            assert await bus.notify("inbox", "3") is False
    lost = [line for line in lines if "bus: connection lost" in line]
    assert 3 <= len(lost) <= 7, lines
    assert "in 0.4s" in lost[-1]  # the backoff doubled up to its cap
    assert any("notification on inbox not sent" in line for line in lines), lines
    assert not any("s3cret" in line for line in lines)
    assert heard.resyncs == 0  # it never listened: nothing to resync against


async def test_a_failing_handler_or_resync_is_logged_and_the_bus_goes_on(
    postgres_url: str,
) -> None:
    heard = Heard()
    heard.fail_resync = True
    calls: list[str] = []

    def handler(note: Notification) -> None:
        calls.append(note.payload)
        if note.payload == "bad":
            raise RuntimeError("scripted: handler failed")

    bus = Bus(postgres_url, handler, heard.resync, ping=3.0, backoff=0.05)
    with captured_logs() as lines:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bus.run)
            with anyio.fail_after(10):
                await bus.wait_listening()
            assert await bus.notify("control", "bad")
            assert await bus.notify("control", "good")
            await until(lambda: calls == ["bad", "good"])
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                await db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            await until(lambda: heard.resyncs == 1)
            assert await bus.notify("control", "after")
            await until(lambda: calls == ["bad", "good", "after"])
            tasks.cancel_scope.cancel()
    assert any("bus: handler failed on control" in line for line in lines), lines
    assert any("bus: resync after a reconnection failed" in line for line in lines), lines


async def test_a_402_on_one_replica_rests_the_key_on_the_other_through_the_bus(
    postgres_url: str,
) -> None:
    """The wiring (``share_pools``): a pool's save notifies ``pool``; the other replica's
    handler has its pool of that name refresh. Told, not polled."""
    store = DictStore()
    pools: dict[str, CredentialPool] = {}

    async def nothing() -> None:
        return None

    async with anyio.create_task_group() as tasks:
        buses = []
        for name in ("a", "b"):
            pools[name] = CredentialPool("openai", KEYS, store=store)
            other = CredentialPool("anthropic", KEYS, store=DictStore())
            handlers: dict[str, Callable[[Notification], None]] = {}
            bus = Bus(postgres_url, by_channel(handlers), nothing, name=name)
            handlers["pool"] = share_pools([pools[name], other], bus)
            buses.append(bus)
            tasks.start_soon(bus.run)
            tasks.start_soon(pools[name].run, lambda: None)
        with anyio.fail_after(10):
            for bus in buses:
                await bus.wait_listening()
        pools["a"].report_failure(KEYS[0], QuotaExhaustedError("HTTP 402"))
        await until(lambda: pools["b"].status().keys[0].state is KeyState.COOLING, timeout=5)
        assert pools["b"].acquire().label == "k1"
        assert await buses[0].notify("pool", "unknown")  # no such pool: a debug line
        assert await buses[0].notify("replicas", "joined")  # nothing handles it: debug
        await until(lambda: buses[1].received >= 3)
        tasks.cancel_scope.cancel()
