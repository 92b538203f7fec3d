"""Several ``threadgate run`` processes against one Bot API simulator and one LLM simulator.

The failover and fencing tests (and ``bench/bench_replicas.py``) start replicas with
:func:`cluster`: every replica is a real gateway process with a data directory and an admin
address of its own, sharing ``THREADGATE_DATABASE_URL`` (empty: each its own SQLite file,
which is only meaningful for one process) and differing in ``THREADGATE_REPLICA_ID``.

Each replica talks to the simulator through a base URL of its own (``/r/<name>``): the
simulator (:class:`TappedBotAPI`) records which replica made each request, so a test can
tell who answered a chat and check that a replica sent nothing after a point in time.

What every message ended as is read from the database itself (:func:`read_ledger`): the
``inbox`` (every accepted message) left-joined with ``outcomes``, with psycopg on PostgreSQL
and sqlite3 on the SQLite file, never through the gateway's own code.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
from aiohttp import web

from actors.thread import Outcome
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from tests.gateway.harness import KEYS, TOKEN

FINAL = frozenset(o.value for o in Outcome if o.final)
"""The outcomes no other can follow (``Outcome(x).final``)."""
STEP_DOWN = re.compile(r"step(s|ped|ping)?[ -]down", re.IGNORECASE)
"""The log line of a replica that lost a shard it held and stopped its threads there."""
NOT_WRITES = frozenset({"getupdates", "getme", "getfile", "sendchataction", "getwebhookinfo"})
"""Bot API methods that change nothing the user sees (lowercase); all others are writes."""
CHATS = tuple(range(7001, 7031))
"""The 30 private chats the tests write in (chat id = user id, as in Telegram)."""


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def slow_reply(messages: list[dict[str, str]]) -> Reply:
    """An answer streamed over about two seconds, so that a kill can land mid-run."""
    return Reply(
        default_answer(messages) + " " + " ".join(["more"] * 12) + " END", chunk_delay=0.15
    )


@attrs.frozen
class Call:
    """One Bot API request, and which replica made it."""

    replica: str
    """The replica's name (``THREADGATE_REPLICA_ID``)."""
    method: str
    """The Bot API method, lowercase (``sendmessage``)."""
    chat_id: int | None
    """The chat it is for, if it names one."""
    at: float
    """When it arrived (``time.monotonic``)."""


@attrs.define(eq=False)
class TappedBotAPI(BotAPISimulator):
    """The Bot API simulator, also reachable under ``/r/<replica>``, which it records."""

    calls: list[Call] = attrs.Factory(list)
    """Every request made under ``/r/<replica>``, in arrival order."""
    _calls_lock: threading.Lock = attrs.Factory(threading.Lock)

    def base_for(self, replica: str) -> str:
        """The ``THREADGATE_TELEGRAM_API_BASE`` of ``replica``."""
        return f"{self.base_url}/r/{replica}"

    def add_routes(self, app: web.Application) -> None:
        """The tapped routes: ``/r/<replica>/...`` is the Bot API, noting who asked."""
        app.router.add_route("*", "/r/{replica}/bot{token}/{method}", self._tapped)
        app.router.add_get("/r/{replica}/file/bot{token}/{path:.+}", self._file)

    async def _tapped(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = dict(await request.post())  # cached: _handle reads it again
        if not params and request.can_read_body:
            try:
                params = await request.json()
            except ValueError:
                params = {}
        chat = params.get("chat_id")
        call = Call(
            replica=request.match_info["replica"],
            method=request.match_info["method"].lower(),
            chat_id=int(chat) if chat is not None and str(chat).lstrip("-").isdigit() else None,
            at=time.monotonic(),
        )
        with self._calls_lock:
            self.calls.append(call)
        return await self._handle(request)

    def writes(
        self, replica: str | None = None, chats: Iterable[int] | None = None, since: float = 0.0
    ) -> list[Call]:
        """The requests that change a chat (sends, edits, reactions; not ``sendChatAction``),
        of ``replica`` (any: ``None``), in ``chats`` (any: ``None``), from ``since`` on."""
        wanted = None if chats is None else set(chats)
        with self._calls_lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if c.method not in NOT_WRITES
            and c.at >= since
            and (replica is None or c.replica == replica)
            and (wanted is None or c.chat_id in wanted)
        ]

    def chats_of(self, replica: str, since: float = 0.0) -> set[int]:
        """The chats ``replica`` wrote in from ``since`` on."""
        return {c.chat_id for c in self.writes(replica, since=since) if c.chat_id is not None}

    def poller(self, since: float) -> set[str]:
        """The replicas that called ``getUpdates`` from ``since`` on."""
        with self._calls_lock:
            return {c.replica for c in self.calls if c.method == "getupdates" and c.at >= since}


@attrs.frozen
class Ledger:
    """Every accepted message (an ``inbox`` row) and the outcomes recorded for it."""

    outcomes: dict[tuple[int, int], tuple[str, ...]]
    """By (chat id, message id): its outcomes in the order written (none yet: ``()``)."""

    def finals(self, key: tuple[int, int]) -> int:
        return sum(1 for outcome in self.outcomes.get(key, ()) if outcome in FINAL)

    def concluded(self, keys: Iterable[tuple[int, int]]) -> bool:
        """Whether every one of ``keys`` was accepted and has a final outcome."""
        return all(self.finals(key) >= 1 for key in keys)

    def not_exactly_once(self) -> dict[tuple[int, int], tuple[str, ...]]:
        """The accepted messages without exactly one final outcome."""
        return {key: seen for key, seen in self.outcomes.items() if self.finals(key) != 1}


LEDGER = """
SELECT i.chat_id, i.message_id, o.outcome FROM inbox i
LEFT JOIN outcomes o ON o.thread_key = i.thread_key AND o.message_id = i.message_id
ORDER BY i.update_id, o.rowid
"""


def read_ledger(database_url: str, data_dir: Path) -> Ledger:
    """The ledger of PostgreSQL at ``database_url``, or of ``data_dir``'s SQLite file."""
    rows: list[tuple[int, int, str | None]] = []
    if database_url:
        try:
            with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as pg:
                rows = [(row[0], row[1], row[2]) for row in pg.execute(LEDGER).fetchall()]
        except psycopg.errors.UndefinedTable:
            rows = []  # no schema yet: nobody started
    else:
        path = data_dir / "threadgate.sqlite3"
        if path.exists():
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute(LEDGER).fetchall()
            except sqlite3.OperationalError:
                rows = []  # no schema yet (the replica is starting)
            finally:
                db.close()
    seen: defaultdict[tuple[int, int], list[str]] = defaultdict(list)
    for chat_id, message_id, outcome in rows:
        seen[(int(chat_id), int(message_id))].extend([] if outcome is None else [outcome])
    return Ledger({key: tuple(values) for key, values in seen.items()})


@attrs.define(eq=False)
class Replica:
    """One gateway process."""

    name: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    admin_port: int
    health: str = "not asked yet"
    """The last answer of ``/healthz``."""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: dies at once, holding whatever it held."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: frozen, clocks running on without it."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 30) -> int:
        """SIGINT, the graceful stop; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_up(self, timeout: float) -> None:
        """Wait until ``/healthz`` answers 200; raise with the log's end if it does not."""
        try:
            wait(lambda: self.healthy() or not self.alive(), timeout, f"{self.name} healthy")
        except TimeoutError:
            raise TimeoutError(
                f"{self.name} not healthy (/healthz: {self.health}):\n{self.log_text()[-3000:]}"
            ) from None
        if not self.alive():
            status, log = self.process.returncode, self.log_text()[-3000:]
            raise RuntimeError(f"{self.name} exited {status}:\n{log}")

    def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 (its last answer: :attr:`health`)."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.admin_port}/healthz", timeout=2)
        except httpx.HTTPError as error:
            self.health = f"no answer ({type(error).__name__})"
            return False
        self.health = f"{answer.status_code} {answer.text[:1000]}"
        return answer.status_code == 200


@attrs.define(eq=False)
class Cluster:
    """The simulators, the shared database and the replicas started on them."""

    telegram: TappedBotAPI
    llm: LLMSimulator
    root: Path
    database_url: str
    """Shared by every replica; empty: each on its own SQLite file."""
    lease_ttl: float
    extra_env: dict[str, str] = attrs.Factory(dict)
    config_toml: str = ""
    """Every replica's settings file (``THREADGATE_CONFIG``); empty: none."""
    replicas: dict[str, Replica] = attrs.Factory(dict)

    def env(self, name: str, admin_port: int, data_dir: Path) -> dict[str, str]:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "THREADGATE_TELEGRAM_API_BASE": self.telegram.base_for(name),
            "THREADGATE_LLM_BASE_URL": self.llm.base_url,
            "THREADGATE_LLM_API_KEYS": ",".join(KEYS),
            "THREADGATE_DATA_DIR": str(data_dir),
            "THREADGATE_ADMIN_ADDR": f"127.0.0.1:{admin_port}",
            "THREADGATE_CONFIG": str(data_dir / "threadgate.toml"),
            "THREADGATE_REPLICA_ID": name,
            "THREADGATE_LEASE_TTL": str(self.lease_ttl),
            **self.extra_env,
        }
        if self.database_url:
            env["THREADGATE_DATABASE_URL"] = self.database_url
        else:
            env.pop("THREADGATE_DATABASE_URL", None)
        return env

    def start(self, *names: str, timeout: float = 180) -> list[Replica]:
        """Start the replicas ``names`` at once and wait until every one's ``/healthz``
        answers (a start is mostly imports, seconds of CPU each: three on two busy cores
        take a minute or more)."""
        started = [self._launch(name) for name in names]
        for replica in started:
            replica.wait_up(timeout)
        return started

    def _launch(self, name: str) -> Replica:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.config_toml:
            (data_dir / "threadgate.toml").write_text(self.config_toml)
        port, log = free_port(), self.root / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run"],
                env=self.env(name, port, data_dir),
                stdout=output,
                stderr=output,
            )
        replica = self.replicas[name] = Replica(name, process, data_dir, log, port)
        return replica

    def close(self) -> None:
        for replica in self.replicas.values():
            if replica.alive():
                replica.resume()
                replica.process.kill()
            replica.process.wait(10)

    def owners(self) -> set[str]:
        """The replicas holding a shard lease now (PostgreSQL only)."""
        query = (
            "SELECT DISTINCT owner FROM shard_leases WHERE owner IS NOT NULL AND owner <> ''"
            " AND expires_at > extract(epoch FROM clock_timestamp())"
        )
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as db:
                return {str(row[0]) for row in db.execute(query).fetchall()}
        except psycopg.errors.UndefinedTable:
            return set()

    def wait_balanced(self, names: Iterable[str], timeout: float | None = None) -> None:
        """Wait until exactly ``names`` hold shard leases (every one of them some).

        Without the wiring (no ``shard_leases`` table) this fails after ``timeout``
        (default: three TTLs and 15 s), saying that replicas need ``store.url`` support."""
        want = set(names)
        limit = 3 * self.lease_ttl + 15 if timeout is None else timeout
        try:
            wait(lambda: self.owners() == want, limit, f"leases held by exactly {sorted(want)}")
        except TimeoutError as error:
            raise TimeoutError(
                f"replicas need store.url support (shard leases in PostgreSQL): {error};"
                f" held by {sorted(self.owners())}"
            ) from None

    def say(self, text: str, chats: Iterable[int] = CHATS) -> set[tuple[int, int]]:
        """A user writes ``text in <chat>`` in each of ``chats``; (chat id, message id) each."""
        return {
            (chat, self.telegram.say(f"{text} in {chat}", chat_id=chat, user_id=chat, forum=False))
            for chat in chats
        }

    def ledger(self, replica: str | None = None) -> Ledger:
        """The database's ledger (on SQLite: ``replica``'s file, default the only one)."""
        if self.database_url:
            return read_ledger(self.database_url, self.root)
        [only] = [replica] if replica else list(self.replicas)
        return read_ledger("", self.replicas[only].data_dir)

    def wait_concluded(self, keys: Iterable[tuple[int, int]], timeout: float) -> Ledger:
        """Wait until every (chat id, message id) of ``keys`` has a final outcome; the
        ledger then."""
        wanted = set(keys)
        last: list[Ledger] = [Ledger({})]

        def done() -> bool:
            last[0] = self.ledger()
            return last[0].concluded(wanted)

        try:
            wait(done, timeout, "every message concluded")
        except TimeoutError as error:
            missing = sorted(k for k in wanted if last[0].finals(k) == 0)
            raise TimeoutError(f"{error}; without a final outcome: {missing}") from None
        return last[0]


@contextmanager
def cluster(
    root: Path,
    database_url: str = "",
    *,
    lease_ttl: float = 3.0,
    reply: Callable[[list[dict[str, str]]], Reply] = slow_reply,
    extra_env: dict[str, str] | None = None,
    config_toml: str = "",
) -> Iterator[Cluster]:
    """The simulators serving in threads, and a :class:`Cluster` to start replicas on them;
    every replica still running afterwards is killed."""
    telegram, llm = TappedBotAPI(), LLMSimulator(default=reply)
    with ExitStack() as stack:
        stack.enter_context(telegram.serving_in_thread())
        stack.enter_context(llm.serving_in_thread())
        running = Cluster(
            telegram, llm, root, database_url, lease_ttl, dict(extra_env or {}), config_toml
        )
        stack.callback(running.close)
        yield running
