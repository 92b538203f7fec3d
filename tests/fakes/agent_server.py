"""A local HTTP agent (the other side of ``providers.http_agent``), scriptable per test."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractContextManager
from typing import Any

import attrs
from aiohttp import web

from gateway.demo.model_sim import LoopbackServer, serve_in_thread


@attrs.define(eq=False)
class AgentServer:
    """Answers each turn with ``events`` (SSE data lines) or an HTTP ``status``."""

    events: list[str] = attrs.Factory(list)
    status: int = 200
    retry_after: str | None = None
    received: list[dict[str, Any]] = attrs.Factory(list)
    url: str = ""
    _server: LoopbackServer = attrs.Factory(LoopbackServer)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/turn", self._turn)
        self.url = f"http://127.0.0.1:{await self._server.start(app)}/turn"

    async def stop(self) -> None:
        await self._server.stop()

    def serving(self) -> AbstractContextManager[None]:
        return serve_in_thread(self.start, self.stop, "agent-server")

    async def _turn(self, request: web.Request) -> web.StreamResponse:
        self.received.append(await request.json())
        if self.status != 200:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=self.status, headers=headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in self.events:
            payload = event if event == "[DONE]" else json.dumps(json.loads(event))
            await response.write(f"data: {payload}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response
