"""Scale: Threadgate end to end with many threads, active, known and pending after a crash.

    python bench/bench_scale.py [--scale 1] [--parts active,known,crash] [--peers baseline]
                                [--messages 1] [--cap 300] [--touched N] [--rounds 1]
                                [--tracemalloc] [--profile DIR] [--gateway-log LEVEL]

Everything goes through the simulators as in ``bench_gateway.py``: the gateway runs in a
process of its own (as ``threadgate run`` runs it, with a data directory the benchmark
keeps), long-polls the local Bot API simulator and asks the instant local model (one
streamed word); the simulators and the load run in this process. Memory is the bot
process's resident set (``VmRSS``, and its peak ``VmHWM``, from ``/proc``). Three parts,
each printed with issue 22's target where it has one:

* ``active``: 10,000 chats at once, each a private chat (a thread of its own), each sending
  ``--messages`` (default 1; a next one when the last was answered): every thread has a
  message in flight at once. Throughput, CPU per message, latency, Bot API requests per
  message; RSS per thread at the peak and once the answers are in and the threads idle
  (dormant, not passivated). The minimal aiogram bot of ``bench_gateway.py`` (``--peers``:
  and the openai SDK bot) runs the same load in the same run, with Threadgate's connection
  limits (``bench_gateway.TUNED_LIMITS``): the ratios are Threadgate's to it. A bot's load is
  given up after ``--cap`` seconds (default 300) or a minute without an answer; what it
  answered until then is measured.
* ``known``: 100,000 threads known to the store (each with a record, a session of one
  answered exchange, its inbox entry and outcome; written before the gateway starts and
  not timed). Start-up: from starting the process to the answer of a message sent at that
  moment, against the same gateway over an empty store in the same run. Memory per known
  thread that the process never loaded (its RSS against the empty store's); then
  ``--touched`` of them (default: 10,000 at scale 1) get a message each, and once every
  thread actor is passivated (``idle_ttl`` short), RSS per touched thread.
* ``crash``: 10,000 chats write one message each while the model never answers (the
  gateway configured to wait for it: ``scale_gateway.py``'s ``patient``); once every update
  is in the inbox (Telegram confirmed them), and a second later, the gateway is killed with
  SIGKILL, and a new one over the same data directory (the model instant again) answers
  them. The replay: from the new gateway's admin endpoint listening (its store open, its
  parts built, just before it replays the inbox) to the last of those answers; against the
  time as many messages take live (``active``'s throughput), when measured. Its whole
  start-up is printed too, against an empty store's (``known``'s, or measured here).

``--scale 0.1`` divides every count by ten (a quick run); ``--parts`` picks parts.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import pickle
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import attrs
import httpx
from anyio.abc import Process

BENCH = Path(__file__).resolve().parent / "bench_gateway.py"
GATEWAY = BENCH.parent / "scale_gateway.py"
ROOT = BENCH.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the project root

from actors.thread.records import (  # noqa: E402 - after the path set-up above
    Concluded,
    Exchange,
    Outcome,
    ThreadKey,
    ThreadRecord,
    Turn,
)
from bench.bench_gateway import (  # noqa: E402
    ANSWER,
    FREEZE_BASELINE,
    TUNED_LIMITS,
    Replies,
    Requests,
    cpu_seconds,
    percentile,
)
from bench.scale_gateway import (  # noqa: E402
    GATEWAY_LOG,
    LOG,
    PATIENT,
    PROFILE,
    PROFILE_DUMP,
    REPLAYED,
    TIMES,
    TRACE,
)
from gateway.demo.botapi_sim import BotAPISimulator  # noqa: E402
from gateway.demo.model_sim import LLMSimulator, Reply  # noqa: E402
from gateway.ops import discovery  # noqa: E402
from gateway.store.sqlite import InboxEntry, Store  # noqa: E402

ACTIVE = 10_000
"""Threads active at once (``active``)."""
KNOWN = 100_000
"""Threads known to the store (``known``)."""
PENDING = 10_000
"""Inbox entries pending at the crash (``crash``)."""
FIRST_CHAT = 10_001
"""The first load chat's id (``drive`` numbers its chats from it): the known threads are
these chats, so that the touched ones are known ones."""
SPARE_CHAT = 1
"""A chat outside the load's: the warm-up's and the start-up probe's (each a new chat id
from here up)."""
PASSIVATE_AFTER = 3.0
"""``threads.idle_ttl`` of the gateway over the known threads: seconds an idle thread stays."""
STARTUP_TARGET = 2.0
REPLAY_TARGET = 10.0
IDLE_TARGET_KIB = 10.0
NO_BYTECODE = "PYTHONDONTWRITEBYTECODE"
REPLAY_CAP = 900.0
"""Seconds the replay's answers are waited for at most."""
LOAD_TIMEOUT = 60.0
"""Seconds without a single answer after which a load is given up (the bot dropped some)."""


# -- the bot processes -----------------------------------------------------------------------


@attrs.frozen
class Memory:
    """A process's resident set, in KiB."""

    rss: int
    peak: int

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
        return cls(fields["VmRSS"], fields["VmHWM"])


@attrs.define
class Sims:
    """The two simulators, started."""

    telegram: BotAPISimulator
    llm: LLMSimulator
    _chats: itertools.count[int] = attrs.Factory(lambda: itertools.count(SPARE_CHAT))

    def spare_chat(self) -> int:
        """A chat id outside the load's, new each time."""
        return next(self._chats)


@contextlib.asynccontextmanager
async def simulators(first_update: int = 1) -> AsyncIterator[Sims]:
    """A Bot API simulator whose update ids start at ``first_update`` (above those in a
    store written beforehand, as Telegram's would be), and the instant model."""
    telegram = BotAPISimulator(update_ids=itertools.count(first_update))
    llm = LLMSimulator(default=lambda _: Reply(ANSWER))
    await telegram.start()
    await llm.start()
    try:
        yield Sims(telegram, llm)
    finally:
        await telegram.stop()
        await llm.stop()


def child_env() -> dict[str, str]:
    """The bots' environment: this one's, but writing and reading bytecode caches as a
    deployed gateway does (an environment with ``PYTHONDONTWRITEBYTECODE`` would have every
    start compile the ~1,400 modules it imports from source), and importing this checkout's
    code first (a script's own folder, ``bench/``, is on its path, not the project's: without
    this the gateway would import whatever checkout the virtualenv was installed from)."""
    env = {name: value for name, value in os.environ.items() if name != NO_BYTECODE}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


async def compile_imports() -> None:
    """Import what the bots import once, so that the bytecode caches are written before any
    start is timed."""
    began = time.perf_counter()
    code = "import bench.scale_gateway, bench.bench_gateway"
    await anyio.run_process(
        [sys.executable, "-c", code], env=child_env(), cwd=str(BENCH.parent.parent)
    )
    took = time.perf_counter() - began
    print(f"(the bots' imports, with bytecode caches written where missing: {took:.1f} s)")


@contextlib.asynccontextmanager
async def bot_process(
    name: str, sims: Sims, data_dir: str = "", idle_ttl: float = 600.0, patient: bool = False
) -> AsyncIterator[Process]:
    """``name`` (``threadgate``, over ``data_dir``, ``patient`` with a model that does not
    answer; else a peer of ``bench_gateway.py``) in a process of its own; SIGKILLed on
    exit."""
    urls = [sims.telegram.base_url, sims.llm.base_url]
    profiled = name == "threadgate" and bool(os.environ.get(PROFILE))
    if name == "threadgate":
        command = [sys.executable, str(GATEWAY), data_dir, *urls, str(idle_ttl)]
        command += ["patient"] if patient else []
    else:
        command = [sys.executable, str(BENCH), "--serve", name, *urls]
    async with await anyio.open_process(
        command, stdout=None, stderr=None, env=child_env()
    ) as process:
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                if profiled and process.returncode is None:
                    with anyio.CancelScope(shield=True):
                        await profile_dump(process, data_dir)
                process.kill()


async def profile_dump(process: Process, data_dir: str) -> None:
    """Have the gateway write its profile so far (``scale_gateway.py``); keep it."""
    process.send_signal(signal.SIGUSR2)
    written = Path(data_dir) / PROFILE_DUMP
    keep = Path(os.environ[PROFILE]) / f"threadgate-{time.strftime('%H%M%S')}.prof"
    with anyio.move_on_after(120):
        while not written.exists():  # noqa: ASYNC110 - another process writes it
            await anyio.sleep(0.5)
        await anyio.sleep(1)
        keep.write_bytes(written.read_bytes())
        print(f"  (profile: {keep})")


async def answer_in(sims: Sims, chat_id: int, timeout: float = 120) -> float:
    """Say something in ``chat_id``; return the seconds until it was answered."""
    replies = Replies(sims.telegram, 1)
    try:
        with anyio.fail_after(timeout):
            return await replies.answer(replies.say(chat_id, "hello"))
    finally:
        replies.close()


@attrs.frozen
class Startup:
    """Where a gateway's start went, in seconds from starting its process."""

    total: float
    """To the answer of a message sent as the process started."""
    imports: float
    """To the end of its imports (the interpreter's own start included)."""
    setup: float
    """From there until its admin endpoint listened (the store opened, the parts built)."""

    @property
    def serving(self) -> float:
        """From there to the answer (the replay of the inbox, polling begun, one answer)."""
        return self.total - self.imports - self.setup

    def __str__(self) -> str:
        return (
            f"{self.total:.2f} s (imports {self.imports:.2f}, setup {self.setup:.2f},"
            f" then to the answer {self.serving:.2f})"
        )


@contextlib.asynccontextmanager
async def started_gateway(
    sims: Sims, data_dir: str, idle_ttl: float = 600.0
) -> AsyncIterator[tuple[Process, Startup, float]]:
    """Start the gateway over ``data_dir`` with a message waiting for it; yield once it is
    answered: the process, its ``Startup``, and its start as ``time.monotonic()``."""
    probe = Replies(sims.telegram, 1)
    message_id = probe.say(sims.spare_chat(), "hello")
    wall, began = time.time(), time.monotonic()
    async with bot_process("threadgate", sims, data_dir, idle_ttl) as bot:
        try:
            with anyio.fail_after(600):
                await probe.answer(message_id)
        finally:
            probe.close()
        total = probe.at[message_id] - began
        imported = json.loads((Path(data_dir) / TIMES).read_text())["imported"]
        admin = discovery.read(Path(data_dir))
        assert admin is not None, "the gateway wrote no admin.json"
        startup = Startup(total, imported - wall, admin.started_at - imported)
        yield bot, startup, began


async def threads_live(data_dir: str) -> int:
    """Thread actors the gateway over ``data_dir`` has spawned and not passivated."""
    address = discovery.read(Path(data_dir))
    assert address is not None, "the gateway wrote no admin.json"
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{address.url}/metrics")
    for line in response.text.splitlines():
        if line.startswith("threadgate_threads_live "):
            return int(float(line.split()[1]))
    raise ValueError("no threadgate_threads_live in /metrics")


async def until(done: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
    """Poll ``done`` (the simulator's state, which another process changes) until true."""
    with anyio.fail_after(timeout):
        while not done():  # noqa: ASYNC110 - no event to wait on
            await anyio.sleep(every)


def files_size(folder: str) -> int:
    """Bytes in the files of ``folder``."""
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())


def kib(value: float) -> str:
    return f"{value / 1024:.1f} MiB" if abs(value) >= 10_240 else f"{value:.0f} KiB"


def per(value: float, count: int) -> str:
    """KiB per thread, as bytes when below 10 KiB."""
    each = value / count
    return f"{each:.1f} KiB" if abs(each) >= 10 else f"{each * 1024:.0f} B"


# -- active ----------------------------------------------------------------------------------


@attrs.frozen
class Active:
    """One bot under the ``active`` load."""

    rate: float
    latencies: list[float]
    cpu_per_message: float
    before: Memory
    """Started and warm, before the load."""
    peak: int
    """The peak RSS (KiB) by the end of the load."""
    idle: Memory
    """Once every answer was in and the bot settled."""
    live: int | None
    """Thread actors live at the end (Threadgate only)."""
    requests: dict[str, float]
    """Bot API requests per message, by kind (``bench_gateway.Requests``)."""
    answered: int
    """Messages answered (all, unless the bot stopped answering: ``LOAD_TIMEOUT``)."""


async def run_active(name: str, chats: int, messages: int, settle: float, cap: float) -> Active:
    async with simulators() as sims, contextlib.AsyncExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory())
        bot = await stack.enter_async_context(bot_process(name, sims, data_dir))
        await answer_in(sims, sims.spare_chat())  # up, connections warm
        await anyio.sleep(settle)
        tracing = name == "threadgate" and bool(os.environ.get(TRACE))
        first = await snapshot(bot, data_dir, 1) if tracing else None
        before, cpu = Memory.of(bot.pid), cpu_seconds(bot.pid)
        made = Requests.of(sims.telegram)
        rate, latencies, answered = await closed_loop(sims.telegram, chats, messages, cap)
        used = cpu_seconds(bot.pid) - cpu
        peak = Memory.of(bot.pid).peak
        await anyio.sleep(settle)
        live = await threads_live(data_dir) if name == "threadgate" else None
        idle = Memory.of(bot.pid)
        requests = Requests.of(sims.telegram).per_message(made, max(1, answered))
        if first is not None:
            allocated(first, await snapshot(bot, data_dir, 2), chats)
        cpu_per_message = used / max(1, answered)
        return Active(
            rate, latencies, cpu_per_message, before, peak, idle, live, requests, answered
        )


async def closed_loop(
    telegram: BotAPISimulator, chats: int, messages: int, cap: float
) -> tuple[float, list[float], int]:
    """``bench_gateway.drive``, but given up after ``LOAD_TIMEOUT`` seconds without an
    answer, or ``cap`` seconds in all: (answers per second, latencies, messages answered)."""
    replies = Replies(telegram, chats * messages)
    latencies: list[float] = []
    last = time.monotonic()

    async def chat(chat_id: int) -> None:
        nonlocal last
        for index in range(messages):
            latencies.append(await replies.answer(replies.say(chat_id, f"ping {index}")))
            last = time.monotonic()

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for chat_id in range(FIRST_CHAT, FIRST_CHAT + chats):
            tg.start_soon(chat, chat_id)
        while len(latencies) < chats * messages:
            await anyio.sleep(1)
            now = time.monotonic()
            if now - last > LOAD_TIMEOUT or now - start > cap:
                why = f"no answer for {LOAD_TIMEOUT:.0f} s" if now - last > LOAD_TIMEOUT else ""
                print(f"{'':>12}(given up: {why or f'the cap, {cap:.0f} s'})")
                tg.cancel_scope.cancel()
                break
    replies.close()
    return len(latencies) / (last - start), latencies, len(latencies)


async def part_active(
    chats: int, messages: int, peers: list[str], rounds: int, settle: float, cap: float
) -> float:
    """Print the ``active`` part; return Threadgate's median throughput."""
    print(
        f"\n== active: {chats:,} threads at once, {messages} messages each, closed loop"
        f" ({', '.join([*peers, 'threadgate'])}; {rounds} round(s))"
    )
    bots = [*peers, "threadgate"]
    results: list[dict[str, Active]] = []
    for index in range(rounds):
        shift = index % len(bots)
        results.append(
            {
                name: await run_active(name, chats, messages, settle, cap)
                for name in bots[shift:] + bots[:shift]
            }
        )
    for name in bots:
        runs = sorted((r[name] for r in results), key=lambda a: a.cpu_per_message)
        m = runs[len(runs) // 2]
        live = "" if m.live is None else f", {m.live:,} thread actors live"
        if m.answered < chats * messages:
            live += f"; ONLY {m.answered:,} of {chats * messages:,} messages answered"
        print(
            f"{name:>10}: {m.rate:7.1f} msg/s   p50 {percentile(m.latencies, 50):6.2f} s"
            f"   p99 {percentile(m.latencies, 99):6.2f} s   cpu {m.cpu_per_message * 1000:5.2f}"
            f" ms/msg\n{'':>12}RSS {kib(m.before.rss)} before, peak {kib(m.peak)},"
            f" {kib(m.idle.rss)} idle{live}; per thread: {per(m.peak - m.before.rss, chats)}"
            f" at the peak, {per(m.idle.rss - m.before.rss, chats)} idle\n{'':>12}Bot API"
            f" requests per message: {Requests.text(m.requests)}"
        )
    for peer in peers:
        rates = [r["threadgate"].rate / r[peer].rate for r in results]
        cpus = [r["threadgate"].cpu_per_message / r[peer].cpu_per_message for r in results]
        print(
            f"threadgate / {peer}: throughput {statistics.median(rates):.2f}"
            f" (each round: {' '.join(f'{x:.2f}' for x in rates)}), cpu per message"
            f" {statistics.median(cpus):.2f} (each round: {' '.join(f'{x:.2f}' for x in cpus)})"
        )
    idle = statistics.median(
        (r["threadgate"].idle.rss - r["threadgate"].before.rss) / chats for r in results
    )
    verdict = "met" if idle <= IDLE_TARGET_KIB else f"NOT met, {idle / IDLE_TARGET_KIB:.1f}x"
    print(
        f"target: <= {IDLE_TARGET_KIB:.0f} KiB RSS per idle thread in memory:"
        f" {idle:.1f} KiB: {verdict}"
    )
    return statistics.median(r["threadgate"].rate for r in results)


async def snapshot(bot: Process, data_dir: str, number: int) -> tracemalloc.Snapshot:
    """Have the gateway write its ``number``-th tracemalloc snapshot; load it."""
    bot.send_signal(signal.SIGUSR1)
    path = Path(data_dir) / f"snapshot-{number}.tracemalloc"
    with anyio.fail_after(300):
        while True:
            with contextlib.suppress(OSError, EOFError, ValueError, pickle.UnpicklingError):
                return tracemalloc.Snapshot.load(str(path))
            await anyio.sleep(1)  # not written yet, or not whole


def allocated(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, threads: int) -> None:
    """Print where the memory still allocated after the load was allocated, per thread: the
    largest by line, and by call chain (the innermost six frames, callers first)."""
    for grouping in ("lineno", "traceback"):
        changes = after.compare_to(before, grouping)
        total = sum(change.size_diff for change in changes)
        print(
            f"{'':>12}tracemalloc, by {grouping}: {per(total / 1024, threads)} a thread; the most:"
        )
        for change in changes[: 15 if grouping == "lineno" else 8]:
            chain = " > ".join(where(frame) for frame in change.traceback[-6:])  # the callers
            print(
                f"{'':>14}{change.size_diff / threads:6.0f} B"
                f" {change.count_diff / threads:4.1f} blocks  {chain}"
            )


def where(frame: tracemalloc.Frame) -> str:
    """A frame as a short ``file:line``."""
    name = frame.filename.rpartition("site-packages/")[2].removeprefix(f"{ROOT}/")
    return f"{name.rpartition('/python3.11/')[2]}:{frame.lineno}"


# -- known -----------------------------------------------------------------------------------


async def populate(path: Path, count: int) -> None:
    """``count`` known threads, as a gateway leaves them: each chat's inbox entry, answered,
    its thread record, session and one exchange (written in batches of concurrent writes,
    which the store's writer commits together)."""
    store = Store(path)

    async def known(index: int) -> None:
        chat_id, message_id = FIRST_CHAT + index, 1
        key = ThreadKey(chat_id)
        session = f"bench-{chat_id}"
        payload = {"kind": "user", "text": "hello", "message_id": message_id}
        await store.accept(InboxEntry(index + 1, key, message_id, payload))
        record = ThreadRecord(
            session, run_seq=1, last_inputs=("hello",), recent=(message_id,), last_answered=True
        )
        exchange = Exchange(session, (Turn("user", "hello"), Turn("assistant", ANSWER)))
        await store.save(key, record, [Concluded(message_id, Outcome.ANSWERED, "")], exchange)

    try:
        for start in range(0, count, 500):
            async with anyio.create_task_group() as tg:
                for index in range(start, min(count, start + 500)):
                    tg.start_soon(known, index)
    finally:
        store.close()


def median_startup(runs: list[Startup]) -> Startup:
    return sorted(runs, key=lambda startup: startup.total)[len(runs) // 2]


async def part_known(known: int, touched: int, rounds: int, settle: float) -> Startup:
    """Print the ``known`` part; return the empty store's median start-up."""
    print(
        f"\n== known: {known:,} threads in the store; start-up, memory, and {touched:,} of"
        f" them touched, then passivated ({rounds} round(s))"
    )
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as full:
        began = time.perf_counter()
        await populate(Path(full) / "threadgate.sqlite3", known)
        size = files_size(full) / 2**20
        print(f"  (store written in {time.perf_counter() - began:.0f} s: {size:.0f} MiB)")
        startups: dict[str, list[Startup]] = {"empty": [], "known": []}
        memory: dict[str, list[int]] = {"empty": [], "known": []}
        order = [("empty", empty), ("known", full)]
        async with simulators(first_update=known + 1) as sims:
            for index in range(rounds):
                for label, data_dir in order[index % 2 :] + order[: index % 2]:
                    async with started_gateway(sims, data_dir, PASSIVATE_AFTER) as (bot, up, _):
                        startups[label].append(up)
                        await anyio.sleep(settle)
                        memory[label].append(Memory.of(bot.pid).rss)
                        if label == "known" and index == rounds - 1:
                            await touch_and_passivate(sims, bot, data_dir, touched, settle)
            report_log(full)
        empty_up, known_up = (median_startup(startups[label]) for label in ("empty", "known"))
        print(f"  start-up with {known:,} known threads: {known_up}")
        print(f"  start-up with an empty store: {empty_up}")
        if rounds > 1:
            for label, runs in startups.items():
                print(f"    {label}, each round: {' '.join(f'{u.total:.2f}' for u in runs)} s")
        print(
            f"  the known threads' part: {known_up.total - empty_up.total:+.2f} s"
            f" (setup and serving: {known_up.total - known_up.imports:.2f} s against"
            f" {empty_up.total - empty_up.imports:.2f} s)"
        )
        total = known_up.total
        ok = "met" if total < STARTUP_TARGET else f"NOT met, {total - STARTUP_TARGET:.2f} s over"
        print(
            f"  target: start-up < {STARTUP_TARGET:.0f} s with {known:,} known threads:"
            f" {total:.2f} s: {ok} (without the imports: {total - known_up.imports:.2f} s)"
        )
        rss_empty, rss_known = (statistics.median(memory[label]) for label in ("empty", "known"))
        print(
            f"  RSS once started: {kib(rss_known)} with them, {kib(rss_empty)} empty:"
            f" {per(rss_known - rss_empty, known)} per known thread not loaded"
        )
        return empty_up


async def touch_and_passivate(
    sims: Sims, bot: Process, data_dir: str, touched: int, settle: float
) -> None:
    before = Memory.of(bot.pid).rss
    rate, _, answered = await closed_loop(sims.telegram, touched, 1, REPLAY_CAP)
    if answered < touched:
        print(f"  ONLY {answered:,} of the {touched:,} touched answered")
    peak = Memory.of(bot.pid).peak
    waited = time.perf_counter()
    with anyio.fail_after(max(60.0, touched / 100)):
        while (live := await threads_live(data_dir)) > 0:  # noqa: ASYNC110 - another process
            await anyio.sleep(0.5)
    waited = time.perf_counter() - waited
    await anyio.sleep(settle)
    after = Memory.of(bot.pid).rss
    print(
        f"  touched {touched:,} known threads ({rate:.0f} msg/s): RSS {kib(before)} before,"
        f" peak {kib(peak)}, {kib(after)} once every thread actor was passivated"
        f" ({live} live, {waited:.0f} s after the last answer)"
    )
    print(
        f"  per touched thread: {per(peak - before, touched)} at the peak,"
        f" {per(after - before, touched)} once passivated"
    )
    passivated = (after - before) / touched
    verdict = (
        "met" if passivated <= IDLE_TARGET_KIB else f"NOT met, {passivated / IDLE_TARGET_KIB:.1f}x"
    )
    print(f"  target: <= {IDLE_TARGET_KIB:.0f} KiB RSS per passivated thread: {verdict}")


# -- crash -----------------------------------------------------------------------------------


async def part_crash(pending: int, empty: Startup | None, live_rate: float | None) -> None:
    """Print the ``crash`` part (``empty``: the empty store's start-up, else measured here;
    ``live_rate``: the live throughput to compare the replay with, if measured)."""
    print(f"\n== crash: {pending:,} messages pending in the inbox, SIGKILL, a new gateway replays")
    with tempfile.TemporaryDirectory() as data_dir:
        async with simulators() as sims:
            if empty is None:
                with tempfile.TemporaryDirectory() as empty_dir:
                    async with started_gateway(sims, empty_dir) as (_, empty, _):
                        pass
                print(f"  start-up with an empty store: {empty}")
            sims.llm.default = lambda _: Reply(hang=True)
            sims.llm.script("k", Reply(ANSWER))  # the warm-up's
            replies = Replies(sims.telegram, pending)
            async with bot_process("threadgate", sims, data_dir, patient=True) as bot:
                await answer_in(sims, sims.spare_chat())
                began = time.monotonic()
                said = [replies.say(FIRST_CHAT + index, "ping") for index in range(pending)]
                await until(lambda: sims.telegram.unconfirmed == 0, 600)  # all in the inbox
                took = time.monotonic() - began
                await anyio.sleep(1.0)  # the runs start, their records are saved
                os.kill(bot.pid, signal.SIGKILL)
                await bot.wait()
            late = f" (more than the gateway's patience, {PATIENT:.0f} s)" if took > PATIENT else ""
            print(
                f"  {pending:,} messages in the inbox {took:.1f} s after the first was sent"
                f" (the model never answering), then SIGKILL{late}"
            )
            store = Store(Path(data_dir) / "threadgate.sqlite3")
            try:
                unanswered = len(await store.unanswered())
            finally:
                store.close()
            print(
                f"  left unanswered in the inbox: {unanswered:,} (answered before the kill:"
                f" {len(replies.at)})"
            )
            sims.llm.default = lambda _: Reply(ANSWER)
            async with started_gateway(sims, data_dir) as (_, up, began):
                with anyio.move_on_after(REPLAY_CAP):
                    await replies.all()
                admin = discovery.read(Path(data_dir))
            answered = [replies.at[m] for m in said if m in replies.at]
            if len(answered) < pending:
                print(f"  ONLY {len(answered):,} of {pending:,} answered in {REPLAY_CAP:.0f} s")
            total = max(answered) - began
            report_log(data_dir)
        replay = total - up.imports - up.setup
        handed = handed_back(data_dir, admin.started_at if admin else None)
        print(
            f"  the new gateway: start-up {up}; the last of the {pending:,} answered"
            f" {total:.2f} s after its start (an empty store's start-up: {empty.total:.2f} s)"
        )
        print(
            f"  replay: {replay:.2f} s (from its admin endpoint listening, just before the"
            f" replay, to the last answer; a new message waited {up.total:.2f} s)"
        )
        if handed is not None:
            print(
                f"  every pending entry back in its thread {handed[0]:.2f} s after the admin"
                f" endpoint listened (log: {handed[1]})"
            )
        if live_rate:
            live = pending / live_rate
            print(
                f"  as many messages live (active's throughput): {live:.2f} s;"
                f" replay / live {replay / live:.2f}"
            )
        ok = "met" if replay < REPLAY_TARGET else f"NOT met, {replay - REPLAY_TARGET:.1f} s over"
        print(f"  target: replay of {pending:,} < {REPLAY_TARGET:.0f} s: {replay:.2f} s: {ok}")


def handed_back(data_dir: str, listening: float | None) -> tuple[float, str] | None:
    """When the new gateway's replay had handed every pending entry to its thread, in
    seconds after its admin endpoint listened (``scale_gateway.py``'s ``REPLAYED``), with
    its summary line; ``None`` if it logged none."""
    path = Path(data_dir) / REPLAYED
    lines = path.read_text().splitlines() if path.exists() and listening is not None else []
    for line in lines:
        at, _, message = line.partition(" ")
        if "start-up: replayed" in message and listening is not None:
            return float(at) - listening, message
    return None


def report_log(data_dir: str) -> None:
    """Say how many warnings and errors the gateway logged, the first of them, and what its
    start-up replayed."""
    path = Path(data_dir) / LOG
    lines = path.read_text().splitlines() if path.exists() else []
    bad = [line for line in lines if "| WARNING" in line or "| ERROR" in line]
    if bad:
        print(f"  (the gateway logged {len(bad)} warning or error line(s); the first: {bad[0]})")
    for line in lines:
        if "start-up: replayed" in line:
            print(f"  (log: {line.rpartition(' - ')[2]})")


async def main(args: argparse.Namespace) -> None:
    scale: float = args.scale
    parts = set(args.parts.split(","))
    peers = [p for p in args.peers.split(",") if p]
    active = max(2, round(ACTIVE * scale))
    known = max(2, round(KNOWN * scale))
    touched = args.touched if args.touched is not None else max(1, round(ACTIVE * scale))
    pending = max(1, round(PENDING * scale))
    if scale != 1:
        print(f"scale {scale}: {active:,} active, {known:,} known, {pending:,} pending threads")
    await compile_imports()
    rate: float | None = None
    startup: Startup | None = None
    began = time.monotonic()
    if "active" in parts:
        rate = await part_active(active, args.messages, peers, args.rounds, args.settle, args.cap)
        print(f"(active took {time.monotonic() - began:.0f} s)")
    if "known" in parts:
        startup = await part_known(known, min(touched, known), args.rounds, args.settle)
        print(f"(up to here: {time.monotonic() - began:.0f} s)")
    if "crash" in parts:
        await part_crash(pending, startup, rate)
        print(f"(all: {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="every count times this")
    parser.add_argument("--parts", default="active,known,crash", help="comma-separated")
    parser.add_argument(
        "--peers", default="baseline", help="bots of bench_gateway.py run in `active` as well"
    )
    parser.add_argument("--messages", type=int, default=1, help="per chat, in `active`")
    parser.add_argument(
        "--cap",
        type=float,
        default=300.0,
        help="seconds a bot's `active` load may take; then what was answered is measured",
    )
    parser.add_argument(
        "--touched", type=int, help="known threads that get a message (default: 10,000 x scale)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each; the median")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds to wait before reading memory"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="profile the gateway (cProfile, from its imports' end), its dumps in DIR (for a"
        " look, not for figures; the first gateway of `crash` is killed and leaves none)",
    )
    parser.add_argument(
        "--gateway-log",
        default="WARNING",
        help="the level the gateway logs at to gateway.log in its data directory",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="in `active`, Threadgate traces its allocations and the memory still allocated"
        " after the load is printed by line (slow: for a look, not for figures)",
    )
    args = parser.parse_args()
    if args.tracemalloc:
        os.environ[TRACE] = "1"
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE] = str(Path(args.profile).resolve())
    os.environ[GATEWAY_LOG] = args.gateway_log
    os.environ[FREEZE_BASELINE] = "1"  # the peers as bench_gateway.py runs them
    os.environ[TUNED_LIMITS] = "1"  # but the baseline keeps its connections (see there)
    anyio.run(main, args, backend="asyncio")
