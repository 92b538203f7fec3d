"""Usage in the store: tokens per UTC day, user, chat and model; messages counted once;
today and this month; a write that fails is a log line; old rows pruned. A real file."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from actors.thread.records import ThreadKey
from gateway.exceptions import StoreUnavailableError
from gateway.store.retention import DAY, USAGE_RETENTION_DAYS, Pruned, Retention, utc_day
from gateway.store.sqlite import Store
from gateway.store.usage import Totals, UsageStore
from providers.usage import Tokens, Usage
from tests.gateway.logs import captured_logs
from tests.gateway.store.conftest import Location, raw, refuse_inserts

pytestmark = pytest.mark.anyio
NOON_15TH = datetime.datetime(2026, 12, 15, 12, 0, tzinfo=datetime.UTC).timestamp()


@attrs.define
class WallClock:
    now: float

    def __call__(self) -> float:
        return self.now


@contextmanager
def usage_store(
    location: Location, clock: WallClock, busy_timeout: float = 5.0
) -> Iterator[tuple[UsageStore, Store]]:
    opened = Store(location, clock=clock, busy_timeout=busy_timeout)
    seen: list[Usage] = []
    try:
        yield UsageStore(opened, seen.append, clock=clock), opened
    finally:
        opened.close()


def test_days_are_utc_dates() -> None:
    assert utc_day(NOON_15TH) == "2026-12-15"
    just_before_midnight = datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    assert utc_day(just_before_midnight.timestamp()) == "2026-12-31"
    assert utc_day(just_before_midnight.timestamp() + 1) == "2027-01-01"


async def test_calls_add_up_per_day_user_chat_and_model(location: Location) -> None:
    clock = WallClock(NOON_15TH)
    recorded: list[Usage] = []
    store = Store(location, clock=clock)
    usage = UsageStore(store, recorded.append, clock=clock)
    try:
        await usage.record(Usage(-100, 42, "m1", Tokens(100, 20)))
        await usage.record(Usage(-100, 42, "m1", Tokens(50, 10, estimated=True)))
        await usage.record(Usage(-100, 42, "m2", Tokens(7, 3)))
        await usage.record(Usage(-200, 42, "m1", Tokens(1, 1)))
        await usage.record(Usage(-100, None, "m1", Tokens(9, 9)))
        await usage.record(Usage(-100, 43, "m1", Tokens(1000, 1)))
        clock.now -= DAY  # yesterday's does not count today
        await usage.record(Usage(-100, 42, "m1", Tokens(5000, 5000)))
        clock.now += DAY
        with raw(location) as db:
            rows = db.execute(
                "SELECT day, user_id, chat_id, model, prompt, completion, estimated, runs"
                " FROM usage_tokens WHERE day = '2026-12-15' AND user_id = 42 AND chat_id = -100"
                " AND model = 'm1'"
            ).fetchall()
        assert rows == [("2026-12-15", 42, -100, "m1", 150, 30, 60, 2)]
        assert len(recorded) == 7, "every usage told (the metrics count them)"
        today = await usage.user_today(42)
        assert today == Totals(messages=0, prompt=158, completion=34, estimated=60, runs=4)
        report = await usage.report(42)
        mine = report.today.user(42)
        assert [model for model, _ in mine.models] == ["m1", "m2"]
        assert mine.totals.tokens == 192
        assert report.month.user(42).totals.tokens == 192 + 10_000
        assert [u.user_id for u in report.today.users] == [42], "only the sender's"
        everyone = await usage.report(everyone=True)
        assert [u.user_id for u in everyone.today.users] == [43, 42, None], "most tokens first"
        assert everyone.today.totals.tokens == 192 + 18 + 1001
        assert dict(everyone.today.models())["m1"].runs == 5
    finally:
        store.close()


async def test_a_message_is_counted_once_however_often_it_is_delivered(location: Location) -> None:
    clock = WallClock(NOON_15TH)
    with usage_store(location, clock) as (usage, _):
        key = ThreadKey(-100, 3)
        await usage.count_message(key, 11, 42)
        await usage.count_message(key, 11, 42)  # the start-up replay delivers it again
        await usage.count_message(key, 12, 42)
        await usage.count_message(ThreadKey(-200), 11, 42)  # another chat's message 11
        await usage.count_message(key, 13, 43)
        await usage.count_message(key, 14, None)
        assert (await usage.user_today(42)).messages == 3
        clock.now += DAY
        assert (await usage.user_today(42)).messages == 0, "a new UTC day"
        await usage.count_message(key, 15, 42)
        report = await usage.report(42)
        assert report.today.user(42).totals.messages == 1
        assert report.month.user(42).totals.messages == 4
        assert (report.today.first, report.month.first) == ("2026-12-16", "2026-12-01")
        everyone = await usage.report(everyone=True)
        assert {u.user_id: u.totals.messages for u in everyone.month.users} == {
            42: 4,
            43: 1,
            None: 1,
        }


async def test_last_month_is_not_this_month(location: Location) -> None:
    clock = WallClock(NOON_15TH - 15 * DAY)  # 30 November
    with usage_store(location, clock) as (usage, _):
        await usage.record(Usage(1, 42, "m", Tokens(10, 10)))
        clock.now = NOON_15TH
        await usage.record(Usage(1, 42, "m", Tokens(1, 1)))
        report = await usage.report(42)
        assert report.month.user(42).totals.tokens == 2


async def test_a_usage_the_store_cannot_write_is_a_log_line_not_a_failed_run(
    tmp_path: Path,
) -> None:
    clock = WallClock(NOON_15TH)
    with usage_store(tmp_path / "db.sqlite3", clock, busy_timeout=0.1) as (usage, _):
        holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with captured_logs("ERROR") as logs:
                await usage.record(Usage(-100, 42, "m1", Tokens(100, 20)))
            with pytest.raises(StoreUnavailableError):
                await usage.count_message(ThreadKey(-100), 1, 42)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert any("usage of m1 in chat -100 not recorded (120 tokens)" in x for x in logs)
        assert (await usage.user_today(42)).tokens == 0


async def test_a_usage_the_database_refuses_is_a_log_line_not_a_failed_run(
    location: Location,
) -> None:
    clock = WallClock(NOON_15TH)
    with usage_store(location, clock) as (usage, _):
        refuse_inserts(location, "usage_tokens")
        with captured_logs("ERROR") as logs:
            await usage.record(Usage(-100, 42, "m1", Tokens(100, 20)))
        assert any("usage of m1 in chat -100 not recorded (120 tokens)" in x for x in logs)
        assert all("password" not in x for x in logs)
        assert (await usage.user_today(42)).tokens == 0


async def test_usage_older_than_the_retention_is_pruned(location: Location) -> None:
    clock = WallClock(NOON_15TH - (USAGE_RETENTION_DAYS + 2) * DAY)
    with usage_store(location, clock) as (usage, store):
        await usage.record(Usage(1, 42, "m", Tokens(10, 10)))
        await usage.count_message(ThreadKey(1), 1, 42)
        clock.now = NOON_15TH - (USAGE_RETENTION_DAYS - 2) * DAY
        await usage.record(Usage(1, 42, "m", Tokens(1, 1)))
        await usage.count_message(ThreadKey(1), 2, 42)
        pruned = await store.prune(Retention(None, None, None), NOON_15TH)
        assert pruned == Pruned(usage=2)
        with raw(location) as db:
            days = db.execute(
                "SELECT day FROM usage_tokens UNION ALL SELECT day FROM usage_messages"
            ).fetchall()
        kept = utc_day(NOON_15TH - (USAGE_RETENTION_DAYS - 2) * DAY)
        assert days == [(kept,), (kept,)]
        keep_all = Retention(None, None, None, usage=None)
        assert await store.prune(keep_all, NOON_15TH + 1000 * DAY) == Pruned()
