"""An agent behind an HTTP endpoint, in any language: POST the turn, stream the answer (SSE).

Request (JSON): ``{"thread", "session_id", "generation", "inputs", "model", "parts",
"media"}``; ``parts`` and ``media`` have one list per input (empty for text): its content
(``{"type": "text"|"image"|"document", ...}``, images as base64 ``data:`` URLs) and its
files' metadata (``docs/agents.md``).
Response: ``text/event-stream`` with ``data: {"text": "..."}`` for output,
``data: {"heartbeat": true}`` for progress without output, and ``data: [DONE]`` at the end.
An error event ``data: {"error": "...", "kind": "exhausted"|"unavailable"|"rejected",
"retry_after": 60}`` ends the turn with that failure. HTTP 402/429 mean exhausted
credentials (``Retry-After`` honoured), 4xx rejected, 5xx unavailable.

Usage: an event may carry ``"usage": {"prompt_tokens": 9, "completion_tokens": 12,
"model": "gpt-4o-mini"}`` (the last one counts; ``model`` optional). Without it, the turn's
usage is estimated from the characters of its inputs and of the answer (the agent's own
prompt is unknown here, so this undercounts), and marked estimated. It is recorded once per
turn in ``usage``: a failed turn only if the agent reported usage; a stopped one once the
agent had accepted it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, cast

import anyio
import attrs
import httpx

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import RunRequest, RunSink
from providers.content import http_media, http_parts, inputs_with_parts
from providers.openai_client import parse_retry_after
from providers.secrets import redact
from providers.usage import Tokens, Usage, UsageLedger, record, sender

DEFAULT_MODEL = "agent"
"""The model a turn's usage is counted for when neither the agent nor the session names one."""


@attrs.define(eq=False)
class _Turn:
    """What one turn's stream told so far (its usage is recorded from it)."""

    started: bool = False
    """The agent accepted the turn (HTTP 200)."""
    chars: int = 0
    """Characters of the answer so far."""
    tokens: Tokens | None = None
    """The usage the agent reported."""
    model: str | None = None
    """The model the agent said it used."""


@attrs.frozen
class HttpAgent:
    """Implements the ``AgentRunner`` port over HTTP."""

    url: str
    """Where to POST each turn."""
    http: httpx.AsyncClient = attrs.field(repr=False)
    """The shared HTTP client."""
    token: str = attrs.field(default="", repr=False)
    """Sent as a bearer token, if set."""
    read_timeout: float = 120.0
    """Seconds without bytes (or heartbeat) before the stream counts as stalled."""
    usage: UsageLedger | None = None
    """Where each turn's usage is recorded (``None``: nowhere)."""

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        turn = _Turn()
        try:
            await self._run(request, sink, turn)
        except anyio.get_cancelled_exc_class():
            await self._record(request, turn, estimate=turn.started)
            raise
        except BaseException:
            await self._record(request, turn, estimate=False)
            raise
        await self._record(request, turn, estimate=True)

    async def _record(self, request: RunRequest, turn: _Turn, *, estimate: bool) -> None:
        """Record the turn's usage: the agent's, else (if ``estimate``) an estimate."""
        tokens = turn.tokens
        if tokens is None and estimate:
            tokens = Tokens.estimate(sum(len(text) for text in request.inputs), turn.chars)
        if self.usage is None or tokens is None:
            return
        model = turn.model or request.model or DEFAULT_MODEL
        await record(self.usage, [Usage(request.key.chat_id, sender(request), model, tokens)])

    async def _run(self, request: RunRequest, sink: RunSink, turn: _Turn) -> None:
        body = {
            "thread": str(request.key),
            "session_id": request.session_id,
            "generation": request.generation,
            "inputs": list(request.inputs),
            "model": request.model,
            "parts": [http_parts(parts) for _, parts in inputs_with_parts(request)],
            "media": [
                http_media(request.media[i] if i < len(request.media) else ())
                for i in range(len(request.inputs))
            ],
        }
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = httpx.Timeout(self.read_timeout, connect=10.0)
        try:
            async with self.http.stream(
                "POST", self.url, json=body, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response)
                turn.started = True
                lines = cast("AsyncGenerator[str, None]", response.aiter_lines())
                async with aclosing(lines) as events:
                    async for line in events:
                        if await self._event(line, sink, turn):
                            return
        except httpx.TimeoutException:
            raise AgentUnavailableError("the agent endpoint timed out") from None
        except httpx.TransportError as error:
            raise AgentUnavailableError(f"agent endpoint: {type(error).__name__}") from None
        raise AgentUnavailableError("the agent's stream ended before [DONE]")

    async def _event(self, line: str, sink: RunSink, turn: _Turn) -> bool:
        """Handle one SSE line; return True at the end of the answer."""
        if not line.startswith("data:"):
            return False
        data = line[5:].strip()
        if data == "[DONE]":
            return True
        try:
            event: dict[str, Any] = json.loads(data)
        except ValueError:
            raise AgentUnavailableError("the agent sent a malformed event") from None
        usage = event.get("usage")
        if isinstance(usage, dict) and (reported := Tokens.reported(usage)) is not None:
            turn.tokens = reported
            if isinstance(usage.get("model"), str) and usage["model"]:
                turn.model = usage["model"][:100]
        if "error" in event:
            reason = redact(str(event["error"]), self.token)[:300]
            kind = event.get("kind")
            if kind == "exhausted":
                raise CredentialsExhaustedError(reason, event.get("retry_after"))
            if kind == "rejected":
                raise AgentRejectedError(reason)
            raise AgentUnavailableError(reason)
        if event.get("heartbeat"):
            sink.heartbeat()
        text = event.get("text")
        if text:
            turn.chars += len(str(text))
            await sink.emit(str(text))
        return False

    def _status_error(self, response: httpx.Response) -> Exception:
        status = response.status_code
        message = f"agent endpoint answered HTTP {status}"
        if status in (402, 429):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return CredentialsExhaustedError(message, retry_after)
        if 400 <= status < 500:
            return AgentRejectedError(message)
        return AgentUnavailableError(message)
