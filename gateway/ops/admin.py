"""The admin endpoint: ``/status`` (JSON), ``/healthz``, ``/metrics`` (Prometheus), and the
status page at ``/`` (``gateway.ops.page``) with its ``/recent`` outcomes and errors.

Loopback by default; on any other address a bearer token is required (a browser logs in
once, and then holds a cookie: ``gateway.ops.page``). ``/healthz`` answers
200 only when every check passes and no service is restarting; otherwise 503, with
``status`` ``degraded`` (every check passes, but a service is restarting) or ``unhealthy``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from aiohttp import web
from loguru import logger

from actors import SupervisorStatus
from gateway.config import AdminConfig
from gateway.exceptions import ConfigInvalidError
from gateway.ops.page import OPEN_PATHS, BrowserAuth, StatusPage
from gateway.ops.recent import Recent
from gateway.services import ServiceState, ServiceStatus
from providers.pool import PoolStatus


class Observed(Protocol):
    """What the admin endpoint reads: the running gateway, or anything shaped like it."""

    def thread_status(self) -> SupervisorStatus:
        """A snapshot of every live thread actor and the supervisor's counters."""

    def pool_status(self) -> Sequence[PoolStatus]:
        """Every credential pool's keys (labels, never secrets)."""

    def health(self) -> Mapping[str, bool]:
        """Named checks; the gateway is healthy when all of them pass."""

    def services(self) -> Sequence[ServiceStatus]:
        """The gateway's supervised services; one that is restarting makes it degraded."""

    def render_metrics(self) -> bytes:
        """The Prometheus exposition of the gateway's metrics."""


def status_json(
    threads: SupervisorStatus, pools: Sequence[PoolStatus], now_wall: float
) -> dict[str, Any]:
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


def _service_json(service: ServiceStatus) -> dict[str, Any]:
    return {
        "state": service.state.value,
        "restarts": service.restarts,
        "last_error": service.last_error,
        "restart_in": None if service.restart_in is None else round(service.restart_in, 1),
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AdminServer:
    """Serves ``/status``, ``/healthz``, ``/metrics`` and the status page for ``observed``;
    the page's recent outcomes and errors come from ``recent``.

    Rule: off loopback a bearer token is required (refused at construction otherwise), and
    it is compared in constant time; so is the page's cookie.
    """

    def __init__(
        self, observed: Observed, config: AdminConfig, recent: Recent | None = None
    ) -> None:
        self._observed = observed
        self._addr = config.addr
        host, _, port = config.addr.rpartition(":")
        self._host, self._port = host, int(port)
        self._auth_rule = BrowserAuth(config.token)
        self._page = StatusPage(self._auth_rule, recent or Recent())
        if not is_loopback(host) and not config.token:
            raise ConfigInvalidError("admin.token", "required when admin.addr is not loopback")
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Listen on ``admin.addr``.

        Raises:
            ConfigInvalidError: nothing can listen there (taken, or not an address of ours).
        """
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/status", self._status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._page.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigInvalidError(
                "admin.addr", f"cannot listen on {self._addr}: {error}"
            ) from None
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        logger.info("admin endpoint on {url} (/, /status, /healthz, /metrics)", url=self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def serve(self) -> None:
        """Serve until cancelled (a supervised service): listen if not listening yet; stop
        listening when cancelled or failed, so that a restart listens anew."""
        try:
            if self._runner is None:
                await self.start()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not self._auth_rule.passes(request):
            return self._page.refused(request)
        response: web.StreamResponse = await handler(request)
        return response

    async def _status(self, request: web.Request) -> web.Response:
        observed = self._observed
        body = status_json(observed.thread_status(), observed.pool_status(), time.time())
        return web.json_response(body)

    async def _healthz(self, request: web.Request) -> web.Response:
        start = anyio.current_time()
        await anyio.lowlevel.checkpoint()
        lag = anyio.current_time() - start
        checks = {"event_loop_lag_ok": lag < 1.0, **self._observed.health()}
        services = self._observed.services()
        restarting = any(service.state is ServiceState.RESTARTING for service in services)
        passed = all(checks.values())
        healthy = passed and not restarting
        body = {
            "healthy": healthy,
            "status": "ok" if healthy else "degraded" if passed else "unhealthy",
            **checks,
            "services": {service.name: _service_json(service) for service in services},
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._observed.render_metrics(), content_type="text/plain")
