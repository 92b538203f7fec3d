"""Replicas on one PostgreSQL against the single SQLite process, and the failover time.

    python bench/bench_replicas.py [--chats 30] [--messages 10] [--replicas 1,2,3]
                                   [--trials 5] [--ttl 3] [--sqlite-only]

Every gateway is a real ``threadgate run`` process (``tests.gateway.cluster.replicas``), on
the Bot API simulator and an instant local model (one streamed word) run in this process,
with Telegram's pacing turned off (it would measure Telegram's limits, not the gateway). The
PostgreSQL server is a throwaway one (``tests.postgres.PostgresServer``: ``initdb`` in a
temporary folder, fsync off), each run on a fresh database.

Throughput: the closed loop of ``bench_gateway``: each chat sends its next message when the
previous one was answered. First the single process on SQLite (the default), then 1, 2 and 3
replicas on one PostgreSQL; printed are the messages per second and the ratio to the SQLite
process of the same run (the figure to read: machines differ, ratios in one run less so). On
one machine the replicas share its cores: more replicas add no CPU here, only coordination.

Failover (``--trials`` times, three replicas, lease TTL ``--ttl``): every chat answered once,
one replica (the one polling) killed with SIGKILL, a new message in each of its chats; the
time from the kill to the first answer in each moved chat. Printed: its distribution over all
trials (min, median, p90, max), to be read against the TTL.

Replicas need the wiring of issue 21 (``store.url`` on PostgreSQL, shard leases): without it
the SQLite baseline is measured and printed, and then the benchmark stops with exit status
1, saying "replicas need store.url support".
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` from the root

from gateway.demo.botapi_sim import SentMessage
from gateway.demo.model_sim import Reply
from tests.gateway.cluster.replicas import Cluster, cluster
from tests.postgres import PostgresServer, bindir

ANSWER = "pong"
"""What the model answers; the bot's reply with this text is the one that counts."""
UNPACED = """
[telegram]
poll_timeout = 1
send_rate = 1000000.0
chat_send_interval = 0.000001
group_sends_per_minute = 1000000
edit_interval = 0.000001

[llm]
context_budget = 0
"""
"""The replicas' settings: no Telegram pacing, no history in the model's requests."""
UNSUPPORTED = "replicas need store.url support"


def instant(messages: list[dict[str, Any]]) -> Reply:
    return Reply(ANSWER)


class Answers:
    """The bot's answers (``ANSWER`` replying to a user's message) as they are sent."""

    def __init__(self, running: Cluster) -> None:
        self.running = running
        self.queue: queue.Queue[tuple[int, int, float]] = queue.Queue()
        running.telegram.listeners.append(self._on_send)

    def _on_send(self, event: str, sent: SentMessage) -> None:
        if event == "sent" and sent.text == ANSWER and sent.reply_to is not None:
            self.queue.put((sent.chat_id, sent.reply_to, sent.at))

    def close(self) -> None:
        self.running.telegram.listeners.remove(self._on_send)


def closed_loop(running: Cluster, chats: list[int], messages: int, timeout: float = 120) -> float:
    """Each chat sends its next message once the previous one was answered; messages/s."""
    answers = Answers(running)
    say = running.telegram.say
    waiting = {
        chat: say(f"ping 0 in {chat}", chat_id=chat, user_id=chat, forum=False) for chat in chats
    }
    sent = dict.fromkeys(chats, 1)
    done, total = 0, len(chats) * messages
    start = time.perf_counter()
    try:
        while done < total:
            chat, replied, _ = answers.queue.get(timeout=timeout)
            if waiting.get(chat) != replied:
                continue  # a second answer (a replay), or a message already counted
            done += 1
            if sent[chat] < messages:
                waiting[chat] = say(
                    f"ping {sent[chat]} in {chat}", chat_id=chat, user_id=chat, forum=False
                )
                sent[chat] += 1
            else:
                del waiting[chat]
    except queue.Empty:
        raise TimeoutError(f"no answer for {timeout:.0f} s ({done} of {total} answered)") from None
    finally:
        answers.close()
    return total / (time.perf_counter() - start)


@contextmanager
def gateways(root: Path, database_url: str, count: int, ttl: float) -> Iterator[Cluster]:
    """``count`` replicas started, their leases balanced (on PostgreSQL), and warmed up."""
    with cluster(root, database_url, lease_ttl=ttl, reply=instant, config_toml=UNPACED) as running:
        names = [f"r{index}" for index in range(1, count + 1)]
        running.start(*names)
        if database_url:
            running.wait_balanced(names)
        closed_loop(running, [9_001, 9_002, 9_003], 2)  # imports, connections, the first run
        yield running


def throughput(
    server: PostgresServer | None, count: int, chats: int, messages: int, ttl: float
) -> float:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-replicas-")))
        url = stack.enter_context(server.database()) if server is not None else ""
        running = stack.enter_context(gateways(root, url, count, ttl))
        return closed_loop(running, list(range(10_001, 10_001 + chats)), messages)


def failover(server: PostgresServer, chats: int, ttl: float) -> list[float]:
    """One trial: seconds from the kill to the first answer in each moved chat."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-failover-")))
        url = stack.enter_context(server.database())
        running = stack.enter_context(gateways(root, url, 3, ttl))
        ids = list(range(20_001, 20_001 + chats))
        since = time.monotonic()
        closed_loop(running, ids, 1)
        polling = running.telegram.poller(since)
        victim = sorted(polling)[0] if polling else "r1"
        moved = running.telegram.chats_of(victim, since) & set(ids)
        answers = Answers(running)
        running.replicas[victim].kill()
        killed_at = time.monotonic()
        said = {
            running.telegram.say(f"after in {chat}", chat_id=chat, user_id=chat, forum=False): chat
            for chat in moved
        }
        first: dict[int, float] = {}
        deadline = killed_at + 10 * ttl + 60
        while len(first) < len(said) and time.monotonic() < deadline:
            try:
                chat, replied, at = answers.queue.get(timeout=1)
            except queue.Empty:
                continue
            if replied in said and chat not in first:
                first[chat] = at - killed_at
        answers.close()
        if len(first) < len(said):
            raise TimeoutError(f"{len(said) - len(first)} moved chats never answered")
        return sorted(first.values())


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=30)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--replicas", default="1,2,3", help="replica counts on PostgreSQL")
    parser.add_argument("--trials", type=int, default=5, help="failover trials (0: none)")
    parser.add_argument("--ttl", type=float, default=3.0, help="the lease TTL, seconds")
    parser.add_argument("--sqlite-only", action="store_true", help="the baseline alone")
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",") if n]

    print(f"closed loop: {args.chats} chats x {args.messages} messages, instant model")
    baseline = throughput(None, 1, args.chats, args.messages, args.ttl)
    print(f"{'setup':<28}{'msg/s':>10}{'ratio':>8}")
    print(f"{'1 process, SQLite':<28}{baseline:>10.1f}{1.0:>8.2f}")
    if args.sqlite_only:
        return 0
    found = bindir()
    if found is None:
        print("no PostgreSQL here (no pg_ctl): apt-get install postgresql", file=sys.stderr)
        return 1
    with PostgresServer.started(found) as server:
        for count in counts:
            try:
                rate = throughput(server, count, args.chats, args.messages, args.ttl)
            except TimeoutError as error:
                said = str(error)
                print(said if UNSUPPORTED in said else f"{UNSUPPORTED}? {said}", file=sys.stderr)
                return 1
            label = f"{count} replica{'s' if count > 1 else ''}, PostgreSQL"
            print(f"{label:<28}{rate:>10.1f}{rate / baseline:>8.2f}")
        if args.trials <= 0:
            return 0
        times: list[float] = []
        for trial in range(1, args.trials + 1):
            try:
                took = failover(server, args.chats, args.ttl)
            except TimeoutError as error:
                print(f"failover trial {trial}: {error}", file=sys.stderr)
                return 1
            print(
                f"failover trial {trial}: {len(took)} moved chats, first answer after"
                f" {took[0]:.2f} s, last after {took[-1]:.2f} s"
            )
            times.extend(took)
        print(
            f"\nfailover, kill to first answer in a moved chat (TTL {args.ttl:g} s,"
            f" {len(times)} chats over {args.trials} trials):"
        )
        print(f"{'min':>8}{'median':>8}{'p90':>8}{'max':>8}  (seconds)")
        print(
            f"{min(times):>8.2f}{statistics.median(times):>8.2f}"
            f"{percentile(times, 90):>8.2f}{max(times):>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
