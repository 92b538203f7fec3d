"""The service supervisor, on trio's MockClock (backoffs take no time; the gateway's tests
run it on asyncio)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import pytest

from gateway.exceptions import BotTokenRejectedError, GatewayError
from gateway.services import Backoff, ServiceState, ServiceSupervisor
from tests.backends import trio_mockclock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> Any:
    return trio_mockclock()


BACKOFF = Backoff(initial=1.0, maximum=4.0, reset_after=30.0)


class Broken(GatewayError):
    """A service's (non-fatal) failure."""


@attrs.define
class Flaky:
    """Fails its first ``failures`` runs, then runs until cancelled; records when it started."""

    failures: int
    ran_for: float = 0.0
    """How long each failing run lasts before it raises."""
    starts: list[float] = attrs.Factory(list)

    async def run(self) -> None:
        self.starts.append(anyio.current_time())
        if len(self.starts) <= self.failures:
            await anyio.sleep(self.ran_for)
            raise Broken(f"failure {len(self.starts)}")
        await anyio.sleep_forever()


async def supervise(services: ServiceSupervisor, **named: Callable[[], Awaitable[None]]) -> None:
    """Run the ``named`` services until the supervisor ends (only an error ends it)."""
    async with services:
        for name, service in named.items():
            services.start_soon(name, service)
        await anyio.sleep_forever()


async def test_a_failing_service_is_restarted_with_a_doubling_capped_backoff() -> None:
    flaky = Flaky(failures=4)
    async with ServiceSupervisor(BACKOFF) as services:
        services.start_soon("flaky", flaky.run)
        await anyio.sleep(0.5)
        (status,) = services.status()
        assert (status.name, status.state, status.restarts) == ("flaky", ServiceState.RESTARTING, 1)
        assert status.last_error == "Broken"
        assert status.restart_in == pytest.approx(0.5, abs=0.1)
        with anyio.fail_after(30):
            while len(flaky.starts) < 5:
                await anyio.sleep(0.05)
        await anyio.sleep(0.1)
        (status,) = services.status()
        assert (status.state, status.restarts, status.restart_in) == (ServiceState.RUNNING, 4, None)
    waits = [later - earlier for earlier, later in itertools.pairwise(flaky.starts)]
    assert waits == pytest.approx([1.0, 2.0, 4.0, 4.0], abs=0.1)
    assert services.status()[0].state is ServiceState.STOPPED, "cancelled on leaving"


async def test_a_service_that_ran_long_enough_starts_its_backoff_again() -> None:
    flaky = Flaky(failures=3, ran_for=BACKOFF.reset_after)
    async with ServiceSupervisor(BACKOFF) as services:
        services.start_soon("flaky", flaky.run)
        with anyio.fail_after(200):
            while len(flaky.starts) < 4:
                await anyio.sleep(0.5)
    waits = [
        later - earlier - BACKOFF.reset_after for earlier, later in itertools.pairwise(flaky.starts)
    ]
    assert waits == pytest.approx([1.0, 1.0, 1.0], abs=0.1)


async def test_a_fatal_error_is_not_restarted_it_stops_the_supervisor() -> None:
    async def rejected() -> None:
        raise BotTokenRejectedError("Telegram rejected the bot token")

    others_cancelled = anyio.Event()

    async def other() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            others_cancelled.set()

    services = ServiceSupervisor(BACKOFF)
    with pytest.raises(ExceptionGroup) as caught:
        await supervise(services, other=other, poller=rejected)
    assert caught.group_contains(BotTokenRejectedError)
    assert others_cancelled.is_set()
    assert [s.restarts for s in services.status()] == [0, 0]


async def test_a_fatal_error_inside_a_services_own_task_group_stops_it_too() -> None:
    async def nested() -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(anyio.sleep_forever)
            raise BotTokenRejectedError("rejected")

    with pytest.raises(ExceptionGroup) as caught:
        await supervise(ServiceSupervisor(BACKOFF), webhook=nested)
    assert caught.group_contains(BotTokenRejectedError)


async def test_a_service_that_returns_has_finished() -> None:
    runs: list[float] = []

    async def once() -> None:
        runs.append(anyio.current_time())

    async with ServiceSupervisor(BACKOFF) as services:
        services.start_soon("once", once)
        await anyio.sleep(10)
        assert [s.state for s in services.status()] == [ServiceState.STOPPED]
    assert len(runs) == 1


async def test_stop_gives_grace_to_a_service_that_ends_by_itself_then_cancels() -> None:
    closing = anyio.Event()
    ended: list[str] = []

    async def drains() -> None:
        await closing.wait()
        await anyio.sleep(1.0)  # sends what it still has
        ended.append("drained")

    async def hangs() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("cancelled")

    async with ServiceSupervisor(BACKOFF) as services:
        services.start_soon("drains", drains)
        services.start_soon("hangs", hangs)
        closing.set()
        start = anyio.current_time()
        await services.stop("drains", grace=5.0)
        assert anyio.current_time() - start == pytest.approx(1.0, abs=0.1)
        await services.stop("hangs", grace=2.0)
        assert anyio.current_time() - start == pytest.approx(3.0, abs=0.1)
        assert ended == ["drained", "cancelled"]
        assert [s.state for s in services.status()] == [ServiceState.STOPPED] * 2


async def test_names_are_unique() -> None:
    async with ServiceSupervisor(BACKOFF) as services:
        services.start_soon("poller", anyio.sleep_forever)
        with pytest.raises(ValueError, match="already supervised"):
            services.start_soon("poller", anyio.sleep_forever)
