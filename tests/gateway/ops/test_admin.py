from __future__ import annotations

from pathlib import Path

import attrs
import httpx
import pytest

from actors import SupervisorStatistics, SupervisorStatus
from gateway.config import AdminConfig
from gateway.config_check import is_loopback
from gateway.exceptions import ConfigInvalidError
from gateway.ops.admin import AdminServer
from gateway.services import ServiceState, ServiceStatus
from providers.pool import PoolStatus
from tests.gateway.harness import running_gateway

pytestmark = pytest.mark.anyio


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "example.org"))


async def test_admin_off_loopback_requires_a_bearer_token(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        gateway = run.gateway
        open_config = attrs.evolve(
            gateway.config,
            admin=attrs.evolve(gateway.config.admin, addr="0.0.0.0:0"),
        )
        with pytest.raises(ConfigInvalidError, match=r"admin\.token"):
            AdminServer(gateway, open_config.admin)
        guarded = attrs.evolve(
            gateway.config,
            admin=attrs.evolve(gateway.config.admin, addr="0.0.0.0:0", token="admin-secret-42"),
        )
        server = AdminServer(gateway, guarded.admin)
        await server.start()
        try:
            port = server.url.rsplit(":", 1)[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/status")).status_code == 401
                wrong = {"Authorization": "Bearer nope"}
                assert (await http.get("/metrics", headers=wrong)).status_code == 401
                right = {"Authorization": "Bearer admin-secret-42"}
                response = await http.get("/status", headers=right)
                assert response.status_code == 200
                assert "admin-secret-42" not in response.text
        finally:
            await server.stop()


@attrs.define
class Unhealthy:
    """A stand-in for the gateway: the admin endpoint reads only the ``Observed`` protocol."""

    check: str
    passes: bool = False
    supervised: tuple[ServiceStatus, ...] = ()

    def thread_status(self) -> SupervisorStatus:
        counts = dict.fromkeys(attrs.fields_dict(SupervisorStatistics), 0)
        return SupervisorStatus(children=(), statistics=SupervisorStatistics(**counts))

    def pool_status(self) -> list[PoolStatus]:
        return []

    def health(self) -> dict[str, bool]:
        return {self.check: self.passes}

    def services(self) -> tuple[ServiceStatus, ...]:
        return self.supervised

    def render_metrics(self) -> bytes:
        return b"# nothing\n"


async def test_the_admin_endpoint_serves_any_observed_and_reports_its_failed_checks() -> None:
    server = AdminServer(Unhealthy("store_writable"), AdminConfig(addr="127.0.0.1:0"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            health = await http.get("/healthz")
            assert health.status_code == 503
            assert health.json() == {
                "healthy": False,
                "status": "unhealthy",
                "event_loop_lag_ok": True,
                "store_writable": False,
                "services": {},
            }
            status = (await http.get("/status")).json()
            assert status["threads"] == []
            assert status["statistics"]["live"] == 0
            assert (await http.get("/metrics")).text == "# nothing\n"
            assert "usage" not in status, "no usage recorded: the status has none"
            assert (await http.get("/usage")).status_code == 404
    finally:
        await server.stop()


async def test_a_restarting_service_makes_healthz_degraded() -> None:
    restarting = ServiceStatus("poller", ServiceState.RESTARTING, 2, "TelegramConflictError", 1.5)
    running = ServiceStatus("checkpoints", ServiceState.RUNNING, 0, "", None)
    observed = Unhealthy("store_writable", passes=True, supervised=(restarting, running))
    server = AdminServer(observed, AdminConfig(addr="127.0.0.1:0"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            degraded = await http.get("/healthz")
            observed.supervised = (attrs.evolve(restarting, state=ServiceState.RUNNING), running)
            healthy = await http.get("/healthz")
    finally:
        await server.stop()
    assert degraded.status_code == 503
    body = degraded.json()
    assert (body["healthy"], body["status"], body["store_writable"]) == (False, "degraded", True)
    assert body["services"]["poller"] == {
        "state": "restarting",
        "restarts": 2,
        "last_error": "TelegramConflictError",
        "restart_in": 1.5,
    }
    assert body["services"]["checkpoints"]["state"] == "running"
    assert healthy.status_code == 200
    assert healthy.json()["status"] == "ok"


async def test_an_address_that_cannot_be_listened_on_is_a_config_error() -> None:
    first = AdminServer(Unhealthy("x", passes=True), AdminConfig(addr="127.0.0.1:0"))
    await first.start()
    try:
        taken = first.url.removeprefix("http://")
        second = AdminServer(Unhealthy("x", passes=True), AdminConfig(addr=taken))
        with pytest.raises(ConfigInvalidError, match=r"admin\.addr: cannot listen on"):
            await second.start()
    finally:
        await first.stop()
