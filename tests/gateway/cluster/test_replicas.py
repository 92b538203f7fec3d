"""Several gateway processes on one PostgreSQL database: a replica killed or paused mid-run.

The harness (:mod:`tests.gateway.cluster.replicas`) is checked on its own with one process on
SQLite.
"""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.gateway.cluster.replicas import CHATS, STEP_DOWN, cluster, wait

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gateway-processes")]
"""Whole gateway processes: one such test at a time (``make test``'s ``--dist loadgroup``),
so their start-ups (seconds of CPU each) do not crowd each other and the tests beside them."""

TTL = 3.0
"""The lease TTL of the replicas here (the default is 10 s): failovers in seconds."""
SLACK = 8.0
"""How long after a TTL a moved chat may wait for its answer: a lease tick (TTL/3), the
replay, a run of the slow model (about 2 s), on a machine whose two cores run everything."""


def cluster_seen(admin_port: int) -> set[str]:
    """The live replicas a replica's ``/status`` shows holding shards, if they hold all."""
    status = httpx.get(f"http://127.0.0.1:{admin_port}/status", timeout=5).json()
    cluster = status.get("cluster") or {}
    replicas = [r for r in cluster.get("replicas", []) if r["alive"]]
    if sum(r["shards_held"] for r in replicas) != cluster.get("shards_total"):
        return set()
    if any(r["threads_live"] is None for r in replicas):
        return set()  # every replica's thread count, as it last wrote it
    return {r["id"] for r in replicas if r["shards_held"]}


def sees(admin_port: int, names: set[str]) -> bool:
    return cluster_seen(admin_port) == names


def answered(texts: list[str], text: str) -> bool:
    """Whether the bot's messages hold the whole answer to the user's ``text``."""
    return any(t.startswith(f"You said: {text}") and t.endswith(" END") for t in texts)


@pytest.mark.timeout(300)  # a start alone can take a minute on two busy cores
def test_the_harness_runs_one_replica_on_sqlite_answering_30_chats(tmp_path: Path) -> None:
    with cluster(tmp_path) as running:
        [solo] = running.start("solo")
        said = running.say("hello")
        ledger = running.wait_concluded(said, timeout=90)
        assert len(said) == len(CHATS)
        assert ledger.not_exactly_once() == {}
        assert set(ledger.outcomes) == said, "the ledger holds the accepted messages only"
        assert {o for seen in ledger.outcomes.values() for o in seen} == {"answered"}
        for chat in CHATS:
            assert answered(running.telegram.texts(chat), f"hello in {chat}"), chat
        assert running.telegram.chats_of("solo") == set(CHATS), "every write was tapped"
        assert running.telegram.poller(since=0) == {"solo"}
        assert solo.stop() == 0, solo.log_text()[-2000:]
    assert "Traceback" not in solo.log_text()


@pytest.mark.timeout(480)
def test_failover_a_killed_replica_has_its_chats_answered_by_the_others(
    tmp_path: Path, postgres_url: str
) -> None:
    names = ("a", "b", "c")
    with cluster(tmp_path, postgres_url, lease_ttl=TTL) as running:
        replicas = running.start(*names)
        running.wait_balanced(names)
        # What operators see: every replica's /status and /metrics tell the same cluster.
        for replica in replicas:
            port = replica.admin_port
            wait(partial(sees, port, set(names)), 30, "status")
            metrics = httpx.get(f"http://127.0.0.1:{replica.admin_port}/metrics", timeout=5).text
            assert "threadgate_replicas_live 3.0" in metrics
        started = time.monotonic()
        first = running.say("first")
        # The poller is the victim: its chats and the intake both move.
        wait(lambda: bool(running.telegram.poller(started)), 20, "a replica polls")
        victim = sorted(running.telegram.poller(started))[0]
        wait(lambda: len(running.telegram.chats_of(victim, started)) >= 3, 30, "runs under way")
        killed_at = time.monotonic()
        running.replicas[victim].kill()
        moved = running.telegram.chats_of(victim, started)
        second = running.say("second")
        ledger = running.wait_concluded(first | second, timeout=TTL + SLACK + 60)
        assert ledger.not_exactly_once() == {}, "every accepted message: one final outcome"
        survivors = [n for n in names if n != victim]
        for chat in moved:
            later = running.telegram.writes(chats=[chat], since=killed_at)
            assert later, f"nobody answered chat {chat} after the kill"
            assert {c.replica for c in later} <= set(survivors)
            took = later[0].at - killed_at
            assert took <= TTL + SLACK, f"chat {chat} waited {took:.1f} s after the kill"
            assert answered(running.telegram.texts(chat), f"second in {chat}"), chat
        running.wait_balanced(survivors)


@pytest.mark.timeout(480)
def test_fencing_a_paused_replica_steps_down_and_sends_nothing_for_moved_chats(
    tmp_path: Path, postgres_url: str
) -> None:
    with cluster(tmp_path, postgres_url, lease_ttl=TTL) as running:
        first_replica, other = running.start("a", "b")
        running.wait_balanced(["a", "b"])
        first = running.say("first")
        running.wait_concluded(first, timeout=90)
        held = running.telegram.chats_of("a")
        assert held, "a answered some chats"
        started = time.monotonic()
        second = running.say("second")
        wait(lambda: bool(running.telegram.chats_of("a", started)), 30, "a is answering")
        first_replica.pause()
        paused_at = time.monotonic()
        running.wait_balanced(["b"], timeout=TTL * 3 + 10)  # a's leases lapsed, b took them
        ledger = running.wait_concluded(first | second, timeout=60)
        moved = held & running.telegram.chats_of("b", paused_at)
        assert moved, "b answered a's chats while a was paused"
        for chat in moved:
            assert answered(running.telegram.texts(chat), f"second in {chat}"), chat
        first_replica.resume()
        resumed_at = time.monotonic()
        wait(lambda: bool(STEP_DOWN.search(first_replica.log_text())), TTL * 3, "a steps down")
        time.sleep(TTL)  # room for a stale run of a's to finish, were it not fenced
        stale = running.telegram.writes("a", chats=moved, since=resumed_at)
        assert stale == [], f"a wrote in moved chats after SIGCONT: {stale}"
        after = running.ledger()
        assert after.not_exactly_once() == {}, "a's stale outcomes were refused"
        for key, seen in ledger.outcomes.items():
            assert after.outcomes[key] == seen, f"an outcome was added to {key} after it ended"
        assert first_replica.alive(), "a paused replica steps down; it does not exit"
        assert other.alive()


def shards_held(database_url: str, replica: str) -> int:
    """How many shards ``replica`` holds now, by the database's clock."""
    query = (
        "SELECT count(*) FROM shard_leases WHERE owner = %s"
        " AND expires_at > extract(epoch FROM clock_timestamp())"
    )
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as db:
        row = db.execute(query, (replica,)).fetchone()
    return 0 if row is None else int(row[0])


@pytest.mark.timeout(480)
def test_a_rolling_restart_hands_the_shards_over_and_answers_everything_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """A replica joins while another answers, and takes its share from it; then the first is
    stopped (SIGINT, as a deploy does): it exits 0 and leaves its shards, which the other
    takes at its next round, long before their leases would have expired."""
    with cluster(tmp_path, postgres_url, lease_ttl=TTL) as running:
        [first_replica] = running.start("a")
        running.wait_balanced(["a"])
        first = running.say("first")
        [second_replica] = running.start("b")
        running.wait_balanced(["a", "b"])
        assert 0 < shards_held(postgres_url, "b") < 256, "b took its share from a"
        started = time.monotonic()
        second = running.say("second")
        wait(lambda: bool(running.telegram.chats_of("a", started)), 30, "a is answering")
        stopped_at = time.monotonic()
        assert first_replica.stop(timeout=60) == 0, first_replica.log_text()[-3000:]
        wait(lambda: shards_held(postgres_url, "b") == 256, TTL * 4, "b holds every shard")
        ledger = running.wait_concluded(first | second, timeout=90)
        assert ledger.not_exactly_once() == {}, "every accepted message: one final outcome"
        for chat in CHATS:
            assert answered(running.telegram.texts(chat), f"second in {chat}"), chat
        log = first_replica.log_text()
        assert "left its shards to the others" in log
        assert re.search(r"released \d+ shard\(s\) \(leaving\)", log), "released, not expired"
        assert "Traceback" not in log
        assert time.monotonic() - stopped_at < 120
        assert second_replica.alive()
