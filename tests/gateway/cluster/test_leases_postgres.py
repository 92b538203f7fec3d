"""The lease statements and the fence on a real PostgreSQL server, through a plain psycopg
connection with ``?`` placeholders (as the store's PostgreSQL adapter runs them): the DDL,
the compare-and-set statements, and the fence's ``FOR SHARE``, which makes a takeover wait
for a fenced write to commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from gateway.cluster import leases as sql
from gateway.cluster.fence import LeaseFence
from gateway.cluster.schema import create
from gateway.exceptions import ShardMovedError
from gateway.store.fence import Cursor


class Placeholders:
    """A psycopg connection taking ``?`` placeholders (the store's statements' style)."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.db.execute(statement.replace("?", "%s"), tuple(parameters))


@pytest.fixture
def connections(postgres_url: str) -> Iterator[tuple[Placeholders, Placeholders]]:
    first = psycopg.connect(postgres_url, autocommit=True)
    second = psycopg.connect(postgres_url, autocommit=True)
    with first, second:
        yield Placeholders(first), Placeholders(second)


def test_the_statements_on_postgresql(connections: tuple[Placeholders, Placeholders]) -> None:
    db, _ = connections
    create(db, "postgresql", 4)
    create(db, "postgresql", 4)  # idempotent
    assert [lease.key for lease in sql.shard_leases(db)] == [0, 1, 2, 3]
    assert sql.heartbeat(db, "a", "a-1", 100.0, 100.0)
    assert sql.heartbeat(db, "b", "b-1", 101.0, 101.0)
    assert not sql.heartbeat(db, "a", "a-0", 90.0, 104.0)  # an older process: superseded
    assert sql.heartbeat(db, "a", "a-1", 100.0, 105.0)
    assert sql.live_replicas(db, 111.5, 10.0) == ("a",)
    assert sql.acquire(db, 2, "a", 100.0, 10.0) == 1
    assert sql.acquire(db, 2, "b", 109.0, 10.0) is None
    assert sql.renew(db, 2, "a", 1, 109.0, 10.0)
    assert sql.acquire(db, 2, "b", 119.0, 10.0) == 2
    assert not sql.renew(db, 2, "a", 1, 120.0, 10.0)
    assert not sql.release(db, 2, "a", 1)
    assert sql.release(db, 2, "b", 2)
    assert sql.holder(db, 2) == ("", 2)
    assert sql.acquire(db, 2, "a", 120.0, 10.0) == 3
    assert sql.acquire(db, 2, "a", 130.0, 10.0) == 4  # the same id again (a restart)
    assert not sql.renew(db, 2, "a", 3, 131.0, 10.0)  # the older epoch: lost
    assert sql.acquire_named(db, "poller", "a", 100.0, 10.0) == 1
    assert sql.acquire_named(db, "poller", "b", 100.0, 10.0) is None
    assert sql.renew_named(db, "poller", "a", 1, 105.0, 10.0)
    assert sql.release_named(db, "poller", "a", 1)
    named = sql.named_lease(db, "poller")
    assert named is not None
    assert (named.owner, named.epoch) == ("", 1)
    sql.forget_replica(db, "a", "a-0")  # not the holder's: kept
    assert sql.live_replicas(db, 105.0, 10.0) == ("a", "b")
    sql.forget_replica(db, "a", "a-1")
    assert sql.live_replicas(db, 105.0, 10.0) == ("b",)


Pair = tuple[Placeholders, Placeholders]


def test_a_takeover_waits_for_a_fenced_write(connections: Pair) -> None:
    writer, taker = connections
    create(writer, "postgresql", 4)
    epoch = sql.acquire(writer, 1, "a", 100.0, 10.0)
    fence = LeaseFence("a", "postgresql")
    fence.bind({1: epoch}.get)
    taker.execute("SET lock_timeout = '200ms'")
    with writer.db.transaction():
        fence.check(writer, 1)  # FOR SHARE: the row is locked until the commit
        with pytest.raises(psycopg.errors.LockNotAvailable):  # noqa: SIM117
            with taker.db.transaction():
                sql.acquire(taker, 1, "b", 200.0, 10.0)  # expired, but the write holds it
    assert sql.acquire(taker, 1, "b", 200.0, 10.0) == 2  # after the commit
    with pytest.raises(ShardMovedError) as moved, writer.db.transaction():
        fence.check(writer, 1)
    assert (moved.value.epoch, moved.value.owner) == (1, "b")
