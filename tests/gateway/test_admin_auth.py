from __future__ import annotations

from pathlib import Path

import attrs
import httpx
import pytest

from gateway.admin import AdminServer, is_loopback
from gateway.exceptions import ConfigInvalidError
from tests.gateway.harness import running_gateway

pytestmark = pytest.mark.anyio


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "example.org"))


async def test_admin_off_loopback_requires_a_bearer_token(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        gateway = run.gateway
        open_config = attrs.evolve(
            gateway.config,
            admin=attrs.evolve(gateway.config.admin, addr="0.0.0.0:0"),
        )
        with pytest.raises(ConfigInvalidError, match=r"admin\.token"):
            AdminServer(attrs.evolve(gateway, config=open_config))
        guarded = attrs.evolve(
            gateway.config,
            admin=attrs.evolve(gateway.config.admin, addr="0.0.0.0:0", token="admin-secret-42"),
        )
        server = AdminServer(attrs.evolve(gateway, config=guarded))
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
