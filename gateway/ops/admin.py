"""The admin endpoint: ``/status`` (JSON), ``/healthz``, ``/metrics`` (Prometheus), ``/usage``
(JSON: every user's token usage today and this month, ``gateway.ops.usage_json``), and the
status page at ``/`` (``gateway.ops.page``) with its ``/recent`` outcomes and errors.

Loopback by default; on any other address a bearer token is required (a browser logs in
once, and then holds a cookie: ``gateway.ops.page``). ``/healthz`` answers
200 only when every check passes and no service is restarting; otherwise 503, with
``status`` ``degraded`` (every check passes, but a service is restarting) or ``unhealthy``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from aiohttp import web
from loguru import logger

from actors import ChildStatus, SupervisorStatus
from gateway.cluster.status import ClusterStatus, cluster_json
from gateway.config import AdminConfig
from gateway.config_check import is_loopback, split_host_port
from gateway.exceptions import ConfigInvalidError, StoreUnavailableError
from gateway.ops import discovery, metrics
from gateway.ops.page import OPEN_PATHS, BrowserAuth, StatusPage
from gateway.ops.recent import Recent
from gateway.ops.usage_json import usage_json
from gateway.services import ServiceState, ServiceStatus
from gateway.store.usage import UsageStore
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


class ObservedCluster(Observed, Protocol):
    """An ``Observed`` of several replicas: it may also have ``cluster_status()``."""

    def cluster_status(self) -> ClusterStatus | None:
        """The replicas and their shards; ``None`` on a single process (SQLite)."""


def cluster_of(observed: Observed) -> ClusterStatus | None:
    """``observed.cluster_status()`` if it has one (optional: ``None`` on a single process)."""
    method = getattr(observed, "cluster_status", None)
    status = method() if callable(method) else None
    return status if isinstance(status, ClusterStatus) else None


def _seconds(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _thread_json(child: ChildStatus) -> dict[str, Any]:
    """One thread: key and state, the actor's own fields (phase, generation, queued, run age),
    then the runtime's; an actor's field never shadows the runtime's."""
    runtime = {
        "key": str(child.key),
        "state": child.state.value,
        "mailbox": child.mailbox_depth,
        "restarts": child.restarts,
        "last_progress_age": _seconds(child.last_progress_age),
        "current_message_age": _seconds(child.current_message_age),
    }
    own = {name: value for name, value in child.detail if name not in runtime}
    return {"key": runtime.pop("key"), "state": runtime.pop("state"), **own, **runtime}


def status_json(
    threads: SupervisorStatus, pools: Sequence[PoolStatus], now_wall: float
) -> dict[str, Any]:
    """The status snapshot as JSON-able data (no secrets: pools carry labels only).

    Every field has its natural JSON type: counts are integers, durations are seconds as
    numbers (``null`` where there is none); docs/operations.md has the whole shape.
    """
    return {
        "at": now_wall,
        "threads": [_thread_json(child) for child in threads.children],
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
                        "cooldown_left": _seconds(key.cooldown_left, 1),
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


class AdminServer:
    """Serves ``/status``, ``/healthz``, ``/metrics`` and the status page for ``observed``;
    the page's recent outcomes and errors come from ``recent``.

    Rule: off loopback a bearer token is required (refused at construction otherwise), and
    it is compared in constant time; so is the page's cookie. With ``announce`` (a data
    directory), the address it listens on is written there while it listens
    (``gateway.ops.discovery``), so that ``threadgate status`` finds it; ``demo`` marks the
    local demo's. With ``usage``, ``/usage`` answers every user's usage and ``/status``
    carries its totals (``usage``); without, ``/usage`` answers 404.
    """

    def __init__(
        self,
        observed: Observed,
        config: AdminConfig,
        recent: Recent | None = None,
        *,
        announce: Path | None = None,
        demo: bool = False,
        usage: UsageStore | None = None,
    ) -> None:
        self._observed = observed
        self._usage = usage
        self._announce = announce
        self._demo = demo
        self._announced: discovery.AdminAddress | None = None
        self._addr = config.addr
        host, port = split_host_port(config.addr)  # [::1]:8787 binds ::1
        self._host, self._port = host, port
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
        app.router.add_get("/usage", self._usage_report)
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
        addr = discovery.host_port(host, port)
        self.url = f"http://{addr}"
        if self._announce is not None:
            try:
                self._announced = discovery.write(self._announce, addr, demo=self._demo)
            except OSError as error:
                logger.warning(
                    "cannot write {path} ({e}): threadgate status will need --addr {addr}",
                    path=self._announce / discovery.FILE_NAME,
                    e=error.strerror or type(error).__name__,
                    addr=addr,
                )
        logger.info(
            "admin endpoint on {url} (/, /status, /healthz, /metrics, /usage)", url=self.url
        )

    async def stop(self) -> None:
        if self._announced is not None and self._announce is not None:
            announced, self._announced = self._announced, None
            discovery.remove(self._announce, announced)
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
        cluster = cluster_of(observed)
        if cluster is not None:  # a single process: the status is as it always was
            body["cluster"] = cluster_json(cluster)
        if self._usage is not None:
            try:
                body["usage"] = usage_json(await self._usage.report(everyone=True), short=True)
            except StoreUnavailableError as error:
                logger.warning("/status without usage: {e}", e=error)
                body["usage"] = None
        return web.json_response(body)

    async def _usage_report(self, request: web.Request) -> web.Response:
        if self._usage is None:
            return web.json_response({"error": "usage is not recorded here"}, status=404)
        try:
            report = await self._usage.report(everyone=True)
        except StoreUnavailableError as error:
            return web.json_response({"error": f"the store is unavailable: {error}"}, status=503)
        return web.json_response({"at": time.time(), **usage_json(report)})

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
        body = self._observed.render_metrics()
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})
