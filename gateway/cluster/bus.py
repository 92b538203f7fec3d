"""The replicas' bus: PostgreSQL LISTEN/NOTIFY, so a replica is told, not left to poll.

Rules (also in ``docs/architecture.md``, Replicas):

* Four channels (:data:`CHANNELS`), each ``threadgate_<name>`` in the database: ``inbox``
  (a shard has new inbox entries; payload: the shard), ``pool`` (a credential pool saved a
  key state; payload: the pool's name), ``control`` (a press or a stop for a thread owned
  elsewhere), ``replicas`` (a replica joined or left). Payloads are short text (PostgreSQL
  takes at most 8000 bytes).
* A notification is a hint: an owner also sweeps its shards' inbox every ``lease_ttl/3``,
  and every pool refreshes after a reconnection (``resync``), so a missed one delays, never
  loses, what it announced. ``replicas`` is reserved (the lease rounds see replicas come
  and go).
* :meth:`Bus.run` listens on a connection of its own and hands every notification to the
  handler, which must not block (it is called in the listening task; it schedules work).
  A handler that raises is logged; the bus goes on.
* The connection is checked every ``ping`` seconds (a query answered within ``ping``): a
  dropped or silent connection is closed and opened again after a backoff (``backoff``
  doubling to ``backoff_max``; reset once listening again). Once listening again,
  ``resync`` is awaited: notifications sent meanwhile were missed, so the replica reads
  what they would have told. Its failure is logged; the timers read it later anyway.
* :meth:`Bus.notify` sends on another connection of its own (autocommit), opened on first
  use and again after a failure, each step within ``ping``. It never raises for the
  database: a failed notification is a log line and ``False`` (it was a hint).
  A try that timed out may still be delivered, so a notification may arrive twice.
* The database URL (its password) is never logged; psycopg's messages do not carry it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import psycopg
from loguru import logger

CHANNELS = ("inbox", "pool", "control", "replicas")
"""The bus's channels (unprefixed)."""
PREFIX = "threadgate_"
"""What every channel is called in the database: ``threadgate_inbox`` and so on."""


@attrs.frozen
class Notification:
    """One notification, as the bus's handler gets it."""

    channel: str
    """The channel, unprefixed (one of :data:`CHANNELS`)."""
    payload: str
    """What the sender said (short text)."""
    mine: bool
    """Whether this process's own :meth:`Bus.notify` sent it (PostgreSQL tells the sender
    too)."""


@attrs.define(eq=False)
class Bus:
    """LISTEN/NOTIFY over one database (see the module's rules)."""

    _url: str
    _handler: Callable[[Notification], None]
    _resync: Callable[[], Awaitable[None]]
    _name: str = ""
    """Who listens (the replica's id): its connections are ``threadgate bus <name> listen``
    and ``threadgate bus <name> send`` in ``pg_stat_activity``."""
    _ping: float = 5.0
    """Seconds between checks of the listening connection (and the longest a check waits)."""
    _backoff: float = 0.2
    _backoff_max: float = 5.0
    _listener: psycopg.AsyncConnection[Any] | None = attrs.field(default=None, init=False)
    _sender: psycopg.AsyncConnection[Any] | None = attrs.field(default=None, init=False)
    _sender_pid: int | None = attrs.field(default=None, init=False)
    _sending: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)
    _listening: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _reconnects: int = attrs.field(default=0, init=False)
    _received: int = attrs.field(default=0, init=False)

    @property
    def listening(self) -> bool:
        """Whether the bus is listening on every channel now."""
        return self._listener is not None and self._listening.is_set()

    @property
    def reconnects(self) -> int:
        """How many times the listening connection was opened again after it dropped."""
        return self._reconnects

    @property
    def received(self) -> int:
        """Notifications handed to the handler so far."""
        return self._received

    async def wait_listening(self) -> None:
        """Return once the bus listens (now, or after its next (re)connection)."""
        await self._listening.wait()

    # -- sending ---------------------------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> bool:
        """Tell every replica listening on ``channel`` (this one too); ``False`` if it could
        not be sent (logged)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown bus channel {channel!r} (one of {CHANNELS})")
        async with self._sending:
            for attempt in (1, 2):  # a connection that dropped since its last use: once more
                fresh = self._sender is None
                try:
                    sender = await self._sender_connection()
                    with anyio.fail_after(self._ping):  # a silent server: not forever
                        await sender.execute(
                            "SELECT pg_notify(%s, %s)", (PREFIX + channel, payload)
                        )
                except (psycopg.Error, OSError, TimeoutError) as error:
                    await self._drop_sender()
                    if fresh or attempt == 2:
                        logger.warning(
                            "bus: notification on {channel} not sent: {error}",
                            channel=channel,
                            error=_said(error),
                        )
                        return False
                else:
                    return True
        return False  # pragma: no cover - the loop returns

    async def _sender_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._sender is None:
            with anyio.fail_after(self._ping):
                self._sender = await self._connect("send")
            self._sender_pid = self._sender.info.backend_pid
        return self._sender

    async def _connect(self, role: str) -> psycopg.AsyncConnection[Any]:
        name = f"threadgate bus {self._name} {role}".replace("  ", " ")
        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=name
        )

    async def _drop_sender(self) -> None:
        sender, self._sender, self._sender_pid = self._sender, None, None
        if sender is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._ping):
                await sender.close()

    # -- listening -------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a drop (then ``resync``)."""
        delay, first = self._backoff, True
        try:
            while True:
                try:
                    await self._listen(resync=not first)
                except (psycopg.Error, OSError, TimeoutError) as error:
                    if self._listening.is_set():
                        delay = self._backoff  # it was listening: the next try is soon
                    logger.warning(
                        "bus: connection lost ({error}); listening again in {delay:.1f}s",
                        error=_said(error),
                        delay=delay,
                    )
                finally:
                    await self._close_listener()
                first = False
                await anyio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
        finally:
            await self._drop_sender()

    async def _listen(self, *, resync: bool) -> None:
        with anyio.fail_after(self._ping):
            listener = await self._connect("listen")
        self._listener = listener
        with anyio.fail_after(self._ping):
            for channel in CHANNELS:
                await listener.execute(f"LISTEN {PREFIX}{channel}")
        self._listening.set()
        if resync:
            self._reconnects += 1
            logger.info("bus: listening again; resyncing what notifications were missed")
            try:
                await self._resync()
            except Exception as error:  # noqa: BLE001 - the timers read it later anyway
                logger.opt(exception=error).error("bus: resync after a reconnection failed")
        while True:
            async for notice in listener.notifies(timeout=self._ping):
                self._hand(notice)
            with anyio.fail_after(self._ping):
                await listener.execute("SELECT 1")  # still there? (a drop raises here)

    def _hand(self, notice: psycopg.Notify) -> None:
        channel = notice.channel.removeprefix(PREFIX)
        mine = self._sender_pid is not None and notice.pid == self._sender_pid
        self._received += 1
        try:
            self._handler(Notification(channel, notice.payload, mine))
        except Exception as error:  # noqa: BLE001 - a broken handler must not stop the bus
            logger.opt(exception=error).error("bus: handler failed on {c}", c=channel)

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if self._listening.is_set():
            self._listening = anyio.Event()  # for the next connection (no one waits on it)
        if listener is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._ping):
                await listener.close()


def _said(error: BaseException) -> str:
    """The first line of ``error``'s message (psycopg's may run to several)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
