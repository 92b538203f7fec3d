"""Credential pools of several replicas on one store: a key state one saves, all adopt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from providers.exceptions import KeyRejectedError, QuotaExhaustedError, RateLimitedError
from providers.pool import CredentialPool, KeyState, SavedKeyState
from tests.gateway.logs import captured_logs
from tests.providers.test_pool import KEYS, DictStore

pytestmark = pytest.mark.anyio


class Told:
    """The ``on_saved`` hook: records each save's notice (the gateway's bus would send it)."""

    def __init__(self, *, fails: bool = False) -> None:
        self.names: list[str] = []
        self.fails = fails

    async def __call__(self, name: str) -> None:
        self.names.append(name)
        if self.fails:
            raise ConnectionError("scripted: the bus is down")


def states(pool: CredentialPool) -> list[KeyState]:
    return [k.state for k in pool.status().keys]


@asynccontextmanager
async def replicas(store: DictStore, *told: Told) -> AsyncIterator[list[CredentialPool]]:
    pools = [CredentialPool("test", KEYS, store=store, on_saved=hook) for hook in told]
    async with anyio.create_task_group() as tasks:
        for pool in pools:
            await pool.restore()
            tasks.start_soon(pool.run, lambda: None)
        yield pools
        tasks.cancel_scope.cancel()


async def test_a_402_seen_by_one_replica_rests_the_key_for_all() -> None:
    store, told_a, told_b = DictStore(), Told(), Told()
    async with replicas(store, told_a, told_b) as (a, b):
        a.report_failure(KEYS[0], QuotaExhaustedError("HTTP 402"))
        await anyio.wait_all_tasks_blocked()
        assert told_a.names == ["test"]  # saved, then the others told
        assert states(b) == [KeyState.USABLE] * 3  # not polled: b waits to be told
        with captured_logs() as lines:
            b.refresh_soon()  # what the bus's handler does on b
            await anyio.wait_all_tasks_blocked()
        assert states(b) == [KeyState.COOLING, KeyState.USABLE, KeyState.USABLE]
        assert b.status().keys[0].cooldown_left == pytest.approx(3600, abs=1)
        assert b.acquire().label == "k1"
        assert told_b.names == []  # adopting is no change of its own: nothing to tell
        assert any("key k0 is cooling (saved by another replica" in line for line in lines)
        assert not any(key.secret in line for key in KEYS for line in lines)


async def test_a_save_keeps_what_another_replica_saved_and_both_end_alike() -> None:
    store, told_a, told_b = DictStore(), Told(), Told()
    async with replicas(store, told_a, told_b) as (a, b):
        a.report_failure(KEYS[0], KeyRejectedError("HTTP 401"))
        await anyio.wait_all_tasks_blocked()
        b.report_failure(KEYS[1], RateLimitedError("HTTP 429", retry_after=600))  # b not told
        await anyio.wait_all_tasks_blocked()
        saved = {s.label: s for s in store.saved["test"]}
        assert saved["k0"].disabled  # b's save kept a's change
        assert saved["k1"].until is not None
        assert states(b) == [KeyState.DISABLED, KeyState.COOLING, KeyState.USABLE]
        a.refresh_soon()
        await anyio.wait_all_tasks_blocked()
        assert states(a) == states(b)


async def test_a_later_change_than_the_store_holds_is_saved_again() -> None:
    """Two saves that crossed: the store was overwritten with an older view of a key."""
    store, told = DictStore(), Told()
    async with replicas(store, told) as (a,):
        a.report_failure(KEYS[2], QuotaExhaustedError("HTTP 402", retry_after=900))
        await anyio.wait_all_tasks_blocked()
        assert told.names == ["test"]
        stale = [SavedKeyState(k.label, False, None, "", 0, 0, 0.0) for k in KEYS]
        store.saved["test"] = stale
        a.refresh_soon()
        await anyio.wait_all_tasks_blocked()
        assert told.names == ["test", "test"]
        k2 = {s.label: s for s in store.saved["test"]}["k2"]
        assert k2.until is not None
        assert k2.changed_at > 0
        assert states(a)[2] is KeyState.COOLING  # an older state is never adopted


async def test_a_reload_enables_a_disabled_key_again_for_all() -> None:
    store = DictStore()
    async with replicas(store, Told(), Told()) as (a, b):
        a.report_failure(KEYS[1], KeyRejectedError("HTTP 403"))
        await anyio.wait_all_tasks_blocked()
        b.refresh_soon()
        await anyio.wait_all_tasks_blocked()
        assert states(b)[1] is KeyState.DISABLED
        await anyio.sleep(0.01)  # a later wall-clock time than the 403's
        a.reload(KEYS)
        await anyio.wait_all_tasks_blocked()
        b.refresh_soon()
        await anyio.wait_all_tasks_blocked()
        assert states(b) == [KeyState.USABLE] * 3


async def test_a_store_or_a_hook_that_fails_is_logged_and_the_pool_goes_on() -> None:
    store, told = DictStore(), Told(fails=True)
    with captured_logs("WARNING") as lines:
        async with replicas(store, told, Told()) as (a, b):
            a.report_failure(KEYS[0], QuotaExhaustedError("HTTP 402"))
            await anyio.wait_all_tasks_blocked()
            assert told.names == ["test"]
            store.down = True
            b.refresh_soon()
            await anyio.wait_all_tasks_blocked()
            assert states(b)[0] is KeyState.USABLE
            store.down = False
            b.refresh_soon()
            await anyio.wait_all_tasks_blocked()
            assert states(b)[0] is KeyState.COOLING
    assert any("pool test: others not told" in line for line in lines), lines
    assert any("pool test: key states not refreshed" in line for line in lines), lines
