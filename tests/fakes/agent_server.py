"""A local HTTP agent (the other side of ``providers.http_agent``), scriptable per test.

It checks each turn against the protocol of ``docs/agents.md`` before answering: a body
that breaks it (``parts`` or ``media`` not one list per input, a part of no known type, an
image that is not a base64 ``data:`` URL of its own type) is answered HTTP 422 with the
reason, kept in ``problems``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
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
    problems: list[str] = attrs.Factory(list)
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
        body = await request.json()
        self.received.append(body)
        problem = protocol_problem(body)
        if problem:
            self.problems.append(problem)
            return web.Response(status=422, text=problem)
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


def protocol_problem(body: dict[str, Any]) -> str:
    """What in a turn's body breaks the protocol, or ``""``."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        return "inputs: not a list of strings"
    for field in ("parts", "media"):
        lists = body.get(field)
        if not isinstance(lists, list) or len(lists) != len(inputs):
            return f"{field}: not one list per input"
    for parts in body["parts"]:
        for part in parts:
            problem = _part_problem(part)
            if problem:
                return problem
    return ""


def _part_problem(part: dict[str, Any]) -> str:
    kind = part.get("type")
    if kind == "text":
        return "" if isinstance(part.get("text"), str) else "text part without text"
    if kind == "document":
        named = isinstance(part.get("name"), str) and isinstance(part.get("text"), str)
        return "" if named else "document part without name and text"
    if kind != "image":
        return f"part of unknown type {kind!r}"
    prefix = f"data:{part.get('mime_type')};base64,"
    url = str(part.get("url", ""))
    if not url.startswith(prefix):
        return f"image url is not a data URL of its type: {url[:40]!r}"
    try:
        base64.b64decode(url.removeprefix(prefix), validate=True)
    except binascii.Error:
        return "image data is not base64"
    return ""
