"""OpenAI-compatible Chat Completions over httpx, streaming (SSE) or not.

One client serves OpenAI, DeepSeek, OpenRouter, Groq, vLLM, llama.cpp and Ollama: only
``base_url`` differs. Failures are typed (``providers.exceptions``) so the credential pool
and the thread actor can act on them. Cancelling a call closes its connection.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

import anyio
import attrs
import httpx
from anyio.streams.memory import MemoryObjectSendStream

from providers.exceptions import (
    KeyRejectedError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QuotaExhaustedError,
    RateLimitedError,
    RequestRejectedError,
    StreamBrokenError,
)
from providers.secrets import ApiKey, redact

Message = Mapping[str, Any]
"""One chat message: ``{"role": "user", "content": "..."}``; a user message with images has
a list of content blocks (``providers.content.user_content``)."""


def _cause(group: BaseExceptionGroup) -> BaseException:
    """The one error that ended a stream: the provider's, if the reader failed."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending[:0] = error.exceptions
        else:
            leaves.append(error)
    return next((e for e in leaves if isinstance(e, ProviderError)), leaves[0])


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@attrs.frozen
class ChatClient:
    """Calls one OpenAI-compatible endpoint.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://localhost:11434/v1``.
        http: the shared ``httpx.AsyncClient`` (its owner closes it).
        connect_timeout: seconds to connect.
        read_timeout: seconds to wait for the next bytes; on a stream, the stall timeout.
    """

    base_url: str
    _http: httpx.AsyncClient = attrs.field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    async def stream(
        self,
        key: ApiKey,
        model: str,
        messages: Sequence[Message],
        emit: Callable[[str], Awaitable[None]],
        **options: Any,
    ) -> str:
        """Stream an answer, calling ``emit`` with each text delta; return the whole text.

        The response is read by a task of its own, so a slow ``emit`` (a chat that paces its
        sends) never holds the connection: it goes back to the pool once the answer is in.
        """
        body = {"model": model, "messages": list(messages), "stream": True, **options}
        parts: list[str] = []
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._read, key, body, send, name="ChatClient._read")
                async with receive:
                    async for delta in receive:
                        parts.append(delta)
                        await emit(delta)
        except BaseExceptionGroup as group:
            raise _cause(group) from None
        return "".join(parts)

    async def _read(
        self, key: ApiKey, body: dict[str, Any], deltas: MemoryObjectSendStream[str]
    ) -> None:
        """Read the streamed answer into ``deltas``; raise the typed error if it fails."""
        read_any = False
        async with deltas:
            try:
                async with self._http.stream(
                    "POST",
                    self._url(),
                    json=body,
                    headers=self._headers(key),
                    timeout=self._timeout(),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise self._status_error(response, key)
                    complete = False
                    lines_iterator = cast("AsyncGenerator[str, None]", response.aiter_lines())
                    async with aclosing(lines_iterator) as lines:
                        async for line in lines:
                            delta, done = self._parse_event(line, key)
                            if delta:
                                read_any = True
                                deltas.send_nowait(delta)
                            complete = complete or done
                    if not complete:
                        raise StreamBrokenError("the answer stream ended before it was complete")
            except anyio.BrokenResourceError:
                return  # the consumer is gone (its own error is the one that counts)
            except httpx.TimeoutException as error:
                raise ProviderTimeoutError(f"timed out: {type(error).__name__}") from None
            except httpx.TransportError as error:
                if read_any:
                    raise StreamBrokenError(f"connection dropped: {type(error).__name__}") from None
                raise ProviderUnavailableError(
                    f"connection failed: {type(error).__name__}"
                ) from None

    async def complete(
        self, key: ApiKey, model: str, messages: Sequence[Message], **options: Any
    ) -> str:
        """Return a whole answer without streaming."""
        body = {"model": model, "messages": list(messages), **options}
        try:
            response = await self._http.post(
                self._url(), json=body, headers=self._headers(key), timeout=self._timeout()
            )
        except httpx.TimeoutException as error:
            raise ProviderTimeoutError(f"timed out: {type(error).__name__}") from None
        except httpx.TransportError as error:
            raise ProviderUnavailableError(f"connection failed: {type(error).__name__}") from None
        if response.status_code != 200:
            raise self._status_error(response, key)
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise StreamBrokenError("malformed completion") from None

    def _url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self, key: ApiKey) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if key.secret:
            headers["Authorization"] = f"Bearer {key.secret}"
        return headers

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)

    def _parse_event(self, line: str, key: ApiKey) -> tuple[str, bool]:
        """Return (text delta, whether the answer is complete) for one SSE line."""
        if not line.startswith("data:"):
            return "", False  # comments, event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return "", True
        try:
            event = json.loads(data)
            if "error" in event:
                raise StreamBrokenError(
                    "provider error in stream: " + redact(str(event["error"]), key.secret)[:200]
                )
            choice = event["choices"][0] if event.get("choices") else {}
            delta = choice.get("delta") or {}
            return str(delta.get("content") or ""), bool(choice.get("finish_reason"))
        except (ValueError, TypeError, AttributeError, IndexError) as error:
            raise StreamBrokenError(f"malformed stream event ({type(error).__name__})") from None

    def _status_error(self, response: httpx.Response, key: ApiKey) -> ProviderError:
        status = response.status_code
        code, detail = self._error_body(response, key)
        message = (
            f"HTTP {status}" + (f" ({code})" if code else "") + (f": {detail}" if detail else "")
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status in (401, 403):
            return KeyRejectedError(message)
        if status == 402 or (status == 429 and code in ("insufficient_quota", "quota_exceeded")):
            return QuotaExhaustedError(message, retry_after)
        if status == 429:
            return RateLimitedError(message, retry_after)
        if status in (400, 404, 409, 413, 422):
            return RequestRejectedError(message, status)
        return ProviderUnavailableError(message)

    @staticmethod
    def _error_body(response: httpx.Response, key: ApiKey) -> tuple[str, str]:
        try:
            error = response.json().get("error", {})
        except ValueError:
            return "", ""
        if not isinstance(error, dict):
            return "", redact(str(error), key.secret)[:200]
        code = str(error.get("code") or error.get("type") or "")
        return redact(code, key.secret)[:60], redact(str(error.get("message", "")), key.secret)[
            :200
        ]
