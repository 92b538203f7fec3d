"""OpenAI-compatible Chat Completions, streaming (SSE) or not.

One client serves OpenAI, DeepSeek, OpenRouter, Groq, vLLM, llama.cpp and Ollama: only
``base_url`` differs. Failures are typed (``providers.exceptions``) so the credential pool
and the thread actor can act on them. Cancelling a call closes its connection. It speaks
HTTP through ``providers.http`` (aiohttp on asyncio, the gateway's; httpx on trio).

Usage (``providers.usage``): a stream asks for it with ``stream_options.include_usage``
(``stream_usage``) and reads the chunk that carries it (empty ``choices``, OpenAI's last).
An endpoint that answers HTTP 400 naming ``stream_options`` is asked again at once without
it, and never again with it by this client (one log line). A call that got no usage data
reports an estimate (``Tokens.estimate``), marked as such.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream
from loguru import logger

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
from providers.http import ChatHttp, HttpAnswer, HttpConnectionError, HttpTimeoutError, Timeouts
from providers.secrets import ApiKey, redact
from providers.usage import Tokens, prompt_chars

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


@attrs.define(eq=False)
class _Call:
    """What one call learnt while its answer was read (written by its reader task only)."""

    started: bool = False
    """The provider accepted the request (HTTP 200): its prompt is paid for."""
    usage: Tokens | None = None
    """The usage the provider reported, if it did."""


@attrs.define(eq=False)
class _Endpoint:
    """What this client learnt about its endpoint (only ever set, never unset)."""

    refuses_stream_options: bool = False
    """It answered HTTP 400 to ``stream_options``: streams go without it."""


@attrs.frozen
class ChatClient:
    """Calls one OpenAI-compatible endpoint.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://localhost:11434/v1``.
        http: the shared HTTP client (``providers.http``; its owner closes it).
        connect_timeout: seconds to connect.
        read_timeout: seconds to wait for the next bytes; on a stream, the stall timeout.
        stream_usage: ask for usage on streams (``stream_options.include_usage``).
    """

    base_url: str
    _http: ChatHttp = attrs.field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    stream_usage: bool = True
    _endpoint: _Endpoint = attrs.field(factory=_Endpoint, init=False, repr=False, eq=False)

    async def stream(
        self,
        key: ApiKey,
        model: str,
        messages: Sequence[Message],
        emit: Callable[[str], Awaitable[None]],
        *,
        on_usage: Callable[[Tokens], None] | None = None,
        **options: Any,
    ) -> str:
        """Stream an answer, calling ``emit`` with each text delta; return the whole text.

        The response is read by a task of its own, so a slow ``emit`` (a chat that paces its
        sends) never holds the connection: it goes back to the pool once the answer is in.
        ``on_usage`` is told what the call used: the provider's usage, else an estimate; a
        failed call only if the provider reported its usage; a cancelled one (estimated)
        once the provider had accepted it.
        """
        body = {"model": model, "messages": list(messages), "stream": True, **options}
        if self.stream_usage and not self._endpoint.refuses_stream_options:
            body.setdefault("stream_options", {"include_usage": True})
        parts: list[str] = []
        call = _Call()
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._read, key, body, send, call, name="ChatClient._read")
                async with receive:
                    async for delta in receive:
                        parts.append(delta)
                        await emit(delta)
        except BaseExceptionGroup as group:
            if on_usage is not None and call.usage is not None:
                on_usage(call.usage)
            raise _cause(group) from None
        except anyio.get_cancelled_exc_class():
            if on_usage is not None and call.started:
                on_usage(call.usage or Tokens.estimate(prompt_chars(messages), len("".join(parts))))
            raise
        text = "".join(parts)
        if on_usage is not None:
            on_usage(call.usage or Tokens.estimate(prompt_chars(messages), len(text)))
        return text

    async def _read(
        self,
        key: ApiKey,
        body: dict[str, Any],
        deltas: MemoryObjectSendStream[str],
        call: _Call,
    ) -> None:
        """Read the streamed answer into ``deltas``; raise the typed error if it fails."""
        async with deltas:
            while not await self._read_once(key, body, deltas, call):
                body = {name: value for name, value in body.items() if name != "stream_options"}

    async def _read_once(
        self,
        key: ApiKey,
        body: dict[str, Any],
        deltas: MemoryObjectSendStream[str],
        call: _Call,
    ) -> bool:
        """One request; ``False`` when it must be made again without ``stream_options``."""
        read_any = False
        try:
            async with self._http.stream(
                self._url(), body, self._headers(key), self._timeouts()
            ) as response:
                if response.status != 200:
                    answer = await response.answer()
                    if "stream_options" in body and self._refuses_stream_options(answer):
                        return False
                    raise self._status_error(answer, key)
                call.started = True
                complete = False
                async with aclosing(response.lines()) as lines:
                    async for line in lines:
                        delta, done, usage = self._parse_event(line, key)
                        if delta:
                            read_any = True
                            deltas.send_nowait(delta)
                        if usage is not None:
                            call.usage = usage
                        complete = complete or done
                if not complete:
                    raise StreamBrokenError("the answer stream ended before it was complete")
        except anyio.BrokenResourceError:
            return True  # the consumer is gone (its own error is the one that counts)
        except HttpTimeoutError as error:
            raise ProviderTimeoutError(f"timed out: {error}") from None
        except HttpConnectionError as error:
            if read_any:
                raise StreamBrokenError(f"connection dropped: {error}") from None
            raise ProviderUnavailableError(f"connection failed: {error}") from None
        return True

    def _refuses_stream_options(self, response: HttpAnswer) -> bool:
        """Whether ``response`` is an HTTP 400 refusing ``stream_options``; if so, this client
        stops sending it (said once in the log)."""
        if response.status != 400 or "stream_options" not in response.text:
            return False
        if not self._endpoint.refuses_stream_options:
            self._endpoint.refuses_stream_options = True
            logger.warning(
                "{url} refuses stream_options (HTTP 400): asking again without it, and its "
                "token usage is estimated from now on (set llm.stream_usage = false to "
                "silence this)",
                url=self._url(),
            )
        return True

    async def complete(
        self,
        key: ApiKey,
        model: str,
        messages: Sequence[Message],
        *,
        on_usage: Callable[[Tokens], None] | None = None,
        **options: Any,
    ) -> str:
        """Return a whole answer without streaming; ``on_usage`` as for :meth:`stream`."""
        body = {"model": model, "messages": list(messages), **options}
        try:
            response = await self._http.post(
                self._url(), body, self._headers(key), self._timeouts()
            )
        except HttpTimeoutError as error:
            raise ProviderTimeoutError(f"timed out: {error}") from None
        except HttpConnectionError as error:
            raise ProviderUnavailableError(f"connection failed: {error}") from None
        if response.status != 200:
            raise self._status_error(response, key)
        try:
            answer = response.json()
            text = str(answer["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise StreamBrokenError("malformed completion") from None
        if on_usage is not None:
            reported = Tokens.reported(answer.get("usage") if isinstance(answer, dict) else None)
            on_usage(reported or Tokens.estimate(prompt_chars(messages), len(text)))
        return text

    def _url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self, key: ApiKey) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if key.secret:
            headers["Authorization"] = f"Bearer {key.secret}"
        return headers

    def _timeouts(self) -> Timeouts:
        return Timeouts(self.connect_timeout, self.read_timeout)

    def _parse_event(self, line: str, key: ApiKey) -> tuple[str, bool, Tokens | None]:
        """Return (text delta, whether the answer is complete, the usage it reports) for one
        SSE line."""
        if not line.startswith("data:"):
            return "", False, None  # comments, event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return "", True, None
        try:
            event = json.loads(data)
            if "error" in event:
                raise StreamBrokenError(
                    "provider error in stream: " + redact(str(event["error"]), key.secret)[:200]
                )
            choice = event["choices"][0] if event.get("choices") else {}
            delta = choice.get("delta") or {}
            usage = Tokens.reported(event.get("usage"))
            return str(delta.get("content") or ""), bool(choice.get("finish_reason")), usage
        except (ValueError, TypeError, AttributeError, IndexError) as error:
            raise StreamBrokenError(f"malformed stream event ({type(error).__name__})") from None

    def _status_error(self, response: HttpAnswer, key: ApiKey) -> ProviderError:
        status = response.status
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
    def _error_body(response: HttpAnswer, key: ApiKey) -> tuple[str, str]:
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
