"""The admin endpoint: ``/status`` (JSON), ``/healthz``, ``/metrics`` (Prometheus).

Loopback by default; on any other address a bearer token is required.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from aiohttp import web
from loguru import logger

from actors.status import SupervisorStatus
from gateway.exceptions import ConfigInvalidError

if TYPE_CHECKING:
    from gateway.app import Gateway


def status_json(threads: SupervisorStatus, pools: list[Any], now_wall: float) -> dict[str, Any]:
    """The status snapshot as JSON-able data (no secrets: pools carry labels only)."""
    return {
        "at": now_wall,
        "threads": [
            {
                "key": str(child.key),
                "state": child.state.value,
                "mailbox": child.mailbox_depth,
                "restarts": child.restarts,
                "last_progress_age": round(child.last_progress_age, 3),
                "current_message_age": (
                    None
                    if child.current_message_age is None
                    else round(child.current_message_age, 3)
                ),
                **dict(child.detail),
            }
            for child in threads.children
        ],
        "statistics": {
            name: getattr(threads.statistics, name)
            for name in (
                "live",
                "spawned",
                "delivered",
                "restarts",
                "stalls",
                "passivations",
                "failures",
                "dead_letters",
            )
        },
        "pools": [
            {
                "name": pool.name,
                "keys": [
                    {
                        "label": key.label,
                        "state": key.state.value,
                        "cooldown_left": round(key.cooldown_left, 1),
                        "reason": key.reason,
                        "requests": key.requests,
                        "failures": key.failures,
                    }
                    for key in pool.keys
                ],
            }
            for pool in pools
        ],
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AdminServer:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        host, _, port = gateway.config.admin.addr.rpartition(":")
        self._host, self._port = host, int(port)
        self._token = gateway.config.admin.token
        if not is_loopback(host) and not self._token:
            raise ConfigInvalidError("admin.token", "required when admin.addr is not loopback")
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/status", self._status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as error:
            logger.error(
                "admin endpoint could not listen on {addr}: {e}",
                addr=self._gateway.config.admin.addr,
                e=error,
            )
            raise
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        logger.info("admin endpoint on {url} (/status, /healthz, /metrics)", url=self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._token and request.headers.get("Authorization") != f"Bearer {self._token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _status(self, request: web.Request) -> web.Response:
        gateway = self._gateway
        body = status_json(gateway.thread_status(), gateway.pool_status(), time.time())
        return web.json_response(body)

    async def _healthz(self, request: web.Request) -> web.Response:
        start = anyio.current_time()
        await anyio.lowlevel.checkpoint()
        lag = anyio.current_time() - start
        updates = self._gateway.updates
        checks = {
            "event_loop_lag_ok": lag < 1.0,
            "supervisor_running": self._gateway.threads.running,
            f"{updates.name if updates else 'updates'}_alive": (
                updates is not None and updates.alive(anyio.current_time())
            ),
        }
        healthy = all(checks.values())
        return web.json_response({"healthy": healthy, **checks}, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._gateway.metrics.render(), content_type="text/plain")
