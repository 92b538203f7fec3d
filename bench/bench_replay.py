"""The start-up replay alone: how long ``Delivery.replay()`` takes to hand N pending inbox
entries back to their threads, and how many store reads and writes it makes.

    python bench/bench_replay.py [--entries 10000] [--held 1.0] [--rounds 3] [--usage]

In process, no simulators: a SQLite store in a temporary folder with ``--entries`` unanswered
entries, one per private chat; ``--held`` of them (a fraction) are held by their thread's
record (the run had started before the crash: starting the thread resumes it) and the others
are delivered again. The threads are actors that only note what they get (what a thread
does next is the rest of a crash recovery, measured end to end by ``bench_scale.py --parts
crash``). ``--usage``: with the daily-usage gate the gateway wires (each delivered message
counted: a write). Prints, per round, the seconds from the call to every entry being in its
thread's mailbox, and the store's reads and writes (from its statistics, where it has them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: this checkout's code

from actors import Actor, ActorContext, Supervisor  # noqa: E402
from actors.thread.messages import Resume, UserMessage  # noqa: E402
from actors.thread.records import PendingInput, ThreadKey, ThreadRecord  # noqa: E402
from gateway.config import LimitsConfig  # noqa: E402
from gateway.ops.metrics import Metrics  # noqa: E402
from gateway.store import InboxEntry, Store  # noqa: E402
from gateway.store.usage import UsageStore  # noqa: E402
from gateway.telegram.delivery import Delivery  # noqa: E402
from gateway.telegram.limits import UsageGate  # noqa: E402
from gateway.telegram.outbox import TelegramOutbox  # noqa: E402
from gateway.telegram.refusals import Refusals  # noqa: E402
from gateway.telegram.routing import to_payload  # noqa: E402

FIRST_CHAT = 10_001


class Noting(Actor[object]):
    """A thread that counts what it is handed."""

    def __init__(self, got: list[int]) -> None:
        self._got = got

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        if isinstance(message, UserMessage | Resume):
            self._got[0] += 1
        return None


class NoSender(Actor[object]):
    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        raise AssertionError(f"nothing is sent here: {message!r}")


async def fill(store: Store, entries: int, held: float) -> None:
    """``entries`` unanswered entries, the first ``held`` of them held by their records."""
    holding = round(entries * held)

    async def one(index: int) -> None:
        key, message_id = ThreadKey(FIRST_CHAT + index), 1
        message = UserMessage(message_id, "ping", FIRST_CHAT + index)
        await store.accept(InboxEntry(index + 1, key, message_id, to_payload(message)))
        if index < holding:
            record = ThreadRecord("s", run_seq=1, in_flight=(PendingInput(message_id, "ping"),))
            await store.save(key, record)

    async with anyio.create_task_group() as tasks:  # concurrent: the writer batches them
        for index in range(entries):
            tasks.start_soon(one, index)


def counts(store: Store) -> tuple[int, int]:
    """The store's reads (0 where it does not count them) and writes so far."""
    stats = store.statistics()
    return getattr(stats, "reads", 0), stats.writes


async def read_alone(store: Store) -> float | None:
    """Seconds the replay's read takes alone (``None``: a store without ``pending``)."""
    pending = getattr(store, "pending", None)
    if pending is None:
        return None
    began = time.perf_counter()
    await pending()
    return time.perf_counter() - began


async def one_round(entries: int, held: float, usage: bool) -> tuple[float, float | None, int, int]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "threadgate.sqlite3")
        try:
            await fill(store, entries, held)
            read = await read_alone(store)
            got = [0]
            no_senders: Supervisor[int] = Supervisor(lambda _chat: NoSender())
            noting: Supervisor[ThreadKey] = Supervisor(lambda _key: Noting(got))
            async with no_senders as senders, noting as threads:
                refusals = Refusals(store, TelegramOutbox(senders, Metrics()))
                gate = None
                if usage:
                    gate = UsageGate(UsageStore(store), store, LimitsConfig(), frozenset())
                delivery = Delivery(threads, store, refusals, frozenset(), list, usage=gate)
                reads, writes = counts(store)
                began = time.perf_counter()
                await delivery.replay()
                while got[0] < entries:  # noqa: ASYNC110 - a count many actors add to
                    await anyio.sleep(0.001)
                took = time.perf_counter() - began
                after = counts(store)
                refusals.close()
                await refusals.run()
            return took, read, after[0] - reads, after[1] - writes
        finally:
            store.close()


async def main(args: argparse.Namespace) -> None:
    held = f"{args.held:.0%} held by their records"
    print(f"replay of {args.entries:,} pending entries ({held}; usage gate: {args.usage})")
    took = []
    for number in range(1, args.rounds + 1):
        seconds, read, reads, writes = await one_round(args.entries, args.held, args.usage)
        took.append(seconds)
        per = seconds / args.entries * 1e6
        alone = "" if read is None else f" (its read alone: {read:.3f} s)"
        print(
            f"  round {number}: {seconds:.3f} s to hand them back ({per:.0f} us an entry)"
            f"{alone}; store reads {reads:,}, writes {writes:,}"
        )
    print(f"  median: {statistics.median(took):.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--held", type=float, default=1.0, help="fraction held by records")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--usage", action="store_true", help="with the daily-usage gate")
    anyio.run(main, parser.parse_args())
